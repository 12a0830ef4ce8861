"""Built-in objectives and data loaders, named in space files."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BuiltinObjective:
    """A built-in objective: train and evaluate functions and the metrics it reports."""

    train: str
    evaluate: str
    metrics: tuple[str, ...]
    description: str


CLASSIFIER_METRICS = ("val_auc", "val_acc", "val_loss", "train_loss")

OBJECTIVES: dict[str, BuiltinObjective] = {
    "tabular_classifier": BuiltinObjective(
        train="objectives.tabular:train",
        evaluate="objectives.tabular:evaluate",
        metrics=CLASSIFIER_METRICS,
        description="MLP classifier on tabular features",
    ),
}

DATA_LOADERS: dict[str, str] = {
    "breast_cancer": "objectives.data:load_breast_cancer",
}
