"""Compact summaries of the best model's predictions, stored in the study for its report.

Only summaries are stored (ROC points, confusion matrices, thinned series),
so a report can be rebuilt from the storage alone, on any machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

MAX_ROC_POINTS = 200  # Points kept per ROC curve; more add size but no visible detail.
MAX_SERIES_POINTS = 1000  # Points kept of a whole forecast split, evenly spaced.
ZOOM_POINTS = 336  # The last two weeks of an hourly split, kept at full resolution.


def summarize(predictions: Mapping[str, Any]) -> dict[str, Any]:
    """Summarize the output of an objective's predict function for the report.

    Raises:
        ValueError: The predictions have an unknown `kind` or inconsistent shapes.
    """
    kind = predictions.get("kind")
    if kind == "classification":
        return _classification(predictions)
    if kind == "forecast":
        return _forecast(predictions)
    raise ValueError(f"predictions 'kind' must be 'classification' or 'forecast'; got {kind!r}")


def _classification(predictions: Mapping[str, Any]) -> dict[str, Any]:
    labels = np.asarray(predictions["labels"]).astype(int)
    probabilities = np.asarray(predictions["probabilities"], dtype=float)
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise ValueError(f"probabilities must have shape (rows, classes) with {len(labels)} rows; got {probabilities.shape}")
    n_classes = probabilities.shape[1]
    classes = [str(name) for name in predictions.get("classes") or range(n_classes)]
    # A binary classifier has one ROC curve, for the positive (second) class.
    positives = [1] if n_classes == 2 else list(range(n_classes))
    curves = []
    for index in positives:
        truth = labels == index
        if truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, probabilities[:, index])
        keep = _thin(len(fpr), MAX_ROC_POINTS)
        curves.append({
            "class": classes[index],
            "fpr": fpr[keep].round(5).tolist(),
            "tpr": tpr[keep].round(5).tolist(),
            "auc": float(roc_auc_score(truth, probabilities[:, index])),
        })
    matrix = confusion_matrix(labels, probabilities.argmax(axis=1), labels=list(range(n_classes)))
    return {"kind": "classification", "classes": classes, "rows": int(len(labels)), "roc": curves, "confusion": matrix.tolist()}


def _forecast(predictions: Mapping[str, Any]) -> dict[str, Any]:
    times = np.asarray(predictions["time"])
    actual = np.asarray(predictions["actual"], dtype=float).reshape(-1)
    predicted = np.asarray(predictions["predicted"], dtype=float).reshape(-1)
    if not len(times) == len(actual) == len(predicted):
        raise ValueError(f"time, actual and predicted must have one value per row; got {len(times)}, {len(actual)} and {len(predicted)}")
    labels = np.datetime_as_string(times.astype("datetime64[s]"), unit="s") if np.issubdtype(times.dtype, np.datetime64) else times.astype(str)

    def series(rows: np.ndarray) -> dict[str, list]:
        return {"time": labels[rows].tolist(), "actual": actual[rows].round(3).tolist(), "predicted": predicted[rows].round(3).tolist()}

    summary = {"kind": "forecast", "rows": int(len(actual)), "whole": series(_thin(len(actual), MAX_SERIES_POINTS)),
               "last": series(np.arange(max(0, len(actual) - ZOOM_POINTS), len(actual)))}
    metrics = predictions.get("metrics")
    if isinstance(metrics, Mapping):
        summary["metrics"] = {str(name): float(value) for name, value in metrics.items()}
    return summary


def _thin(length: int, limit: int) -> np.ndarray:
    """Return at most `limit` evenly spaced row indices, always with the first and last row."""
    if length <= limit:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, limit).round().astype(int))
