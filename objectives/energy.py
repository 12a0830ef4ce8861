"""Load forecasting: an MLP or 1D-CNN over the last `lookback` hours of each window, trained with the shared loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from objectives.data import Dataset
from objectives.models import mlp
from objectives.series import SeriesSplit
from objectives.training import make_optimizer, predict, train_epoch
from tuner.context import TrialContext

LOSSES = {"mse": nn.MSELoss, "huber": nn.HuberLoss}
MODELS = ("mlp", "cnn")
CNN_KERNEL = 3


class WindowForecaster(nn.Module):
    """Cut the last `lookback` input hours out of each window and predict one scaled target per window.

    The columns of a window are the loader's `max_lookback` hours, oldest
    first, then the calendar features.
    """

    def __init__(self, network: nn.Module, lookback: int, max_lookback: int) -> None:
        super().__init__()
        self.network = network
        self.lookback = lookback
        self.max_lookback = max_lookback

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hours = x[:, self.max_lookback - self.lookback:self.max_lookback]
        calendar = x[:, self.max_lookback:]
        return self.network(hours, calendar).squeeze(-1)


class HoursMLP(nn.Module):
    """An MLP over the input hours and the calendar features side by side."""

    def __init__(self, lookback: int, n_calendar: int, depth: int, width: int, dropout: float) -> None:
        super().__init__()
        self.layers = mlp(lookback + n_calendar, 1, depth=depth, width=width, dropout=dropout)

    def forward(self, hours: torch.Tensor, calendar: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.cat([hours, calendar], dim=1))


class HoursCNN(nn.Module):
    """A 1D-CNN over the input hours; its flattened features and the calendar features feed a small MLP head.

    Each of the `depth` blocks convolves, then halves the length by max pooling while it is at least 2.
    """

    def __init__(self, lookback: int, n_calendar: int, depth: int, width: int, dropout: float) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels, length = 1, lookback
        for _ in range(depth):
            blocks += [nn.Conv1d(channels, width, CNN_KERNEL, padding=CNN_KERNEL // 2), nn.ReLU()]
            if length >= 2:
                blocks.append(nn.MaxPool1d(2))
                length //= 2
            channels = width
        self.convolutions = nn.Sequential(*blocks)
        self.head = mlp(width * length + n_calendar, 1, depth=1, width=width, dropout=dropout)

    def forward(self, hours: torch.Tensor, calendar: torch.Tensor) -> torch.Tensor:
        features = self.convolutions(hours.unsqueeze(1)).flatten(start_dim=1)
        return self.head(torch.cat([features, calendar], dim=1))


def build_model(params: Mapping[str, Any], info: Mapping[str, Any]) -> WindowForecaster:
    """Build the forecaster named by `params["model"]` (default mlp) for the loader's windows.

    Raises:
        ValueError: `model` or `lookback` in the params is invalid for this data set.
    """
    kind = params.get("model", "mlp")
    if kind not in MODELS:
        raise ValueError(f"params.model: must be one of {', '.join(MODELS)}; got {kind!r}.")
    max_lookback = int(info["lookback"])
    lookback = int(params.get("lookback", max_lookback))
    if not 1 <= lookback <= max_lookback:
        raise ValueError(
            f"params.lookback: must be in 1..{max_lookback}, the input hours of each window (data.lookback); got {lookback}. "
            f"Lower params.lookback or raise data.lookback."
        )

    network_class = HoursMLP if kind == "mlp" else HoursCNN
    network = network_class(
        lookback,
        len(info["calendar_features"]),
        depth=int(params.get("depth", 2)),
        width=int(params.get("width", 64)),
        dropout=float(params.get("dropout", 0.0)),
    )
    return WindowForecaster(network, lookback, max_lookback)


def train(ctx: TrialContext) -> nn.Module:
    """Build a forecaster from the params and train it on the train windows, reporting every epoch."""
    data: Dataset = ctx.data
    model = build_model(ctx.params, data.info).to(ctx.device)
    loss_fn = _loss(ctx.params)
    train_split, val_split = data.train.to(ctx.device), data.val.to(ctx.device)
    optimizer = make_optimizer(model, ctx.params)
    batch_size = int(ctx.params.get("batch_size", 256))
    generator = torch.Generator(device="cpu").manual_seed(ctx.seed)
    naive_mape = naive_metrics(val_split)["naive_mape"]

    for epoch in range(1, ctx.max_epochs + 1):
        train_loss = train_epoch(model, optimizer, loss_fn, train_split, batch_size, generator)
        scaled = predict(model, val_split.x)
        metrics = forecast_metrics(scaled, val_split, data.info)
        ctx.report(
            epoch,
            val_mape=metrics["mape"],
            val_mae=metrics["mae"],
            val_loss=float(loss_fn(scaled, val_split.y)),
            train_loss=train_loss,
            val_naive_mape=naive_mape,
        )
    return model


def evaluate(model: nn.Module, split: SeriesSplit, ctx: TrialContext) -> dict[str, float]:
    """Return the MAPE (percent) and MAE (target units) of the model and of the seasonal-naive forecast on one split."""
    split = split.to(ctx.device)
    scaled = predict(model.to(ctx.device), split.x)
    return {**forecast_metrics(scaled, split, ctx.data.info), **naive_metrics(split)}


def forecast_metrics(scaled: torch.Tensor, split: SeriesSplit, info: Mapping[str, Any]) -> dict[str, float]:
    """Return the MAPE (percent) and MAE of scaled predictions, both computed in target units such as MW."""
    forecast = scaled.double() * info["std"] + info["mean"]
    return _errors(forecast, split.actual)


def naive_metrics(split: SeriesSplit) -> dict[str, float]:
    """Return the MAPE (percent) and MAE of the seasonal-naive forecast, over the windows that have one."""
    known = ~torch.isnan(split.naive)
    errors = _errors(split.naive[known], split.actual[known])
    return {"naive_mape": errors["mape"], "naive_mae": errors["mae"]}


def _errors(forecast: torch.Tensor, actual: torch.Tensor) -> dict[str, float]:
    absolute = (forecast - actual).abs()
    # NOTE: MAPE skips targets of exactly zero, where the percentage is undefined.
    nonzero = actual != 0
    return {
        "mape": float(100 * (absolute[nonzero] / actual[nonzero].abs()).mean()),
        "mae": float(absolute.mean()),
    }


def _loss(params: Mapping[str, Any]) -> nn.Module:
    name = params.get("loss", "mse")
    if name not in LOSSES:
        raise ValueError(f"params.loss: must be one of {', '.join(LOSSES)}; got {name!r}.")
    return LOSSES[name]()
