"""Strategy comparison: each sampler run several times on the same budget, pruner and data.

Runs are interleaved (repeat 1 of every sampler, then repeat 2, ...), so a
machine that slows down during the comparison slows every sampler alike.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from rich.console import Console

from tuner.errors import TunerError, unknown_name
from tuner.samplers import SAMPLERS
from tuner.settings import Settings, load_settings, parse_overrides
from tuner.storage import mask_url, open_storage

logger = logging.getLogger(__name__)

DEFAULT_SAMPLERS = ("grid", "random", "tpe")
DEFAULT_REPEATS = 3
# Run settings that the comparison itself sets for every run.
_SET_PER_RUN = ("sampler", "n_trials", "study", "resume", "warm_start")
COMPARISON_ATTR = "comparison"


@dataclass(frozen=True)
class ComparisonPlan:
    """The runs of a comparison: the settings of each run, in the interleaved order."""

    name: str
    samplers: tuple[str, ...]
    repeats: int
    budget: int
    target: float | None
    runs: tuple[tuple[str, int, Settings], ...]  # (sampler, repeat, settings)


def plan_comparison(overrides: Sequence[str], now: dt.datetime | None = None) -> ComparisonPlan:
    """Check the comparison options and build the settings of every run, before anything runs.

    `samplers`, `repeats`, `budget` and `target` belong to the comparison; every
    other key=value is a run setting, applied to all runs alike.

    Raises:
        TunerError: With one line per problem.
    """
    # Each token on its own, because parse_overrides reorders the pairs it returns.
    tokens = [(text, *parse_overrides([text])[0]) for text in overrides]
    options = {key: value for _, key, value in tokens if key in ("samplers", "repeats", "budget", "target")}
    run_overrides = [text for text, key, _ in tokens if key not in options]
    problems = [f"{key}: set by the comparison for each run; remove {text} (use budget=N for the trials per run)."
                for text, key, _ in tokens if key.split(".")[0] in _SET_PER_RUN]
    samplers = _samplers(options.get("samplers", ",".join(DEFAULT_SAMPLERS)), problems)
    repeats = options.get("repeats", DEFAULT_REPEATS)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        problems.append(f"repeats: must be an integer >= 1 (runs of each sampler); got {repeats!r}.")
    budget = options.get("budget")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        problems.append(f"budget: must be an integer >= 1 (trials per run); got {budget!r}.")
    target = options.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, (int, float))):
        problems.append(f"target: must be a number (a value of the metric to reach); got {target!r}.")
    if problems:
        raise TunerError(problems)

    base = load_settings(run_overrides)
    budget = budget or base.n_trials
    name = f"compare-{base.space}-{(now or dt.datetime.now()).strftime('%Y%m%d-%H%M%S')}"
    runs = []
    for repeat in range(1, repeats + 1):
        for sampler in samplers:
            study = f"{name}-{sampler}-r{repeat}"
            # The space's own sampler keeps the settings its file gives it (such as TPE's n_startup_trials).
            chosen = [] if sampler == base.sampler else [f"sampler={sampler}"]
            per_run = [*run_overrides, *chosen, f"seed={base.seed + repeat - 1}", f"n_trials={budget}", f"study={study}",
                       f"results_dir={base.results_dir / name}"]
            try:
                runs.append((sampler, repeat, load_settings(per_run)))
            except TunerError as error:
                raise TunerError([f"sampler {sampler}: {line}" for line in error.problems]) from None
    return ComparisonPlan(name, samplers, repeats, budget, None if target is None else float(target), tuple(runs))


def run_comparison(plan: ComparisonPlan, console: Console | None = None) -> pd.DataFrame:
    """Run every planned study and return one row per trial of every run.

    Each study is tagged with the comparison's name, sampler and repeat, so
    `tuner compare` reports can be rebuilt from the storage.
    """
    import ray

    from tuner.runner import _start_ray, run  # One Ray session serves every run of the comparison.

    first = plan.runs[0][2]
    started_ray = _start_ray(first)
    try:
        for index, (sampler, repeat, settings) in enumerate(plan.runs, start=1):
            logger.info("Comparison %s: run %d of %d, sampler %s, repeat %d", plan.name, index, len(plan.runs), sampler, repeat)
            result = run(settings, console=console, report=False)
            study = optuna.load_study(study_name=result.study_name, storage=open_storage(settings.storage))
            study.set_user_attr(COMPARISON_ATTR, {"name": plan.name, "sampler": sampler, "repeat": repeat, "budget": plan.budget})
            if result.signal is not None:
                raise KeyboardInterrupt
    finally:
        if started_ray:
            ray.shutdown()
    return comparison_trials(plan.name, first.storage)


def comparison_trials(name: str, storage: str) -> pd.DataFrame:
    """Return one row per trial of every study tagged with comparison `name`, with the run-level facts."""
    rows = []
    for tag, study in tagged_studies(name, storage):
        rows += _trial_rows(study, tag)
    if not rows:
        raise TunerError(f"comparison: no study of comparison '{name}' in {mask_url(storage)}. Check the name, or run tuner compare.")
    return pd.DataFrame(rows).sort_values(["repeat", "sampler", "finished_order"], kind="stable").reset_index(drop=True)


def tagged_studies(name: str, storage: str) -> list[tuple[dict[str, Any], optuna.Study]]:
    """Return the (tag, study) pairs of every study of comparison `name` in the storage."""
    backend = open_storage(storage)
    found = []
    for summary in backend.get_all_studies():
        tag = summary.user_attrs.get(COMPARISON_ATTR)
        if isinstance(tag, dict) and tag.get("name") == name:
            found.append((tag, optuna.load_study(study_name=summary.study_name, storage=backend)))
    return found


def _trial_rows(study: optuna.Study, tag: dict[str, Any]) -> list[dict[str, Any]]:
    attrs = study.user_attrs
    trials = [trial for trial in study.get_trials(deepcopy=False) if trial.datetime_start is not None]
    if not trials:
        return []
    start = min(trial.datetime_start for trial in trials)
    finished = sorted((t for t in trials if t.datetime_complete is not None), key=lambda t: (t.datetime_complete, t.number))
    order = {trial.number: index for index, trial in enumerate(finished, start=1)}
    test = attrs.get("best_test_metrics") or {}
    rows = []
    for trial in trials:
        rows.append({
            "comparison": tag["name"], "sampler": tag["sampler"], "repeat": tag["repeat"], "study": study.study_name,
            "seed": attrs.get("seed"), "metric": attrs.get("metric"), "direction": study.direction.name.lower(),
            "max_epochs": attrs.get("max_epochs"), "trial": trial.number, "state": trial.state.name,
            "value": trial.value, "epochs": len(trial.intermediate_values),
            "finished_order": order.get(trial.number), "started_s": (trial.datetime_start - start).total_seconds(),
            "finished_s": None if trial.datetime_complete is None else (trial.datetime_complete - start).total_seconds(),
            **{str(key): value for key, value in test.items()},
            **{f"params.{key}": value for key, value in trial.params.items()},
        })
    return rows


def write_trials_csv(trials: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "trials.csv"
    trials.to_csv(path, index=False)
    return path


def _samplers(value: Any, problems: list[str]) -> tuple[str, ...]:
    names = [str(name).strip() for name in (value if isinstance(value, (list, tuple)) else str(value).split(",")) if str(name).strip()]
    unknown = [name for name in names if name not in SAMPLERS]
    problems += [f"samplers: {unknown_name('sampler', name, SAMPLERS)}" for name in unknown]
    if len(set(names)) != len(names):
        problems.append(f"samplers: each sampler may appear once; got {','.join(names)}.")
    if len(names) < 2 and not unknown:
        problems.append(f"samplers: name at least two samplers to compare, separated by commas, such as samplers=random,tpe; got {','.join(names) or '(none)'}.")
    return tuple(names)
