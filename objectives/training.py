"""The shared train/validate loop: in-memory tensors, one report per epoch."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from objectives.data import Split
from tuner.context import TrialContext

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def make_optimizer(model: nn.Module, params: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Build the optimizer named by `params["optimizer"]` (default Adam) from the params."""
    name = params.get("optimizer", "adam")
    weight_decay = params.get("weight_decay", 0.0)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        betas = (params.get("beta1", 0.9), params.get("beta2", 0.999))
        return cls(model.parameters(), lr=params["lr"], betas=betas, weight_decay=weight_decay)
    if name == "sgd":
        momentum = params.get("momentum", 0.0)
        nesterov = bool(params.get("nesterov", False)) and momentum > 0
        return torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be adam, adamw or sgd; got {name!r}.")


CLASS_WEIGHTS = ("none", "balanced")
SCHEDULES = ("constant", "cosine")


def make_schedule(optimizer: torch.optim.Optimizer, name: str, max_epochs: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Return the per-epoch learning-rate schedule: none for "constant", cosine decay to 0 over `max_epochs`."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {name!r}.")
    if name == "constant":
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)


def class_weights(labels: torch.Tensor, mode: str) -> torch.Tensor | None:
    """Return per-class loss weights: None for "none", n / (k * count) for "balanced" (as scikit-learn)."""
    if mode not in CLASS_WEIGHTS:
        raise ValueError(f"class_weight must be one of {', '.join(CLASS_WEIGHTS)}; got {mode!r}.")
    if mode == "none":
        return None
    counts = torch.bincount(labels).float().clamp_min(1)
    return (len(labels) / (len(counts) * counts)).to(labels.device)


def fit_classifier(ctx: TrialContext, model: nn.Module, train: Split, val: Split, transform: Transform | None = None) -> nn.Module:
    """Train `model` for up to `ctx.max_epochs` epochs, reporting validation metrics each epoch.

    Batches are slices of a shuffled index over tensors already on the
    device, which avoids the per-sample cost of a DataLoader.
    """
    model.to(ctx.device)
    train, val = train.to(ctx.device), val.to(ctx.device)
    optimizer = make_optimizer(model, ctx.params)
    loss_fn = nn.CrossEntropyLoss(
        weight=class_weights(train.y, ctx.params.get("class_weight", "none")),
        label_smoothing=float(ctx.params.get("label_smoothing", 0.0)),
    )
    batch_size = int(ctx.params.get("batch_size", 64))
    generator = torch.Generator(device="cpu").manual_seed(ctx.seed)
    scheduler = make_schedule(optimizer, ctx.params.get("schedule", "constant"), ctx.max_epochs)

    for epoch in range(1, ctx.max_epochs + 1):
        train_loss = train_epoch(model, optimizer, loss_fn, train, batch_size, generator, transform)
        if scheduler is not None:
            scheduler.step()
        ctx.report(epoch=epoch, train_loss=train_loss, **evaluate_classifier(model, val, prefix="val_"))
    return model


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    data: Split,
    batch_size: int,
    generator: torch.Generator,
    transform: Transform | None = None,
) -> float:
    """Run one epoch of minibatch training; return the mean training loss.

    `transform(x, generator)` augments each batch on its device, if given.
    """
    model.train()
    order = torch.randperm(len(data), generator=generator).to(data.x.device)
    total = torch.zeros((), device=data.x.device)
    for start in range(0, len(data), batch_size):
        rows = order[start:start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        inputs = data.x[rows] if transform is None else transform(data.x[rows], generator)
        loss = loss_fn(model(inputs), data.y[rows])
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(rows)
    return float(total) / len(data)


@torch.no_grad()
def evaluate_classifier(model: nn.Module, data: Split, prefix: str = "") -> dict[str, float]:
    """Return AUC (one-vs-rest when multi-class), accuracy and cross-entropy loss.

    Accuracy takes the most probable class as the prediction.
    """
    model.eval()
    logits = model(data.x)
    loss = nn.functional.cross_entropy(logits, data.y).item()
    probabilities = torch.softmax(logits.float(), dim=1).cpu().numpy()
    labels = data.y.cpu().numpy()
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    return {f"{prefix}auc": _auc(probabilities, labels), f"{prefix}acc": accuracy, f"{prefix}loss": loss}


def evaluate_models(model: nn.Module | Sequence[nn.Module], data: Split, prefix: str = "") -> dict[str, float]:
    """Return the metrics of `evaluate_classifier` for one model, or for the ensemble of a list of models.

    An ensemble predicts the mean of its members' probabilities, and its loss is the log loss of that mean.
    """
    if isinstance(model, nn.Module):
        return evaluate_classifier(model, data, prefix)
    return probability_metrics(predict_probabilities(model, data.x), data.y, prefix)


def move_models(model: nn.Module | Sequence[nn.Module], device: torch.device) -> nn.Module | list[nn.Module]:
    """Move one model, or each model of a list, to `device`."""
    if isinstance(model, nn.Module):
        return model.to(device)
    return [member.to(device) for member in model]


@torch.no_grad()
def predict_probabilities(model: nn.Module | Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Return the class probabilities of one model, or the mean probabilities of a list of models (an ensemble)."""
    models = [model] if isinstance(model, nn.Module) else list(model)
    probabilities = []
    for member in models:
        member.eval()
        probabilities.append(torch.softmax(member(x).float(), dim=1))
    return torch.stack(probabilities).mean(dim=0)


def probability_metrics(probabilities: torch.Tensor, labels: torch.Tensor, prefix: str = "") -> dict[str, float]:
    """Return AUC, accuracy and log loss of predicted class probabilities, keyed as evaluate_classifier keys them."""
    # Clamping keeps the log loss finite when a probability underflows to 0.
    log_probabilities = torch.log(probabilities.clamp(min=torch.finfo(probabilities.dtype).tiny))
    loss = nn.functional.nll_loss(log_probabilities, labels).item()
    probabilities_np = probabilities.cpu().numpy()
    labels_np = labels.cpu().numpy()
    accuracy = float(np.mean(probabilities_np.argmax(axis=1) == labels_np))
    return {f"{prefix}auc": _auc(probabilities_np, labels_np), f"{prefix}acc": accuracy, f"{prefix}loss": loss}


def decision_cost(positive_probabilities: torch.Tensor, labels: torch.Tensor, cost_fn: float, cost_fp: float) -> float:
    """Return the mean cost per row of binary decisions taken at the cost-minimising threshold.

    A false negative costs `cost_fn` and a false positive `cost_fp`, so predicting positive
    is cheaper exactly when P(positive) > cost_fp / (cost_fp + cost_fn).
    """
    threshold = cost_fp / (cost_fp + cost_fn)
    predicted = positive_probabilities > threshold
    actual = labels.bool()
    false_negatives = int((actual & ~predicted).sum())
    false_positives = int((~actual & predicted).sum())
    return (false_negatives * cost_fn + false_positives * cost_fp) / len(labels)


def _auc(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Return the ROC AUC, one-vs-rest when multi-class, or NaN when a probability is not finite."""
    if not np.all(np.isfinite(probabilities)):
        return float("nan")
    if probabilities.shape[1] == 2:
        return float(roc_auc_score(labels, probabilities[:, 1]))
    return float(roc_auc_score(labels, probabilities, multi_class="ovr", labels=list(range(probabilities.shape[1]))))


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Run `model` in eval mode over `x` in batches and concatenate the outputs.

    Batching bounds the memory of wide models on large splits.
    """
    model.eval()
    return torch.cat([model(x[start:start + batch_size]) for start in range(0, len(x), batch_size)])
