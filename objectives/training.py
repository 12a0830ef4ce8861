"""The shared train/validate loop: in-memory tensors, one report per epoch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from objectives.data import Split
from tuner.context import TrialContext


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


def fit_classifier(ctx: TrialContext, model: nn.Module, train: Split, val: Split) -> nn.Module:
    """Train `model` for up to `ctx.max_epochs` epochs, reporting validation metrics each epoch.

    Batches are slices of a shuffled index over tensors already on the
    device, which avoids the per-sample cost of a DataLoader.
    """
    model.to(ctx.device)
    train, val = train.to(ctx.device), val.to(ctx.device)
    optimizer = make_optimizer(model, ctx.params)
    loss_fn = nn.CrossEntropyLoss()
    batch_size = int(ctx.params.get("batch_size", 64))
    generator = torch.Generator(device="cpu").manual_seed(ctx.seed)

    for epoch in range(1, ctx.max_epochs + 1):
        train_loss = train_epoch(model, optimizer, loss_fn, train, batch_size, generator)
        ctx.report(epoch=epoch, train_loss=train_loss, **evaluate_classifier(model, val, prefix="val_"))
    return model


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module, data: Split, batch_size: int, generator: torch.Generator) -> float:
    """Run one epoch of minibatch training; return the mean training loss."""
    model.train()
    order = torch.randperm(len(data), generator=generator).to(data.x.device)
    total = torch.zeros((), device=data.x.device)
    for start in range(0, len(data), batch_size):
        rows = order[start:start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(data.x[rows]), data.y[rows])
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
    if not np.all(np.isfinite(probabilities)):
        auc = float("nan")
    elif probabilities.shape[1] == 2:
        auc = float(roc_auc_score(labels, probabilities[:, 1]))
    else:
        auc = float(roc_auc_score(labels, probabilities, multi_class="ovr", labels=list(range(probabilities.shape[1]))))
    return {f"{prefix}auc": auc, f"{prefix}acc": accuracy, f"{prefix}loss": loss}
