"""Hourly time series from a CSV file, cut into forecasting windows and split by time.

A window is `lookback` consecutive input hours and, as target, the value `horizon` hours after its last input hour.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pandas.tseries.api import guess_datetime_format

from objectives import DATASETS
from objectives.data import Dataset, Split, fingerprint, locate
from tuner.errors import TunerError, unknown_name

logger = logging.getLogger(__name__)

SERIES_DEFAULTS: dict[str, Any] = {
    "time_format": None,
    "duplicates": "mean",
    "horizon": 24,
    "lookback": 168,
    "val_fraction": 0.15,
    "test_fraction": 0.15,
}
SETTING_KEYS = ("name", "loader", "path", "dir", "time", "target", *SERIES_DEFAULTS)
DUPLICATE_RULES = ("mean", "first", "last")
# The seasonal-naive forecast repeats the value of the same hour one week (168 hours) earlier.
SEASON_HOURS = 168
CALENDAR_FEATURES = ("hour_sin", "hour_cos", "weekday_sin", "weekday_cos", "month_sin", "month_cos")
SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class SeriesSplit(Split):
    """The windows of one split.

    `x` contains the scaled input hours, then the calendar features. `y` is the
    scaled target and `actual` the same target in target units such as MW.
    `naive` is the seasonal-naive forecast in target units, NaN where that hour
    is missing, and `times` are the target hours.
    """

    actual: torch.Tensor
    naive: torch.Tensor
    times: np.ndarray

    def to(self, device: torch.device) -> SeriesSplit:
        return SeriesSplit(self.x.to(device), self.y.to(device), self.actual.to(device), self.naive.to(device), self.times)


def load_series(settings: Mapping[str, Any]) -> Dataset:
    """Read an hourly series from CSV and cut it into train, validation and test windows of `data.lookback` hours.

    Raises:
        TunerError: A setting is invalid, or the file cannot be read as the series described.
    """
    options = series_options(settings)
    path = locate(settings, _file_name(settings))
    times, values, n_duplicates = read_series(path, options)
    grid = HourlyGrid.from_series(times, values)
    logger.info("Read %d hours from %s: %d duplicated timestamps resolved by %s, %d missing hours",
                len(values), path, n_duplicates, options["duplicates"], grid.n_missing)

    # Windows span data.lookback hours, the longest history a trial may sample, and a trial with a
    # shorter `lookback` param uses the last hours of each window. So the data set reaches the trials
    # once through Ray's object store, and every lookback trains and validates on the same windows.
    return _window_dataset(path, grid, options, n_duplicates)


def series_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return the series settings with defaults filled in, after checking each one."""
    unknown = [f"data.{key}: {unknown_name('key in data', key, SETTING_KEYS)}" for key in settings if key not in SETTING_KEYS]
    if unknown:
        raise TunerError(unknown)
    options = {**SERIES_DEFAULTS, **settings}

    for key in ("time", "target"):
        if not isinstance(options.get(key), str) or not options[key]:
            raise TunerError(f"data.{key}: missing. Set data.{key} to the name of the {key} column.")
    for key in ("horizon", "lookback"):
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TunerError(f"data.{key}: must be a whole number of hours >= 1; got {value!r}.")
    for key in ("val_fraction", "test_fraction"):
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.5:
            raise TunerError(f"data.{key}: must be a fraction in (0, 0.5); got {value!r}.")
    if options["duplicates"] not in DUPLICATE_RULES:
        raise TunerError(f"data.duplicates: {unknown_name('rule', options['duplicates'], DUPLICATE_RULES)}")
    if options["time_format"] is not None and not isinstance(options["time_format"], str):
        raise TunerError(f"data.time_format: must be a strptime format such as '%Y-%m-%d %H:%M:%S'; got {options['time_format']!r}.")
    return options


def read_series(path: Path, options: Mapping[str, Any]) -> tuple[pd.DatetimeIndex, np.ndarray, int]:
    """Read the time and target columns, sort by time and resolve duplicated timestamps.

    Times with UTC offsets are converted to UTC, and rows with an empty target
    count as missing hours. Returns the sorted
    unique times, their values and the number of duplicated rows dropped.
    """
    table = _read_csv(path)
    columns = ", ".join(map(str, table.columns))
    for key in ("time", "target"):
        if options[key] not in table.columns:
            raise TunerError(f"data.{key}: column '{options[key]}' not found in {path}; columns: {columns}. Set data.{key} to one of them.")

    times = _parse_times(table[options["time"]], options["time_format"], path)
    values = _parse_values(table[options["target"]], options["target"], path)
    series = pd.Series(values, index=times).dropna().sort_index(kind="stable")
    unique = _resolve_duplicates(series, options["duplicates"])
    return unique.index, unique.to_numpy(dtype=np.float64), len(series) - len(unique)


