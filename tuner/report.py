"""The study report: one offline HTML page built from the storage alone."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState

from tuner.figures import best_trial_figures, learning_curves
from tuner.html import Page
from tuner.storage import mask_url

logger = logging.getLogger(__name__)

TOP_TRIALS = 10  # Rows of the table of best trials.
IMPORTANCE_SEED = 0  # fANOVA fits a random forest; a fixed seed makes reports reproducible.
# Forest size for fANOVA. On 1200 COMPLETE trials on 2 vCPUs, Optuna's defaults (64 trees,
# depth 64) took 13.5 s and 16 trees of depth 8 took 0.44 s, with the same ranking of the params.
IMPORTANCE_TREES = 32
IMPORTANCE_MAX_DEPTH = 8


def importance_evaluator() -> optuna.importance.FanovaImportanceEvaluator:
    """Return the fANOVA evaluator, seeded and with a bounded forest.

    Optuna 5 defaults to PED-ANOVA, which needs more trials than a short
    study has (it warns that its quantiles select the same trials).
    """
    return optuna.importance.FanovaImportanceEvaluator(n_trees=IMPORTANCE_TREES, max_depth=IMPORTANCE_MAX_DEPTH, seed=IMPORTANCE_SEED)


def write_study_report(study: optuna.Study, path: Path, storage_url: str) -> Path:
    """Write the report of `study` to `path` and return the path.

    A section that cannot be drawn (no COMPLETE trial, importance not
    computable) shows the reason in its place instead of failing the report.
    """
    trials = study.get_trials(deepcopy=False)
    snapshot = _snapshot(study, trials)
    attrs = study.user_attrs
    metric = attrs.get("metric") or "value"
    page = Page(f"Study {study.study_name}")

    _summary(page, study, trials, storage_url)
    _history(page, snapshot, trials, metric)
    page.heading("Learning curves")
    page.text("Each line is one trial's validation metric per epoch; pruned trials stop where the pruner cut them.")
    page.figure(learning_curves(trials, metric))
    _importance(page, snapshot, metric)
    _complete_only(page, "Parallel coordinates", snapshot, lambda: optuna.visualization.plot_parallel_coordinate(snapshot, target_name=metric))
    _complete_only(page, "Slices", snapshot, lambda: optuna.visualization.plot_slice(snapshot, target_name=metric))
    page.heading("Timeline")
    page.figure(optuna.visualization.plot_timeline(snapshot))
    _failures(page, trials)
    _best_trial(page, attrs)
    return page.write(path)


def report_path(results_dir: Path, study_name: str) -> Path:
    return results_dir / study_name / "report.html"


def _snapshot(study: optuna.Study, trials: Sequence[FrozenTrial]) -> optuna.Study:
    """Copy the trials into an in-memory study, so each figure reads memory, not the database."""
    copy = optuna.create_study(directions=study.directions, study_name=study.study_name)
    copy.add_trials(trials)
    return copy


def _summary(page: Page, study: optuna.Study, trials: Sequence[FrozenTrial], storage_url: str) -> None:
    attrs = study.user_attrs
    counts = Counter(trial.state.name for trial in trials)
    max_epochs = attrs.get("max_epochs")
    epochs = sum(len(trial.intermediate_values) for trial in trials)
    facts: dict[str, Any] = {
        "Space": attrs.get("space", "-"),
        "Objective": attrs.get("objective", "-"),
        "Metric": f"{attrs.get('metric', 'value')} ({study.direction.name.lower()})",
        "Sampler": _settings_text(attrs.get("sampler")),
        "Pruner": _settings_text(attrs.get("pruner")),
        "Storage": mask_url(storage_url),
        "Trials": f"{len(trials)}: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed, {counts['RUNNING']} running",
    }
    if isinstance(max_epochs, int) and trials:
        budget = len(trials) * max_epochs
        facts["Epochs trained"] = f"{epochs} of {budget} ({100 * (1 - epochs / budget):.0f}% saved by pruning and failures)"
    wall = _wall_seconds(trials)
    if wall is not None:
        facts["Wall time"] = f"{wall:.1f} s from the first trial's start to the last trial's end"
    page.facts(facts)

    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    if not complete:
        page.note("No trial has completed, so the study has no best trial yet.")
        return

    best = study.best_trial
    page.heading("Best trial")
    best_facts = {"Trial": best.number, attrs.get("metric", "value"): f"{best.value:.6g}"}
    best_facts.update({f"params.{name}": value for name, value in best.params.items()})
    test = attrs.get("best_test_metrics")
    if isinstance(test, dict) and attrs.get("best_trial") == best.number:
        best_facts.update({name: f"{value:.4f}" for name, value in test.items()})
    page.facts(best_facts)
    page.heading(f"Top {min(TOP_TRIALS, len(complete))} trials")
    page.table(_top_trials(complete, study.direction))


def _history(page: Page, snapshot: optuna.Study, trials: Sequence[FrozenTrial], metric: str) -> None:
    page.heading("Optimization history")
    if not any(trial.state == TrialState.COMPLETE for trial in trials):
        page.note("No COMPLETE trial yet, so there is no history of values to plot.")
        return
    page.figure(optuna.visualization.plot_optimization_history(snapshot, target_name=metric))


def _importance(page: Page, snapshot: optuna.Study, metric: str) -> None:
    page.heading("Parameter importance")
    reason = _importance_unavailable(snapshot)
    if reason:
        page.note(f"Parameter importance is not shown: {reason}.")
        return
    try:
        figure = optuna.visualization.plot_param_importances(snapshot, evaluator=importance_evaluator(), target_name=metric)
    except Exception as error:  # fANOVA rejects some spaces; the report shows the reason instead of failing.
        page.note(f"Parameter importance could not be computed: {type(error).__name__}: {error}.")
        return
    page.text("fANOVA importance over the COMPLETE trials (a random forest fit of the metric on the params); "
              "params inactive in some trials are left out.")
    page.figure(figure)


def _importance_unavailable(study: optuna.Study) -> str | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return f"it needs at least 2 COMPLETE trials, and the study has {len(complete)}"
    shared = set.intersection(*(set(trial.distributions) for trial in complete))
    varied = [name for name in shared if len({repr(trial.params[name]) for trial in complete}) > 1]
    if not varied:
        return "no parameter took more than one value in every COMPLETE trial"
    if len({trial.value for trial in complete}) == 1:
        return f"every COMPLETE trial has the same value ({complete[0].value:.6g}), so no parameter explains a difference"
    return None


def _complete_only(page: Page, title: str, snapshot: optuna.Study, draw) -> None:
    page.heading(title)
    complete = snapshot.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete or not any(trial.params for trial in complete):
        page.note(f"{title} need COMPLETE trials with tuned params; the study has none.")
        return
    page.figure(draw())


def _failures(page: Page, trials: Sequence[FrozenTrial]) -> None:
    page.heading("Failures and pruning")
    failed = [trial for trial in trials if trial.state == TrialState.FAIL]
    pruned = [trial for trial in trials if trial.state == TrialState.PRUNED]
    if not failed:
        page.text("No trial failed.")
    else:
        groups: dict[tuple[str, str], list[int]] = {}
        for trial in failed:
            key = (str(trial.user_attrs.get("fail_reason", "-")), str(trial.user_attrs.get("error", "-")))
            groups.setdefault(key, []).append(trial.number)
        rows = [{"reason": reason, "error": error, "trials": len(numbers), "first trial": min(numbers)}
                for (reason, error), numbers in sorted(groups.items(), key=lambda item: -len(item[1]))]
        page.text(f"{len(failed)} trials failed. Each trial's traceback is in its user attribute 'traceback' (optuna-dashboard shows it).")
        page.table(pd.DataFrame(rows))
    if pruned:
        epochs = Counter(trial.user_attrs.get("pruned_at_epoch", len(trial.intermediate_values)) for trial in pruned)
        rows = [{"pruned at epoch": epoch, "trials": count} for epoch, count in sorted(epochs.items(), key=lambda item: str(item[0]))]
        page.text(f"{len(pruned)} trials were pruned.")
        page.table(pd.DataFrame(rows))


def _best_trial(page: Page, attrs: dict[str, Any]) -> None:
    page.heading("Best trial on the validation and test splits")
    diagnostics = attrs.get("best_diagnostics")
    if not isinstance(diagnostics, dict) or not any(isinstance(diagnostics.get(split), dict) for split in ("val", "test")):
        reason = (diagnostics or {}).get("note") if isinstance(diagnostics, dict) else None
        page.note(f"No predictions of the best trial are stored: {reason or attrs.get('best_note') or 'the run wrote no best trial yet'}.")
        return
    page.text(f"The best trial's params retrained on the train split (trial {attrs.get('best_trial', '?')}), scored on each split.")
    for split in ("val", "test"):
        if f"{split}_note" in diagnostics:
            page.note(f"{split}: {diagnostics[f'{split}_note']}")
        if isinstance(diagnostics.get(split), dict):
            for figure in best_trial_figures(diagnostics[split], "validation" if split == "val" else "test"):
                page.figure(figure)


def _top_trials(complete: Sequence[FrozenTrial], direction: optuna.study.StudyDirection) -> pd.DataFrame:
    reverse = direction == optuna.study.StudyDirection.MAXIMIZE
    best = sorted(complete, key=lambda trial: trial.value, reverse=reverse)[:TOP_TRIALS]
    return pd.DataFrame([{"trial": t.number, "value": t.value, "epochs": len(t.intermediate_values), **t.params} for t in best])


def _settings_text(settings: Any) -> str:
    if not isinstance(settings, dict):
        return "-"
    rest = ", ".join(f"{key}={value}" for key, value in settings.items() if key != "name")
    return f"{settings.get('name', '?')} ({rest})" if rest else str(settings.get("name", "?"))


def _wall_seconds(trials: Sequence[FrozenTrial]) -> float | None:
    starts = [trial.datetime_start for trial in trials if trial.datetime_start]
    ends = [trial.datetime_complete for trial in trials if trial.datetime_complete]
    if not starts or not ends:
        return None
    return (max(ends) - min(starts)).total_seconds()
