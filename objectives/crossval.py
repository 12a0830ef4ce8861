"""Stratified K-fold cross-validation on the train and validation rows.

The fold models train in lockstep, so each epoch ends in one report of the mean metrics over folds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold
from torch import nn

from objectives.data import Dataset, Split
from objectives.training import make_optimizer, make_schedule, train_epoch
from tuner.context import TrialContext
from tuner.errors import TunerError

# Scores one model on one split. Metric names come without the "val_" prefix, such as "auc".
Scorer = Callable[[nn.Module, Split], Mapping[str, float]]


def cross_validate(ctx: TrialContext, build_model: Callable[[], nn.Module], loss_fn: nn.Module, score: Scorer) -> list[nn.Module]:
    """Train one model per fold of `ctx.cv` folds and return the fold models.

    The test split is never used: the folds pool only the train and validation rows.
    """
    folds = cv_folds(ctx.data, ctx.cv)
    models = [build_model() for _ in folds]
    return fit_in_lockstep(ctx, models, folds, loss_fn, score)


def cv_folds(data: Dataset, n_folds: int) -> list[tuple[Split, Split]]:
    """Pool the train and validation rows and return the (train, validation) splits of each fold.

    NOTE: the features keep the loader's scaling and imputation, fitted on the
    whole train split, because refitting them per fold would need the raw table.
    """
    pooled = Split(torch.cat([data.train.x, data.val.x]), torch.cat([data.train.y, data.val.y]))
    seed = int(data.info.get("split_seed", 0))
    folds = stratified_folds(pooled.y.cpu().numpy(), n_folds, seed, data.classes)
    return [(_rows(pooled, train), _rows(pooled, val)) for train, val in folds]


def stratified_folds(labels: np.ndarray, n_folds: int, seed: int, classes: Sequence[str] = ()) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return the (train rows, validation rows) of each fold of a shuffled, stratified K-fold split.

    Raises:
        TunerError: A class has fewer rows than there are folds.
    """
    counts = np.bincount(labels)
    for label, count in enumerate(counts):
        if count < n_folds:
            name = classes[label] if label < len(classes) else str(label)
            raise TunerError(
                f"cv: {n_folds} folds need at least {n_folds} rows of each class in the train and validation "
                f"splits; class '{name}' has {count}. Lower cv, or add rows."
            )
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def fit_in_lockstep(ctx: TrialContext, models: Sequence[nn.Module], folds: Sequence[tuple[Split, Split]], loss_fn: nn.Module, score: Scorer) -> list[nn.Module]:
    """Train each model on its fold for up to `ctx.max_epochs` epochs, reporting once per epoch.

    Each epoch trains every model once, then reports the mean of each metric over
    folds (see `mean_metrics`), so a pruner can stop the whole trial after any epoch.
    """
    folds = [(train.to(ctx.device), val.to(ctx.device)) for train, val in folds]
    models = [model.to(ctx.device) for model in models]
    optimizers = [make_optimizer(model, ctx.params) for model in models]
    batch_size = int(ctx.params.get("batch_size", 64))
    generators = [torch.Generator(device="cpu").manual_seed(ctx.seed + index) for index in range(len(models))]
    schedules = [make_schedule(optimizer, ctx.params.get("schedule", "constant"), ctx.max_epochs) for optimizer in optimizers]

    for epoch in range(1, ctx.max_epochs + 1):
        per_fold = []
        for model, optimizer, schedule, (train, val), generator in zip(models, optimizers, schedules, folds, generators):
            train_loss = train_epoch(model, optimizer, loss_fn, train, batch_size, generator)
            if schedule is not None:
                schedule.step()
            scores = {f"val_{name}": value for name, value in score(model, val).items()}
            per_fold.append({"train_loss": train_loss, **scores})
        ctx.report(epoch=epoch, **mean_metrics(per_fold))
    return models


def mean_metrics(per_fold: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Return the mean of each metric over folds, plus `val_auc_std` when there are several folds.

    `val_auc_std` is the population standard deviation (ddof 0) of the folds' `val_auc`.
    """
    means = {name: float(np.mean([fold[name] for fold in per_fold])) for name in per_fold[0]}
    if len(per_fold) > 1 and "val_auc" in means:
        means["val_auc_std"] = float(np.std([fold["val_auc"] for fold in per_fold]))
    return means


def _rows(split: Split, rows: np.ndarray) -> Split:
    index = torch.as_tensor(rows, device=split.y.device)
    return Split(split.x[index], split.y[index])