@dataclass(frozen=True)
class HourlyGrid:
    """A series laid on consecutive hours from `start`; `values` is NaN at missing hours."""

    start: pd.Timestamp
    values: np.ndarray

    @classmethod
    def from_series(cls, times: pd.DatetimeIndex, values: np.ndarray) -> HourlyGrid:
        """Place sorted unique times on an hourly grid.

        Raises:
            TunerError: Two times are not a whole number of hours apart.
        """
        if len(times) == 0:
            raise TunerError("data.target: the file has no values. Give a file with at least one row of data.")
        offsets = (times - times[0]) / pd.Timedelta(hours=1)
        off_grid = np.flatnonzero(offsets != np.round(offsets))
        if off_grid.size:
            raise TunerError(
                f"data.time: times must be whole hours apart; '{times[off_grid[0]]}' is {offsets[off_grid[0]]:g} hours "
                f"after the first time '{times[0]}'. Resample the series to hourly values."
            )
        hours = np.round(offsets).astype(np.int64)
        grid = np.full(hours[-1] + 1, np.nan)
        grid[hours] = values
        return cls(times[0], grid)

    @property
    def n_missing(self) -> int:
        return int(np.isnan(self.values).sum())

    def times(self, hours: np.ndarray) -> pd.DatetimeIndex:
        """Return the times of the given hour numbers (0 is `start`)."""
        return self.start + pd.to_timedelta(hours, unit="h")


def window_ends(present: np.ndarray, lookback: int, horizon: int) -> np.ndarray:
    """Return the last input hour of every window whose hours, from the first input hour to the target hour, all exist."""
    span = lookback + horizon
    if len(present) < span:
        return np.empty(0, dtype=np.int64)
    counts = np.concatenate(([0], np.cumsum(present)))
    ends = np.arange(lookback - 1, len(present) - horizon)
    return ends[counts[ends + horizon + 1] - counts[ends + 1 - lookback] == span]


def seasonal_lag(horizon: int) -> int:
    """Return how many hours before the target the seasonal-naive forecast looks.

    One week, or whole weeks when the horizon is longer than a week, so that
    the value is known when the forecast is made.
    """
    return SEASON_HOURS * math.ceil(horizon / SEASON_HOURS)


def calendar_features(times: pd.DatetimeIndex) -> np.ndarray:
    """Encode hour of day, weekday and month as sine and cosine pairs, in the order of CALENDAR_FEATURES."""
    angles = [2 * np.pi * times.hour / 24, 2 * np.pi * times.day_of_week / 7, 2 * np.pi * (times.month - 1) / 12]
    columns = [f(np.asarray(angle, dtype=np.float64)) for angle in angles for f in (np.sin, np.cos)]
    return np.stack(columns, axis=1)


def _file_name(settings: Mapping[str, Any]) -> str | None:
    source = DATASETS.get(settings.get("name"))
    return source.file if source is not None else None


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IsADirectoryError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TunerError(f"data.path: cannot read '{path}' as CSV ({reason}). Give a comma-separated text file with a header row.") from None


def _parse_times(column: pd.Series, time_format: str | None, path: Path) -> pd.DatetimeIndex:
    text = column.fillna("").str.strip()
    tried = time_format or (guess_datetime_format(text.iloc[0]) if len(text) else None)
    format_label = repr(tried) if tried else "inferred by pandas"
    try:
        times = pd.to_datetime(text, format=tried, errors="coerce", utc=True)
    except (ValueError, TypeError) as error:
        raise TunerError(
            f"data.time: column '{column.name}' of {path} does not parse with format {format_label} ({error}); first value {text.iloc[0]!r}. "
            f"Set data.time_format to the strptime format of the column."
        ) from None
    bad = np.flatnonzero(times.isna().to_numpy())
    if bad.size:
        raise TunerError(
            f"data.time: value {text.iloc[bad[0]]!r} on line {bad[0] + 2} of {path} does not parse with format {format_label}. "
            f"Set data.time_format to the strptime format of column '{column.name}'."
        )
    # Times without an offset are read as UTC, which keeps their clock time.
    return pd.DatetimeIndex(times).tz_localize(None)


