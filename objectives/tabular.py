"""Tabular classification: an MLP trained with the shared loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from objectives.crossval import cross_validate
from objectives.data import Dataset, Split
from objectives.models import mlp
from objectives.training import class_weights, evaluate_classifier, evaluate_models, fit_classifier, move_models
from tuner.context import TrialContext


def train(ctx: TrialContext) -> nn.Module | list[nn.Module]:
    """Build an MLP from the params and train it on the data set's train split.

    With `ctx.cv` set, train one MLP per fold instead and return the fold models.
    """
    data: Dataset = ctx.data
    if ctx.cv:
        loss_fn = nn.CrossEntropyLoss(weight=class_weights(data.train.y.to(ctx.device), ctx.params.get("class_weight", "none")))
        return cross_validate(ctx, lambda: build_mlp(data, ctx.params), loss_fn, evaluate_classifier)
    return fit_classifier(ctx, build_mlp(data, ctx.params), data.train, data.val)


def evaluate(model: nn.Module | Sequence[nn.Module], split: Split, ctx: TrialContext) -> dict[str, float]:
    """Return the classification metrics of a trained model, or of the ensemble of a list of models, on one split."""
    return evaluate_models(move_models(model, ctx.device), split.to(ctx.device))


def build_mlp(data: Dataset, params: Mapping[str, Any]) -> nn.Sequential:
    """Build the MLP named by the params `depth`, `width` and `dropout` for the data set's shape."""
    return mlp(
        n_features=data.n_features,
        n_outputs=data.n_classes,
        depth=int(params.get("depth", 2)),
        width=int(params.get("width", 64)),
        dropout=float(params.get("dropout", 0.0)),
    )
