"""The Ray Tune Searcher that owns one Optuna study through ask/tell."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from tuner.resume import owner_tag
from tuner.space import SearchSpace
from tuner.stopping import INTERRUPTED, TIME_BUDGET, TOO_MANY_FAILURES, RunStopper

logger = logging.getLogger(__name__)

_MODES = {"maximize": "max", "minimize": "min"}
OWNER = owner_tag()  # This driver process, stored on each trial so that a resume can tell stale trials.
REPORTED_KEY = "reported_metrics"  # Comma-separated names of the metrics an objective reported.
NODE_ID_KEY = "node_id"  # Ray node id of the worker that ran the trial, added to each report.
GPU_PEAK_KEY = "gpu_peak_mib"  # Peak GPU memory the trial had allocated, in MiB, added to each report on a GPU.
_TRACEBACK_CHARS = 4000  # Tail of a failed trial's traceback kept in the study.
_RUN_STOPS = {TIME_BUDGET, INTERRUPTED, TOO_MANY_FAILURES}  # Reasons that are not the trial's fault.


class StudySearcher(Searcher):
    """Propose params with the study's sampler and record every trial faithfully.

    Ray's stock OptunaSearch records pruned trials as COMPLETE, drops the
    last epoch's intermediate value and records crashed trials as COMPLETE;
    this searcher keeps each trial's true state, one intermediate value per
    epoch trained, and the error of each failed trial.

    Args:
        study: The Optuna study that receives every trial.
        space: The search space to sample.
        n_trials: Number of trials to create.
        max_epochs: Epoch budget, used to tell a pruned trial from a finished one.
        metric: Name of the optimised metric in each result.
        stopped: Trial ids the pruner stopped, filled in by the scheduler.
        grid: Points to run in order (grid sampler), or None.
        stopper: The run-wide stopper, whose reason marks the trials it cut short.
        max_consecutive_failures: Failed trials in a row that stop the run, or None.
    """

    def __init__(
        self,
        study: optuna.Study,
        space: SearchSpace,
        *,
        n_trials: int,
        max_epochs: int,
        metric: str,
        stopped: Mapping[str, int | None],
        grid: list[dict[str, Any]] | None = None,
        stopper: RunStopper | None = None,
        max_consecutive_failures: int | None = None,
    ) -> None:
        direction = "maximize" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "minimize"
        super().__init__(metric=metric, mode=_MODES[direction])
        self.study = study
        self.space = space
        self.n_trials = n_trials
        self.max_epochs = max_epochs
        self.direction = direction
        self.counts: Counter[str] = Counter()
        self.best: tuple[int, float] | None = None
        self.errors: Counter[str] = Counter()
        self.first_failed: dict[str, int] = {}
        self.stopper = stopper
        self.max_consecutive_failures = max_consecutive_failures
        self._consecutive_failures = 0
        self._stopped = stopped
        self._grid = list(grid) if grid is not None else None
        self._trials: dict[str, optuna.Trial] = {}
        self._epochs: dict[str, int] = {}
        self._last_values: dict[str, float] = {}
        self._nodes_recorded: set[str] = set()
        self._created = 0

    @property
    def running(self) -> int:
        return len(self._trials)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._created >= self.n_trials:
            return Searcher.FINISHED
        if self.stopper is not None and (self.stopper.reason or self.stopper.past_deadline()):
            return Searcher.FINISHED
        if self._grid is not None:
            self.study.enqueue_trial(self._grid[self._created], skip_if_exists=False)
        trial = self.study.ask()
        trial.set_user_attr("owner", OWNER)
        params = self.space.sample(trial)
        self._trials[trial_id] = trial
        self._created += 1
        logger.debug("Trial %d started; params %s", trial.number, _show(params))
        return {"number": trial.number, "params": self.space.config(params)}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self._record_node(trial_id, result)
        self._report(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if error or trial_id not in self._trials:
            # The error text arrives later through `fail`, from the callback.
            return
        trial = self._trials[trial_id]
        if result:
            self._record_node(trial_id, result)
            self._report(trial_id, result)
            self._record_last(trial, result)
        value = (result or {}).get(self.metric)
        epochs = self._epochs.get(trial_id, 0)
        pruned = self._stopped.get(trial_id) is not None and epochs < self.max_epochs
        cut_by = None if pruned or (result or {}).get("done") else getattr(self.stopper, "reason", None)
        if cut_by is not None:
            self._cut_short(trial_id, cut_by)
        elif value is None:
            self.fail(trial_id, f"the objective reported no '{self.metric}'", reason="no report")
        elif pruned:
            self._prune(trial_id, "pruner")
        else:
            self._tell(trial_id, TrialState.COMPLETE, float(value))
            self._update_best(trial.number, float(value))
            best_number, best_value = self.best
            logger.info(
                "Trial %d finished with %s=%.6g after %d epochs; best is trial %d with %.6g; params %s",
                trial.number, self.metric, value, epochs, best_number, best_value, _show(trial.params),
            )

    def fail(self, trial_id: str, error: str, reason: str, traceback: str = "") -> None:
        """Record a trial as FAIL with its reason and error message."""
        trial = self._trials.get(trial_id)
        if trial is None:
            return
        trial.set_user_attr("fail_reason", reason)
        trial.set_user_attr("error", error)
        if traceback:
            trial.set_user_attr("traceback", traceback[-_TRACEBACK_CHARS:])
        self._tell(trial_id, TrialState.FAIL)
        logger.warning("Trial %d failed (%s): %s; params %s", trial.number, reason, error, _show(trial.params))
        if reason in _RUN_STOPS:
            return
        self.errors[error] += 1
        # Parallel trials can fail out of order; the lowest number is the one to look at first.
        self.first_failed[error] = min(self.first_failed.get(error, trial.number), trial.number)
        self._consecutive_failures += 1
        limit = self.max_consecutive_failures
        if limit is not None and self._consecutive_failures >= limit and self.stopper is not None:
            self.stopper.stop(TOO_MANY_FAILURES)

    def close_open_trials(self, reason: str) -> int:
        """Record every trial still open as cut short by `reason`; return how many."""
        open_ids = list(self._trials)
        for trial_id in open_ids:
            self._cut_short(trial_id, reason)
        return len(open_ids)

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        """Skip Ray's searcher checkpoint: the study in the storage is the record."""

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles its tune config into the experiment folder; the study
        # (a live database handle) stays out of that copy.
        state = self.__dict__.copy()
        state.update(study=None, _trials={})
        return state

    def _cut_short(self, trial_id: str, reason: str) -> None:
        """Record a trial that a run-wide stop ended: PRUNED for the time budget once it has trained, else FAIL."""
        if reason == TIME_BUDGET and self._epochs.get(trial_id, 0) > 0:
            self._prune(trial_id, TIME_BUDGET)
        else:
            self.fail(trial_id, f"the run stopped before the trial finished ({reason})", reason=reason)

    def _prune(self, trial_id: str, reason: str) -> None:
        trial = self._trials[trial_id]
        epochs = self._epochs.get(trial_id, 0)
        trial.set_user_attr("pruned_at_epoch", epochs)
        trial.set_user_attr("pruned_reason", reason)
        value = self._last_values.get(trial_id)
        self._tell(trial_id, TrialState.PRUNED)
        value_text = "-" if value is None else f"{value:.6g}"
        logger.info("Trial %d pruned (%s) at epoch %d with %s=%s; params %s", trial.number, reason, epochs, self.metric, value_text, _show(trial.params))

    def _report(self, trial_id: str, result: Mapping[str, Any]) -> None:
        trial = self._trials.get(trial_id)
        epoch, value = result.get("epoch"), result.get(self.metric)
        if trial is None or epoch is None or value is None or epoch <= self._epochs.get(trial_id, 0):
            return
        if math.isfinite(value):
            trial.report(float(value), step=int(epoch))
            self._last_values[trial_id] = float(value)
        self._epochs[trial_id] = int(epoch)

    def _record_node(self, trial_id: str, result: Mapping[str, Any]) -> None:
        """Record which Ray node runs the trial (node id, host name, IP address), once, from its first report."""
        trial = self._trials.get(trial_id)
        if trial is None or trial_id in self._nodes_recorded or NODE_ID_KEY not in result:
            return
        trial.set_user_attr("node_id", result[NODE_ID_KEY])
        trial.set_user_attr("node_host", result.get("hostname"))
        trial.set_user_attr("node_ip", result.get("node_ip"))
        self._nodes_recorded.add(trial_id)

    def _record_last(self, trial: optuna.Trial, result: Mapping[str, Any]) -> None:
        names = str(result.get(REPORTED_KEY, "")).split(",")
        trial.set_user_attr("last_metrics", {name: result[name] for name in names if name in result})
        if GPU_PEAK_KEY in result:
            trial.set_user_attr("gpu_peak_mib", round(float(result[GPU_PEAK_KEY]), 1))

    def _tell(self, trial_id: str, state: TrialState, value: float | None = None) -> None:
        trial = self._trials.pop(trial_id)
        self._nodes_recorded.discard(trial_id)
        self.counts[state.name] += 1
        if state != TrialState.FAIL:
            self._consecutive_failures = 0
        self.study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)

    def _update_best(self, number: int, value: float) -> None:
        if self.best is None:
            self.best = (number, value)
            return
        better = value > self.best[1] if self.direction == "maximize" else value < self.best[1]
        if better:
            self.best = (number, value)


def _show(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
