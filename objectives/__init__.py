"""Built-in objectives and data sets, named in space files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BuiltinObjective:
    """A built-in objective: its functions, the metrics it reports, and its default data loader."""

    train: str
    evaluate: str
    metrics: tuple[str, ...]
    description: str
    loader: str


@dataclass(frozen=True)
class DataSource:
    """A named data set: the loader that reads it, its file name in the data folder, and loader defaults."""

    loader: str
    file: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


CLASSIFIER_METRICS = ("val_auc", "val_acc", "val_loss", "train_loss")

OBJECTIVES: dict[str, BuiltinObjective] = {
    "tabular_classifier": BuiltinObjective(
        train="objectives.tabular:train",
        evaluate="objectives.tabular:evaluate",
        metrics=CLASSIFIER_METRICS,
        description="MLP classifier on tabular features",
        loader="objectives.data:load_breast_cancer",
    ),
}

DATASETS: dict[str, DataSource] = {
    "breast_cancer": DataSource(
        loader="objectives.data:load_breast_cancer",
        description="Wisconsin diagnostic breast cancer, 569 rows, shipped with scikit-learn",
    ),
}
