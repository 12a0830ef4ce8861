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
    params: tuple[str, ...] = ()
    # Predictions of the best trial's model for the study report (objectives.predictions).
    predict: str | None = None


@dataclass(frozen=True)
class DataSource:
    """A named data set: the loader that reads it, its file name in the data folder, and loader defaults."""

    loader: str
    file: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


CLASSIFIER_METRICS = ("val_auc", "val_acc", "val_loss", "train_loss")
# Params the shared training loop reads (objectives.training).
TRAINING_PARAMS = ("lr", "optimizer", "beta1", "beta2", "momentum", "nesterov", "weight_decay", "batch_size",
                   "class_weight", "label_smoothing", "schedule")
SPLIT_KEYS = ("val_fraction", "test_fraction", "split_seed")

OBJECTIVES: dict[str, BuiltinObjective] = {
    "tabular_classifier": BuiltinObjective(
        train="objectives.tabular:train",
        evaluate="objectives.tabular:evaluate",
        predict="objectives.predictions:classifier_predictions",
        metrics=CLASSIFIER_METRICS,
        description="MLP classifier on tabular features",
        loader="objectives.data:load_breast_cancer",
        params=(*TRAINING_PARAMS, "depth", "width", "dropout"),
    ),
    "image_classifier": BuiltinObjective(
        train="objectives.xray:train",
        evaluate="objectives.xray:evaluate",
        predict="objectives.predictions:classifier_predictions",
        metrics=CLASSIFIER_METRICS,
        description="CNN classifier on images (MedMNIST .npz files or image folders)",
        loader="objectives.images:load_images",
        params=(*TRAINING_PARAMS, "depth", "width", "dropout", "augment"),
    ),
    "credit_classifier": BuiltinObjective(
        train="objectives.credit:train",
        evaluate="objectives.credit:evaluate",
        predict="objectives.predictions:classifier_predictions",
        metrics=(*CLASSIFIER_METRICS, "val_cost"),
        description="MLP classifier of credit applicants that also reports the mean cost of its decisions",
        loader="objectives.tables:load_table",
        params=(*TRAINING_PARAMS, "depth", "width", "dropout"),
    ),
    "forecaster": BuiltinObjective(
        train="objectives.energy:train",
        evaluate="objectives.energy:evaluate",
        predict="objectives.predictions:forecast_predictions",
        metrics=("val_mape", "val_mae", "val_loss", "train_loss", "val_naive_mape"),
        description="MLP or 1D-CNN forecast of an hourly series, compared with the seasonal-naive forecast",
        loader="objectives.series:load_series",
        params=("lr", "optimizer", "beta1", "beta2", "momentum", "nesterov", "weight_decay", "batch_size",
                "depth", "width", "dropout", "lookback", "model", "loss"),
    ),
}

DATASETS: dict[str, DataSource] = {
    "breast_cancer": DataSource(
        loader="objectives.data:load_breast_cancer",
        description="Wisconsin diagnostic breast cancer, 569 rows, shipped with scikit-learn",
    ),
    "pneumoniamnist": DataSource(
        loader="objectives.images:load_images",
        file="pneumoniamnist.npz",
        description="PneumoniaMNIST chest X-rays (MedMNIST v2), 28x28 grayscale, normal or pneumonia",
    ),
    "german_credit": DataSource(
        loader="objectives.tables:load_table",
        file="german.data",
        defaults={"sep": " ", "header": "none", "target": 20, "positive": 2, "cost_fn": 5, "cost_fp": 1},
        description="Statlog German credit, 1000 applicants, 20 attributes (13 categorical); class 2 (bad) is positive",
    ),
    "pjme": DataSource(
        loader="objectives.series:load_series",
        file="PJME_hourly.csv",
        defaults={"time": "Datetime", "target": "PJME_MW", "time_format": "%Y-%m-%d %H:%M:%S"},
        description="PJM East hourly electricity load in MW, 2002-01-01 to 2018-08-03, 145 366 rows",
    ),
}

# The data settings each built-in loader reads, besides name, path, dir and loader.
LOADER_KEYS: dict[str, tuple[str, ...]] = {
    "objectives.data:load_breast_cancer": SPLIT_KEYS,
    "objectives.images:load_images": (*SPLIT_KEYS, "size", "channels", "url"),
    "objectives.series:load_series": ("time", "target", "time_format", "duplicates", "horizon", "lookback", "val_fraction", "test_fraction"),
    "objectives.tables:load_table": (*SPLIT_KEYS, "target", "sep", "header", "positive", "categorical", "class_weights", "cost_fn", "cost_fp"),
}
