"""Tabular classification data from a delimited text file, such as CSV.

pandas reads the file; scikit-learn imputes, one-hot encodes and scales it with statistics of the train split only.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from objectives import DATASETS
from objectives.data import Dataset, Split, locate, split_settings, stratified_split
from tuner.errors import TunerError, did_you_mean

HEADERS = ("infer", "none")
SEPARATOR_EXAMPLES = "',', ';', '\\t' or ' '"


@dataclass(frozen=True)
class TableOptions:
    """The `data` settings for reading the table and coding its labels."""

    sep: str
    header: str
    target: str | int
    positive: Any
    categorical: tuple[str | int, ...] | None
    class_weights: bool
    cost_fn: float | None
    cost_fp: float | None


@dataclass(frozen=True)
class Labels:
    """The target column coded as integer labels, with the original label of each code."""

    codes: np.ndarray
    classes: tuple[Any, ...]
    positive: Any


def load_table(settings: Mapping[str, Any]) -> Dataset:
    """Load a classification table, split it stratified, and encode it with train statistics only.

    Binary targets code the positive class (`data.positive`, by default the
    minority class) as 1; multi-class targets code the labels in sorted order.

    Raises:
        TunerError: The file is missing or unreadable, or a data setting does not fit it.
    """
    options = table_options(settings)
    path = locate(settings, _named_file(settings))
    raw = _read_bytes(path)
    table = read_table(raw, path, options)
    target = _target_column(table, path, options)
    labels = code_labels(table[target], target, options)
    split = split_settings(settings)
    classes = tuple(str(label) for label in labels.classes)
    rows = dict(zip(("train", "val", "test"), stratified_split(labels.codes, split, classes)))

    features, names = encode_features(table.drop(columns=[target]), target, options, rows["train"])
    splits = {
        name: Split(torch.tensor(features[indices], dtype=torch.float32), torch.tensor(labels.codes[indices]))
        for name, indices in rows.items()
    }
    info = {"target": target, "positive": labels.positive, "features": names, "rows": rows, "split_seed": split["split_seed"]}
    if options.class_weights:
        info["class_weights"] = class_weights(labels.codes[rows["train"]], len(classes))
    if options.cost_fn is not None:
        info["cost"] = {"fn": options.cost_fn, "fp": options.cost_fp}
    return Dataset(
        name=str(settings.get("name") or path.stem),
        **splits,
        n_classes=len(classes),
        fingerprint=_fingerprint(raw, options, split),
        classes=classes,
        info=info,
    )


def encode_features(features: pd.DataFrame, target: str, options: TableOptions, train: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Impute, one-hot encode and scale every row with statistics of the `train` rows; return the matrix and its column names.

    Raises:
        TunerError: `data.categorical` names a column that is missing or is the target.
    """
    categorical = _categorical_columns(features, target, options)
    features = features.copy()
    features[categorical] = features[categorical].apply(_as_categories)
    encoder = _encoder(features, categorical).fit(features.iloc[train])
    names = tuple(str(name) for name in encoder.get_feature_names_out())
    return encoder.transform(features), names


def table_options(settings: Mapping[str, Any]) -> TableOptions:
    """Read and check the table settings, with their defaults filled in.

    Raises:
        TunerError: A setting has an invalid type or value.
    """
    sep = settings.get("sep", ",")
    if not isinstance(sep, str) or sep == "":
        raise TunerError(f"data.sep: must be a non-empty string, the field separator; got {sep!r}. Use one of {SEPARATOR_EXAMPLES}.")
    header = settings.get("header", "infer")
    if header not in HEADERS:
        raise TunerError(f"data.header: must be infer (the first row names the columns) or none; got {header!r}.")
    target = settings.get("target")
    if target is None or isinstance(target, bool) or not isinstance(target, (str, int)):
        raise TunerError(f"data.target: must name the label column, or give its 0-based index when data.header is none; got {target!r}.")
    categorical = settings.get("categorical")
    if categorical is not None and (isinstance(categorical, (str, bytes)) or not isinstance(categorical, Sequence)):
        raise TunerError(f"data.categorical: must be a list of column names or indexes; got {categorical!r}.")
    class_weights_on = settings.get("class_weights", False)
    if not isinstance(class_weights_on, bool):
        raise TunerError(f"data.class_weights: must be true or false; got {class_weights_on!r}.")
    cost_fn, cost_fp = _costs(settings)
    return TableOptions(
        sep=sep,
        header=header,
        target=target,
        positive=settings.get("positive"),
        categorical=None if categorical is None else tuple(categorical),
        class_weights=class_weights_on,
        cost_fn=cost_fn,
        cost_fp=cost_fp,
    )