def _parse_values(column: pd.Series, name: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    invalid = np.flatnonzero((np.isnan(values) & column.notna().to_numpy()) | np.isinf(values))
    if invalid.size:
        raise TunerError(
            f"data.target: column '{name}' must contain finite numbers; got {column.iloc[invalid[0]]!r} on line {invalid[0] + 2} of {path}. "
            f"Fix that row or leave the cell empty to mark a missing hour."
        )
    return values


def _resolve_duplicates(series: pd.Series, rule: str) -> pd.Series:
    if rule == "mean":
        return series.groupby(level=0, sort=True).mean()
    return series[~series.index.duplicated(keep=rule)]


def _window_dataset(path: Path, grid: HourlyGrid, options: Mapping[str, Any], n_duplicates: int) -> Dataset:
    present = ~np.isnan(grid.values)
    regions = _hour_regions(present, options)
    ends = _split_ends(present, regions, options, path)
    mean, std = _train_scale(grid.values[(regions == 0) & present], options["target"])
    splits = {name: _make_split(grid, ends[name], options, mean, std) for name in SPLIT_NAMES}

    info = {
        "time": options["time"],
        "target": options["target"],
        "mean": mean,
        "std": std,
        "lookback": options["lookback"],
        "horizon": options["horizon"],
        "seasonal_lag": seasonal_lag(options["horizon"]),
        "calendar_features": CALENDAR_FEATURES,
        "n_hours": int(present.sum()),
        "duplicates": n_duplicates,
        "missing_hours": grid.n_missing,
    }
    digest = fingerprint(grid.values, np.array([grid.start.value]), {k: options[k] for k in SERIES_DEFAULTS})
    return Dataset(
        name=str(options.get("name") or path.stem),
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        n_classes=0,
        fingerprint=digest,
        info=info,
    )


def _split_ends(present: np.ndarray, regions: np.ndarray, options: Mapping[str, Any], path: Path) -> dict[str, np.ndarray]:
    """Return the window ends of each split, keeping only windows that lie inside one split."""
    lookback, horizon = options["lookback"], options["horizon"]
    ends = window_ends(present, lookback, horizon)
    ends = ends[regions[ends - lookback + 1] == regions[ends + horizon]]
    by_split = {name: ends[regions[ends] == number] for number, name in enumerate(SPLIT_NAMES)}
    for name, split_ends in by_split.items():
        if split_ends.size == 0:
            raise TunerError(
                f"data: no {name} window of {lookback + horizon} consecutive hours (lookback {lookback} + horizon {horizon}) "
                f"in {path}, which has {int(present.sum())} hours. Lower data.lookback or data.horizon, or give a longer series."
            )
    return by_split


def _train_scale(train_values: np.ndarray, target: str) -> tuple[float, float]:
    """Return the mean and standard deviation of the train hours, which scale every split."""
    mean, std = float(train_values.mean()), float(train_values.std())
    if std == 0:
        raise TunerError(f"data.target: column '{target}' is constant in the train split ({mean:g}), so there is nothing to forecast. Give a series that varies.")
    return mean, std


def _hour_regions(present: np.ndarray, options: Mapping[str, Any]) -> np.ndarray:
    """Number every hour 0 (train), 1 (validation) or 2 (test), cutting the present hours by the fractions."""
    hours = np.flatnonzero(present)
    train_share = 1 - options["val_fraction"] - options["test_fraction"]
    cuts = [hours[min(len(hours) - 1, int(len(hours) * share))] for share in (train_share, 1 - options["test_fraction"])]
    return np.searchsorted(np.array(cuts), np.arange(len(present)), side="right")


def _make_split(grid: HourlyGrid, ends: np.ndarray, options: Mapping[str, Any], mean: float, std: float) -> SeriesSplit:
    lookback, horizon = options["lookback"], options["horizon"]
    inputs = grid.values[ends[:, None] + np.arange(1 - lookback, 1)]
    target = ends + horizon
    naive_hours = target - seasonal_lag(horizon)
    naive = np.where(naive_hours >= 0, grid.values[np.maximum(naive_hours, 0)], np.nan)
    times = grid.times(target)

    x = np.concatenate([(inputs - mean) / std, calendar_features(times)], axis=1)
    return SeriesSplit(
        x=torch.tensor(x, dtype=torch.float32),
        y=torch.tensor((grid.values[target] - mean) / std, dtype=torch.float32),
        actual=torch.tensor(grid.values[target], dtype=torch.float64),
        naive=torch.tensor(naive, dtype=torch.float64),
        times=times.to_numpy(),
    )
