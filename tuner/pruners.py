"""Pruner names and settings -> Ray Tune schedulers that record their stop decisions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray.tune.schedulers import (
    AsyncHyperBandScheduler,
    FIFOScheduler,
    MedianStoppingRule,
    TrialScheduler,
)

# Each pruner: the Ray scheduler class, its fixed arguments, and the settings
# a space file may set with their defaults. Epochs are the time unit.
PRUNERS: dict[str, tuple[type[TrialScheduler], dict[str, Any], dict[str, Any]]] = {
    "asha": (AsyncHyperBandScheduler, {"brackets": 1}, {"grace_period": 3, "reduction_factor": 3}),
    "hyperband": (AsyncHyperBandScheduler, {}, {"grace_period": 3, "reduction_factor": 3, "brackets": 3}),
    "median": (MedianStoppingRule, {"hard_stop": True}, {"grace_period": 3, "min_samples_required": 3}),
    "none": (FIFOScheduler, {}, {}),
}
_POSITIVE = {"grace_period": int, "reduction_factor": (int, float), "brackets": int, "min_samples_required": int}


def check_pruner_options(name: str, options: Mapping[str, Any], max_epochs: int) -> list[str]:
    """Return one problem line per invalid pruner setting (empty when valid)."""
    allowed = PRUNERS[name][2]
    problems = []
    for key, value in options.items():
        if key not in allowed:
            listed = ", ".join(sorted(allowed)) or "none"
            problems.append(f"pruner.{key}: unknown setting for pruner '{name}'. Allowed: {listed}.")
            continue
        if isinstance(value, bool) or not isinstance(value, _POSITIVE[key]) or value <= 0:
            problems.append(f"pruner.{key}: must be a positive number; got {value!r}.")
        elif key == "reduction_factor" and value <= 1:
            problems.append(f"pruner.reduction_factor: must be > 1; got {value!r}.")
        elif key == "grace_period" and value > max_epochs:
            problems.append(f"pruner.grace_period: must be <= max_epochs ({max_epochs}); got {value!r}. Lower it or raise max_epochs.")
    return problems


def effective_options(name: str, options: Mapping[str, Any], max_epochs: int) -> dict[str, Any]:
    """Return the pruner's settings as it runs: the given ones over the defaults.

    A default grace period longer than the epoch budget is cut to it; a
    given one is checked instead (check_pruner_options).
    """
    defaults = dict(PRUNERS[name][2])
    if "grace_period" in defaults:
        defaults["grace_period"] = min(defaults["grace_period"], max_epochs)
    return {**defaults, **options}


def create_pruner(name: str, options: Mapping[str, Any], metric: str, direction: str, max_epochs: int) -> RecordingScheduler:
    """Build the Ray scheduler for pruner `name`, wrapped to record its stop decisions."""
    cls, fixed, _ = PRUNERS[name]
    kwargs: dict[str, Any] = {**fixed, **effective_options(name, options, max_epochs)}
    if cls is not FIFOScheduler:
        kwargs.update(time_attr="epoch", metric=metric, mode=_MODES[direction])
    if cls is AsyncHyperBandScheduler:
        kwargs["max_t"] = max_epochs
    return _RECORDING[cls](**kwargs)


_MODES = {"maximize": "max", "minimize": "min"}


class RecordingScheduler:
    """Mixin that keeps the epoch at which the scheduler stopped each trial.

    Ray marks the last result of a stopped trial `done=True`, exactly like
    the last result of a finished one, so the decision is kept here.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stopped: dict[str, int | None] = {}

    def on_trial_result(self, tune_controller, trial, result):
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP:
            self.stopped[trial.trial_id] = result.get("epoch")
        return decision


class _RecordingAsyncHyperBand(RecordingScheduler, AsyncHyperBandScheduler):
    pass


class _RecordingMedianStoppingRule(RecordingScheduler, MedianStoppingRule):
    pass


class _RecordingFIFO(RecordingScheduler, FIFOScheduler):
    pass


_RECORDING = {
    AsyncHyperBandScheduler: _RecordingAsyncHyperBand,
    MedianStoppingRule: _RecordingMedianStoppingRule,
    FIFOScheduler: _RecordingFIFO,
}
