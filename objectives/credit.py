"""Credit risk: an MLP classifier of applicants whose metrics add the mean cost of its decisions.

The cost matrix comes from the data settings `cost_fn` and `cost_fp`, which the loader stores in `Dataset.info["cost"]`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from objectives.crossval import cross_validate, fit_in_lockstep
from objectives.data import Dataset, Split
from objectives.tabular import build_mlp
from objectives.training import decision_cost, evaluate_models, move_models, predict_probabilities
from tuner.context import TrialContext


def train(ctx: TrialContext) -> nn.Module | list[nn.Module]:
    """Train an MLP on the train split, reporting val_auc, val_acc, val_loss, train_loss and val_cost each epoch.

    With `ctx.cv` set, train one MLP per fold instead and return the fold models.
    The loss weighs classes by `Dataset.info["class_weights"]` when the loader stored them.
    """
    data: Dataset = ctx.data
    loss_fn = nn.CrossEntropyLoss(weight=_class_weights(data, ctx.device))

    def score(model: nn.Module, split: Split) -> dict[str, float]:
        return score_credit(model, split, data.info.get("cost"))

    if ctx.cv:
        return cross_validate(ctx, lambda: build_mlp(data, ctx.params), loss_fn, score)
    return fit_in_lockstep(ctx, [build_mlp(data, ctx.params)], [(data.train, data.val)], loss_fn, score)[0]


def evaluate(model: nn.Module | Sequence[nn.Module], split: Split, ctx: TrialContext) -> dict[str, float]:
    """Return auc, acc, loss and, when the data has a cost matrix, cost of a model or an ensemble of models on one split."""
    cost = ctx.data.info.get("cost") if ctx.data is not None else None
    return score_credit(move_models(model, ctx.device), split.to(ctx.device), cost)


def score_credit(model: nn.Module | Sequence[nn.Module], split: Split, cost: Mapping[str, float] | None) -> dict[str, float]:
    """Return the classifier metrics and, given a cost matrix, the mean cost per row at its best threshold."""
    metrics = evaluate_models(model, split)
    if cost is None:
        return metrics
    positive = predict_probabilities(model, split.x)[:, 1]
    metrics["cost"] = decision_cost(positive, split.y, cost_fn=cost["fn"], cost_fp=cost["fp"])
    return metrics


def _class_weights(data: Dataset, device: torch.device) -> torch.Tensor | None:
    # NOTE: weighting the loss shifts the predicted P(positive) upward, so the
    # cost threshold cost_fp / (cost_fp + cost_fn) no longer minimises the cost of the weighted model.
    weights = data.info.get("class_weights")
    if weights is None:
        return None
    return torch.tensor(weights, dtype=torch.float32, device=device)
