"""Built-in objectives wrapped so that every report also carries the time spent inside the objective.

tuner's reports carry no timing, so useful_compute.py runs these wrappers as
user objectives (`timed_objective:image_classifier`, ...). tuner stores the
metrics of a trial's last report in its `last_metrics` user attribute. Each
report adds:

- `compute_s`: seconds inside the objective since it was entered, less the
  time spent inside earlier `report()` calls: building the model, training
  and validating;
- `report_s`: seconds spent inside earlier `report()` calls. A Ray Tune
  function trainable waits in `tune.report` until the driver requests the
  next result, so this is per-epoch overhead of tuner and Ray;
- `objective_start`: the `time.monotonic()` of the entry, one clock for all
  processes of a Linux machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from objectives import OBJECTIVES
from tuner.context import TrialContext
from tuner.settings import load_callable


def image_classifier(ctx: TrialContext) -> Any:
    return _timed(ctx, "image_classifier")


def tabular_classifier(ctx: TrialContext) -> Any:
    return _timed(ctx, "tabular_classifier")


def credit_classifier(ctx: TrialContext) -> Any:
    return _timed(ctx, "credit_classifier")


def forecaster(ctx: TrialContext) -> Any:
    return _timed(ctx, "forecaster")


def _timed(ctx: TrialContext, builtin: str) -> Any:
    """Run the built-in objective with a report that adds the timing values."""
    entered = time.monotonic()
    in_report = 0.0
    report: Callable[..., None] = ctx.report

    def timed_report(epoch: int, **metrics: float) -> None:
        nonlocal in_report
        called = time.monotonic()
        report(epoch, **metrics, compute_s=called - entered - in_report, report_s=in_report, objective_start=entered)
        in_report += time.monotonic() - called

    ctx.report = timed_report  # type: ignore[method-assign]
    return load_callable(OBJECTIVES[builtin].train, "objective")(ctx)
