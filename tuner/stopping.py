"""Run-wide stops: a time budget, SIGINT/SIGTERM, and too many consecutive failures."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ray.tune import Stopper

logger = logging.getLogger(__name__)

TIME_BUDGET = "time budget"
INTERRUPTED = "interrupted"
TOO_MANY_FAILURES = "too many failures"


class RunStopper(Stopper):
    """Ends the whole run when the time budget is spent, a signal arrives, or failures pile up.

    Ray Tune calls `stop_all` on every step of its loop. The searcher reads
    `reason` to record the trials that the stop cut short.
    """

    def __init__(self, time_budget_s: float | None) -> None:
        self.deadline = None if time_budget_s is None else time.monotonic() + time_budget_s
        self.reason: str | None = None
        self.signal: int | None = None

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        if self.reason is None and self.deadline is not None and time.monotonic() >= self.deadline:
            self.stop(TIME_BUDGET)
        return self.reason is not None

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            logger.warning("Stopping the run: %s", reason)

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def __getstate__(self) -> dict:
        return {"deadline": None, "reason": None, "signal": None}


@contextmanager
def catch_signals(stopper: RunStopper) -> Iterator[None]:
    """Turn the first SIGINT or SIGTERM into a graceful stop; a second SIGINT interrupts at once."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handle(signum, frame):
        stopper.signal = signum
        stopper.stop(INTERRUPTED)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
