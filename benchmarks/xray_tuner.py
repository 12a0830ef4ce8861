"""The adam_xray search space tuned by tuner, in-process through `tuner.runner.run`, as `tuner run` does.

The run uses the space file's sampler and pruner. Only the trial count, the
epoch budget, the seed, the data file and the output paths are overridden.

    python benchmarks/xray_tuner.py --data DATA/pneumoniamnist.npz --workdir /tmp/x --events-out /tmp/x/tuner.json
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console

from tuner.runner import run
from tuner.searcher import StudySearcher
from tuner.settings import load_settings

from xray_common import METRIC, EventLog, side_parser, space_settings


def observe_reports(log: EventLog) -> None:
    """Record each epoch when tuner's searcher receives it in the driver, by wrapping `StudySearcher._report`.

    NOTE: this wraps a private method, because tuner keeps no per-epoch
    times; the wrapper records and then calls the original unchanged.
    """
    original = StudySearcher._report

    def report(searcher: StudySearcher, trial_id: str, result: Mapping[str, Any]) -> None:
        if result.get("epoch") is not None and result.get(METRIC) is not None:
            log.record(trial_id, result["epoch"], result[METRIC])
        original(searcher, trial_id, result)

    StudySearcher._report = report


def main() -> None:
    args = side_parser(__doc__.splitlines()[0]).parse_args()
    started = time.monotonic()
    log = EventLog()
    observe_reports(log)
    workdir = args.workdir.resolve()
    overrides = [
        "space=adam_xray", f"n_trials={args.n_trials}", f"max_epochs={args.max_epochs}", f"seed={args.seed}",
        f"data.path={args.data.resolve()}", f"storage=sqlite:///{workdir}/tuner.db", f"results_dir={workdir}/results",
    ]
    # tuner rejects a grace period longer than the epoch budget, which only tiny smoke budgets reach.
    if args.max_epochs < space_settings()["pruner"]["grace_period"]:
        overrides.append(f"pruner.grace_period={args.max_epochs}")
    settings = load_settings(overrides)
    result = run(settings, console=Console(stderr=True))
    # tuner's trials set torch's thread count to their CPUs (tuner.trainable.make_context).
    log.write(args.events_out, "tuner", int(settings.cpu), wall_s=time.monotonic() - started, counts=result.counts)
    print(f"{METRIC} best {log.best():.4f} after {sum(result.counts.values())} trials")


if __name__ == "__main__":
    main()
