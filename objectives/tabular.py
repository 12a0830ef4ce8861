"""Tabular classification: an MLP trained with the shared loop."""

from __future__ import annotations

from torch import nn

from objectives.data import Dataset, Split
from objectives.models import mlp
from objectives.training import evaluate_classifier, fit_classifier
from tuner.context import TrialContext


def train(ctx: TrialContext) -> nn.Module:
    """Build an MLP from the params and train it on the data set's train split."""
    data: Dataset = ctx.data
    params = ctx.params
    model = mlp(
        n_features=data.n_features,
        n_outputs=data.n_classes,
        depth=int(params.get("depth", 2)),
        width=int(params.get("width", 64)),
        dropout=float(params.get("dropout", 0.0)),
    )
    return fit_classifier(ctx, model, data.train, data.val)


def evaluate(model: nn.Module, split: Split, ctx: TrialContext) -> dict[str, float]:
    """Return the classification metrics of a trained model on one split."""
    return evaluate_classifier(model.to(ctx.device), split.to(ctx.device))
