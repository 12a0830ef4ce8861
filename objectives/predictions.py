"""Predictions of a trained model on one split, in the plain form the study report plots.

A classifier returns labels and class probabilities; a forecaster returns
the target hours with actual and predicted values in target units.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from objectives.data import Split
from objectives.energy import forecast_metrics
from objectives.series import SeriesSplit
from objectives.training import move_models, predict, predict_probabilities
from tuner.context import TrialContext


@torch.no_grad()
def classifier_predictions(model: nn.Module | list[nn.Module], split: Split, ctx: TrialContext) -> dict[str, Any]:
    """Return the labels and class probabilities of a classifier (or an ensemble) on one split."""
    model = move_models(model, ctx.device)
    split = split.to(ctx.device)
    probabilities = predict_probabilities(model, split.x)
    n_classes = probabilities.shape[1]
    classes = list(getattr(ctx.data, "classes", ()) or [str(index) for index in range(n_classes)])
    return {
        "kind": "classification",
        "classes": classes,
        "labels": split.y.cpu().numpy().astype(int),
        "probabilities": probabilities.cpu().numpy().astype(float),
    }


@torch.no_grad()
def forecast_predictions(model: nn.Module, split: SeriesSplit, ctx: TrialContext) -> dict[str, Any]:
    """Return the target hours, actual values and forecasts of a forecaster on one split, in target units."""
    split = split.to(ctx.device)
    scaled = predict(model.to(ctx.device), split.x)
    forecast = scaled.double() * ctx.data.info["std"] + ctx.data.info["mean"]
    return {
        "kind": "forecast",
        "time": np.asarray(split.times),
        "actual": split.actual.double().cpu().numpy(),
        "predicted": forecast.cpu().numpy().reshape(-1),
        "metrics": forecast_metrics(scaled, split, ctx.data.info),
    }