def read_table(raw: bytes, path: Path, options: TableOptions) -> pd.DataFrame:
    """Parse the file's bytes with pandas; without a header, columns are named by their 0-based index.

    Raises:
        TunerError: pandas cannot parse the file, or it has no data rows.
    """
    header = 0 if options.header == "infer" else None
    try:
        table = pd.read_csv(io.BytesIO(raw), sep=options.sep, header=header)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TunerError(
            f"data: cannot parse '{path}' with sep {options.sep!r} and header {options.header}: {reason}. "
            f"Check that it is a delimited text table, and set data.sep to its field separator, such as {SEPARATOR_EXAMPLES}."
        ) from None
    if table.empty:
        raise TunerError(f"data: '{path}' has no data rows. Give a file with a row per example.")
    table.columns = [str(column) for column in table.columns]
    return table


def code_labels(column: pd.Series, target: str, options: TableOptions) -> Labels:
    """Code the target column as integer labels: positive class 1 when binary, sorted order otherwise.

    Raises:
        TunerError: The column has missing values or one class, or `positive` is not one of its labels.
    """
    missing = int(column.isna().sum())
    if missing:
        rows = ", ".join(str(row) for row in np.flatnonzero(column.isna().to_numpy())[:5])
        raise TunerError(f"data.target: column '{target}' has no label in {missing} of {len(column)} rows (0-based data rows {rows}). Fill in or drop those rows.")
    values = _sorted_labels(column)
    listed = ", ".join(str(value) for value in values)
    if len(values) < 2:
        raise TunerError(f"data.target: column '{target}' has only one class ({listed}); a classifier needs at least two. Check data.target.")
    positive = None if options.positive is None else _find_label(values, options.positive)
    if options.positive is not None and positive is None:
        raise TunerError(f"data.positive: {options.positive!r} is not a label of column '{target}'. Labels: {listed}. Set data.positive to one of them.")
    if len(values) > 2:
        _check_binary_only(options, target, len(values), listed)
        codes = column.map({value: code for code, value in enumerate(values)}).to_numpy(dtype=np.int64)
        return Labels(codes, tuple(values), None)

    if positive is None:
        positive = _minority(column, values)
    negative = values[0] if positive == values[1] else values[1]
    codes = column.map({negative: 0, positive: 1}).to_numpy(dtype=np.int64)
    return Labels(codes, (negative, positive), positive)


def class_weights(codes: np.ndarray, n_classes: int) -> tuple[float, ...]:
    """Return balanced class weights, n_rows / (n_classes * rows of the class), for a loss function."""
    counts = np.bincount(codes, minlength=n_classes)
    return tuple(float(len(codes) / (n_classes * count)) for count in counts)


def _named_file(settings: Mapping[str, Any]) -> str | None:
    source = DATASETS.get(settings.get("name"))
    return source.file if source is not None else None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise TunerError(f"data: cannot read '{path}' ({error.strerror}). Give a readable file in data.path.") from None


