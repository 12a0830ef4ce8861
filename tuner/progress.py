"""Live progress of a run on the terminal, fed by Ray Tune's callback hooks."""

from __future__ import annotations

import os
import re
import time

from ray.tune import Callback
from rich.console import Console
from rich.live import Live
from rich.table import Table

from tuner.searcher import StudySearcher

_REFRESH_S = 0.5
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Colour codes that Ray puts in worker tracebacks.


class FailureRecorder(Callback):
    """Hand each failed trial's exception to the searcher, which records it as FAIL."""

    def __init__(self, searcher: StudySearcher) -> None:
        self.searcher = searcher

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error = _trial_error(trial)
        cause = getattr(error, "cause", None) or error
        if isinstance(cause, BaseException):
            message = f"{type(cause).__name__}: {cause}"
        else:
            message = str(cause).splitlines()[-1] if cause else "unknown error"
        self.searcher.fail(trial.trial_id, _ANSI.sub("", message), reason=failure_reason(cause), traceback=_ANSI.sub("", str(error or "")))


class ProgressDisplay(Callback):
    """Show trials done/total, running, pruned, failed, best value and elapsed time."""

    def __init__(self, searcher: StudySearcher, console: Console, title: str) -> None:
        self.searcher = searcher
        self.console = console
        self.title = title
        self.started = time.monotonic()
        self._live: Live | None = None
        self._last = 0.0

    def __enter__(self) -> ProgressDisplay:
        if self.console.is_terminal:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def on_step_end(self, iteration, trials, **info) -> None:
        now = time.monotonic()
        if self._live is not None and now - self._last >= _REFRESH_S:
            self._live.update(self._render())
            self._last = now

    def __getstate__(self) -> dict:
        return {"title": self.title}

    def _render(self) -> Table:
        counts = self.searcher.counts
        done = counts["COMPLETE"] + counts["PRUNED"] + counts["FAIL"]
        best = "-" if self.searcher.best is None else f"{self.searcher.best[1]:.4f} (trial {self.searcher.best[0]})"
        table = Table(title=self.title, show_header=True, header_style="bold")
        for column in ("done", "running", "pruned", "failed", f"best {self.searcher.metric}", "elapsed"):
            table.add_column(column)
        table.add_row(
            f"{done}/{self.searcher.n_trials}", str(self.searcher.running), str(counts["PRUNED"]),
            str(counts["FAIL"]), best, f"{time.monotonic() - self.started:.0f}s",
        )
        return table


def failure_reason(error: BaseException | None) -> str:
    """Classify a trial's exception: diverged, out of memory, worker died, or exception."""
    from tuner.context import TrialDiverged

    name = type(error).__name__
    if isinstance(error, TrialDiverged):
        return "diverged"
    if isinstance(error, MemoryError) or name == "OutOfMemoryError" or "out of memory" in str(error).lower():
        return "out of memory"
    if name in ("RayActorError", "ActorDiedError", "WorkerCrashedError"):
        return "worker died"
    return "exception"


def _trial_error(trial) -> BaseException | str | None:
    """Read the error Ray saved for a trial, from the driver's local trial folder.

    Ray copies these files to the storage path only later, so its own
    `Trial.get_pickled_error` does not find them while the run goes on.
    """
    import cloudpickle

    try:
        if trial.pickled_error_file and os.path.exists(trial.pickled_error_file):
            with open(trial.pickled_error_file, "rb") as file:
                return cloudpickle.load(file)
        if trial.error_file and os.path.exists(trial.error_file):
            with open(trial.error_file, encoding="utf-8", errors="replace") as file:
                return file.read().strip()
    except (OSError, EOFError, ValueError, ImportError, AttributeError):
        return None
    return None
