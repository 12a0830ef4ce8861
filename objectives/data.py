"""Data sets as in-memory tensors, split into train, validation and test."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer as _sklearn_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from tuner.errors import TunerError

SPLIT_DEFAULTS = {"val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 0}
DATA_DIR_ENV = "TUNER_DATA_DIR"
USER_CACHE = Path.home() / ".cache" / "tuner" / "data"
_FEWER_ROWS_FIX = "Add rows, or change data.val_fraction and data.test_fraction."


@dataclass(frozen=True)
class Split:
    """Features `x` and integer class labels `y` of one split."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Dataset:
    """A data set split three ways; `test` is None while trials run."""

    name: str
    train: Split
    val: Split
    test: Split | None
    n_classes: int
    fingerprint: str
    classes: tuple[str, ...] = ()
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.train.x.shape[1])

    def without_test(self) -> Dataset:
        """Return the data set without its test split, as trials see it."""
        return replace(self, test=None)


def data_dirs(settings: Mapping[str, Any]) -> list[Path]:
    """Return the folders searched for a named data set: data.dir, then $TUNER_DATA_DIR, then the user cache."""
    dirs = [settings.get("dir"), os.environ.get(DATA_DIR_ENV), USER_CACHE]
    return [Path(str(d)).expanduser() for d in dirs if d]


def locate(settings: Mapping[str, Any], file_name: str | None) -> Path:
    """Find the data file: data.path as given, else `file_name` in the data folders.

    Raises:
        TunerError: The file is not there. The message lists the folders to put it in.
    """
    if settings.get("path"):
        path = Path(str(settings["path"])).expanduser()
        if not path.exists():
            raise TunerError(f"data.path: '{path}' not found. Give an existing file or folder.")
        return path
    if file_name is None:
        raise TunerError("data: missing 'path'. Set data.path to your data file or folder.")
    for folder in data_dirs(settings):
        if (folder / file_name).exists():
            return folder / file_name
    searched = ", ".join(str(d) for d in data_dirs(settings))
    raise TunerError(
        f"data: '{file_name}' not found in {searched}. Put the file in one of these folders, "
        f"set {DATA_DIR_ENV} or data.dir to its folder, or give data.path."
    )


def split_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return the split fractions and seed, with defaults filled in and checked."""
    merged = {**SPLIT_DEFAULTS, **{k: settings[k] for k in SPLIT_DEFAULTS if k in settings}}
    for key in ("val_fraction", "test_fraction"):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.5:
            raise TunerError(f"data.{key}: must be a fraction in (0, 0.5); got {value!r}.")
    return merged


def load_breast_cancer(settings: Mapping[str, Any]) -> Dataset:
    """Load the Wisconsin diagnostic breast cancer data shipped with scikit-learn.

    569 patients, 30 features computed from digitised images of fine-needle
    aspirates; the positive class (1) is malignant.
    """
    bunch = _sklearn_breast_cancer()
    # scikit-learn codes malignant as 0; flip so that the positive class is the disease.
    labels = 1 - bunch.target
    return tabular_dataset("breast_cancer", bunch.data, labels, split_settings(settings), classes=("benign", "malignant"))


def tabular_dataset(name: str, features: np.ndarray, labels: np.ndarray, split: Mapping[str, Any], classes: tuple[str, ...] = ()) -> Dataset:
    """Split stratified, scale with train statistics only, and convert to tensors."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    train, val, test = stratified_split(labels, split, classes)

    scaler = StandardScaler().fit(features[train])

    def to_split(rows: np.ndarray) -> Split:
        x = torch.tensor(scaler.transform(features[rows]), dtype=torch.float32)
        return Split(x, torch.tensor(labels[rows]))

    return Dataset(
        name=name,
        train=to_split(train),
        val=to_split(val),
        test=to_split(test),
        n_classes=int(labels.max()) + 1,
        fingerprint=fingerprint(features, labels, split),
        classes=classes,
        info={"split_seed": split["split_seed"]},
    )


def stratified_split(labels: np.ndarray, split: Mapping[str, Any], classes: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the row indices of the train, validation and test splits, each stratified by class.

    Raises:
        TunerError: A class has too few rows to appear in every split.
    """
    labels = np.asarray(labels, dtype=np.int64)
    _check_rows_per_class(labels, split, classes)

    indices = np.arange(len(labels))
    seed = split["split_seed"]
    val_share = split["val_fraction"] / (1 - split["test_fraction"])
    try:
        rest, test = train_test_split(indices, test_size=split["test_fraction"], stratify=labels, random_state=seed)
        train, val = train_test_split(rest, test_size=val_share, stratify=labels[rest], random_state=seed)
    except ValueError as error:
        # Rounding of the split sizes can still leave a split with fewer rows than classes.
        raise TunerError(
            f"data: too few rows for the split: {len(labels)} rows with val_fraction {split['val_fraction']} "
            f"and test_fraction {split['test_fraction']} ({error}). {_FEWER_ROWS_FIX}"
        ) from None
    return train, val, test


def fingerprint(features: np.ndarray, labels: np.ndarray, split: Mapping[str, Any]) -> str:
    """Return a short hash of the raw data and the split settings."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(features).tobytes())
    digest.update(np.ascontiguousarray(labels).tobytes())
    digest.update(repr(sorted(split.items())).encode())
    return digest.hexdigest()[:16]


def _check_rows_per_class(labels: np.ndarray, split: Mapping[str, Any], classes: Sequence[str]) -> None:
    """Raise unless each class has enough rows for the smallest split to get one on average."""
    fractions = (split["val_fraction"], split["test_fraction"], 1 - split["val_fraction"] - split["test_fraction"])
    # The tolerance keeps float error, as in 1 - 0.3 - 0.2 = 0.49999999999999994, from adding a row.
    needed = math.ceil(1 / min(fractions) - 1e-9)
    counts = np.bincount(labels)
    for label, count in enumerate(counts):
        if count >= needed:
            continue
        name = classes[label] if label < len(classes) else str(label)
        raise TunerError(
            f"data: too few rows for the split: class '{name}' has {count} rows, but val_fraction "
            f"{split['val_fraction']} and test_fraction {split['test_fraction']} need at least {needed} rows "
            f"of each class. {_FEWER_ROWS_FIX}"
        )