def _costs(settings: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """Return the costs of a false negative and a false positive, or (None, None) when neither is set."""
    cost_fn, cost_fp = settings.get("cost_fn"), settings.get("cost_fp")
    if cost_fn is None and cost_fp is None:
        return None, None
    for key, value in (("cost_fn", cost_fn), ("cost_fp", cost_fp)):
        if value is None:
            raise TunerError(f"data.{key}: missing. Set data.cost_fn (a false negative) and data.cost_fp (a false positive) together.")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise TunerError(f"data.{key}: must be a number >= 0, the cost of one misclassified row; got {value!r}.")
    if cost_fn + cost_fp == 0:
        raise TunerError("data.cost_fn, data.cost_fp: must not both be 0; got 0 and 0. Give the cost of at least one kind of error.")
    return float(cost_fn), float(cost_fp)


def _target_column(table: pd.DataFrame, path: Path, options: TableOptions) -> str:
    """Return the name of the target column, checked against the table."""
    columns = list(table.columns)
    target = options.target
    hint = f" With sep {options.sep!r} the file parsed into one column, so check data.sep." if len(columns) == 1 else ""
    if options.header == "none":
        if not isinstance(target, int):
            raise TunerError(f"data.target: must be a 0-based column index when data.header is none; got {target!r}. Give an index, or set data.header to infer.")
        if not 0 <= target < len(columns):
            raise TunerError(
                f"data.target: column index {target} is out of range; '{path}' has {len(columns)} columns "
                f"(indexes 0 to {len(columns) - 1}). Give an index in that range.{hint}"
            )
        return columns[target]
    if str(target) in columns:
        return str(target)
    raise TunerError(
        f"data.target: column {str(target)!r} not found in '{path}'.{did_you_mean(str(target), columns)} "
        f"Columns: {', '.join(columns)}. Set data.target to one of them.{hint}"
    )


def _categorical_columns(features: pd.DataFrame, target: str, options: TableOptions) -> list[str]:
    """Return the columns to one-hot encode: `data.categorical`, or else the non-numeric columns."""
    if options.categorical is None:
        return [column for column in features.columns if not pd.api.types.is_numeric_dtype(features[column])]
    chosen = [str(column) for column in options.categorical]
    for column in chosen:
        if column == target:
            raise TunerError(f"data.categorical: '{column}' is the target column. Remove it from data.categorical.")
        if column not in features.columns:
            raise TunerError(f"data.categorical: column '{column}' not found. Columns: {', '.join(features.columns)}. List only these.")
    return list(dict.fromkeys(chosen))


def _as_categories(column: pd.Series) -> pd.Series:
    """Convert a column to strings with NaN for missing values, as SimpleImputer and OneHotEncoder expect."""
    text = column.astype("string")
    return text.astype(object).where(text.notna(), np.nan)


def _encoder(features: pd.DataFrame, categorical: list[str]) -> ColumnTransformer:
    numeric = [column for column in features.columns if column not in categorical]
    return ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore", sparse_output=False)), categorical),
        ],
        sparse_threshold=0.0,
    )


def _sorted_labels(column: pd.Series) -> list[Any]:
    values = [value.item() if hasattr(value, "item") else value for value in column.unique()]
    if pd.api.types.is_numeric_dtype(column):
        return sorted(values)
    return sorted(values, key=str)


def _find_label(values: Sequence[Any], requested: Any) -> Any:
    """Return the label equal to `requested`, comparing as text too, so that 2 matches '2'."""
    for value in values:
        if value == requested or str(value) == str(requested):
            return value
    return None


def _minority(column: pd.Series, values: Sequence[Any]) -> Any:
    """Return the less frequent of two labels; on a tie, the later one in sorted order."""
    counts = column.value_counts()
    return values[0] if counts[values[0]] < counts[values[1]] else values[1]


def _check_binary_only(options: TableOptions, target: str, n_classes: int, listed: str) -> None:
    if options.positive is not None:
        raise TunerError(f"data.positive: only for a target with two classes; column '{target}' has {n_classes} ({listed}). Drop data.positive.")
    if options.cost_fn is not None:
        raise TunerError(f"data.cost_fn, data.cost_fp: only for a target with two classes; column '{target}' has {n_classes} ({listed}). Drop both.")


def _fingerprint(raw: bytes, options: TableOptions, split: Mapping[str, Any]) -> str:
    """Return a short hash of the file's bytes, the table settings and the split settings."""
    digest = hashlib.sha256(raw)
    digest.update(repr(sorted(vars(options).items())).encode())
    digest.update(repr(sorted(split.items())).encode())
    return digest.hexdigest()[:16]
