"""Scale of a study: `tuner report`, `tuner best` and TPE's cost per trial on studies of 100 to 2000 trials.

Each study is a SQLite file whose study and user attributes come from the
runner's own `_create_study`, as `tuner run space=adam_medical` makes them.
It is filled with synthetic trials: params drawn from the space's
distributions, one val_auc per epoch, and the user attributes that tuner's
searcher writes. About 35% of the trials are COMPLETE after 30 epochs, 55%
PRUNED at the pruner's rungs (epochs 4 and 12) and 10% FAIL.

The commands run as a user runs them, each in a fresh process, so Python's
start-up and imports count; `tuner --help` gives that floor. `best_record`
is also timed in this process, without the start-up. The sampler's cost is
the median time of one ask, sample and tell with the space's TPE sampler,
on a copy of the file.

    python benchmarks/study_scale.py --sizes 100 1000 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from tuner.best import best_record
from tuner.runner import _create_study, load_data
from tuner.samplers import create_sampler
from tuner.settings import Settings, load_settings
from tuner.storage import open_storage

from common import RESULTS_DIR, median, print_table, write_json

SPACE = "adam_medical"
RUNGS = (4, 12)  # Epochs at which adam_medical's ASHA (grace period 4, reduction factor 3, 30 epochs) prunes.
STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
STATE_SHARES = (0.35, 0.55, 0.10)
LOG_TAIL_CHARS = 2000


def main() -> None:
    args = _parser().parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory(prefix="study-scale-") as scratch:
        floor_s = median(time_command([sys.executable, "-m", "tuner", "--help"]) for _ in range(args.repeats))
        for size in args.sizes:
            rows.append(measure_size(size, Path(scratch), args))
            print(f"{size} trials: report {_show(rows[-1]['report_s'])} s, best {rows[-1]['best_cli_s']:.2f} s", flush=True)
    print_table(["trials", "build s", "report s", "best s", "best in-process s", "TPE ask/tell ms", "report"],
                [[row["trials"], row["build_s"], row["report_s"], row["best_cli_s"], row["best_in_process_s"],
                  row["ask_tell_ms"], row["report_status"]] for row in rows])
    print(f"Python start-up and tuner's CLI imports (tuner --help): {floor_s:.2f} s")
    settings = {"sizes": args.sizes, "repeats": args.repeats, "ask_tell": args.ask_tell, "space": SPACE}
    write_json(args.out, {"settings": settings, "cli_floor_s": floor_s, "rows": rows})


def measure_size(size: int, scratch: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Build a study of `size` trials and time the report, the best params and TPE's ask/tell on it."""
    storage_url = f"sqlite:///{scratch}/study-{size}.db"
    name = f"{SPACE}-scale-{size}"
    started = time.perf_counter()
    settings = build_study(storage_url, name, size, seed=size)
    build_s = time.perf_counter() - started

    report_s, report_status = time_report(name, storage_url, scratch / f"report-{size}.html", args.repeats)
    best_cli_s = median(time_command([sys.executable, "-m", "tuner", "best", f"study={name}", f"storage={storage_url}"]) for _ in range(args.repeats))
    best_record(study=name, storage=storage_url)  # Warm-up: imports and the first connection.
    best_in_process_s = median(_time_call(lambda: best_record(study=name, storage=storage_url)) for _ in range(args.repeats))

    copy = scratch / f"study-{size}-copy.db"
    shutil.copy(f"{scratch}/study-{size}.db", copy)
    ask_tell_ms = time_ask_tell(settings, name, f"sqlite:///{copy}", args.ask_tell)
    return {"trials": size, "build_s": build_s, "report_s": report_s, "report_status": report_status,
            "best_cli_s": best_cli_s, "best_in_process_s": best_in_process_s, "ask_tell_ms": ask_tell_ms}


def build_study(storage_url: str, name: str, size: int, seed: int) -> Settings:
    """Create the study as tuner's runner does and add `size` synthetic trials; return the space's settings."""
    settings = load_settings([f"space={SPACE}", f"storage={storage_url}", f"study={name}"])
    study = _create_study(settings, open_storage(storage_url), name, load_data(settings))
    rng = np.random.default_rng(seed)
    started = dt.datetime(2026, 1, 1)
    study.add_trials([synthetic_trial(settings, number, rng, started + dt.timedelta(seconds=2 * number)) for number in range(size)])
    return settings


def synthetic_trial(settings: Settings, number: int, rng: np.random.Generator, start: dt.datetime) -> FrozenTrial:
    """Return one finished trial with sampled params, a learning curve and the user attributes tuner writes."""
    distributions = settings.search_space.distributions()
    params = {name: _draw(distribution, rng) for name, distribution in distributions.items()}
    state = STATES[rng.choice(len(STATES), p=STATE_SHARES)]
    epochs = {TrialState.COMPLETE: settings.max_epochs, TrialState.PRUNED: int(rng.choice(RUNGS)), TrialState.FAIL: int(rng.integers(0, 3))}[state]
    ceiling, speed = rng.uniform(0.90, 0.999), rng.uniform(2.0, 8.0)
    curve = {epoch: float(ceiling - 0.4 * math.exp(-epoch / speed)) for epoch in range(1, epochs + 1)}
    attrs: dict[str, Any] = {"owner": "benchmark:0", "node": "127.0.0.1"}
    if curve:
        attrs["last_metrics"] = {"epoch": epochs, "val_auc": curve[epochs], "val_acc": curve[epochs] - 0.05,
                                 "val_loss": 1 - curve[epochs], "train_loss": 1 - curve[epochs]}
    if state == TrialState.PRUNED:
        attrs.update(pruned_at_epoch=epochs, pruned_reason="pruner")
    if state == TrialState.FAIL:
        attrs.update(fail_reason="exception", error="RuntimeError: synthetic failure",
                     traceback="Traceback (most recent call last):\n  ...\nRuntimeError: synthetic failure\n")
    return FrozenTrial(
        number=number,
        state=state,
        value=curve[epochs] if state == TrialState.COMPLETE else None,
        datetime_start=start,
        datetime_complete=start + dt.timedelta(seconds=0.5 * max(epochs, 1)),
        params=params,
        distributions=distributions,
        user_attrs=attrs,
        system_attrs={},
        intermediate_values=curve,
        trial_id=number,
    )


def time_report(name: str, storage_url: str, out: Path, repeats: int) -> tuple[float | None, str]:
    """Return the median wall time of `tuner report` and "ok", or None and the reason it could not run."""
    probe = subprocess.run([sys.executable, "-m", "tuner", "report", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        lines = probe.stderr.strip().splitlines()
        reason = lines[-1] if lines else f"exit code {probe.returncode}"
        return None, f"not available: {reason}"
    times = []
    for _ in range(repeats):
        command = [sys.executable, "-m", "tuner", "report", f"study={name}", f"storage={storage_url}", f"out={out}"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0 or not out.is_file():
            return None, f"failed with exit code {done.returncode}: {done.stderr[-LOG_TAIL_CHARS:].strip()}"
    return statistics.median(times), "ok"


def time_command(command: list[str]) -> float:
    """Run a command to completion and return its wall time; raise SystemExit with its output if it fails."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} exited with {done.returncode}:\n{done.stderr[-LOG_TAIL_CHARS:]}")
    return elapsed


def time_ask_tell(settings: Settings, name: str, storage_url: str, count: int) -> float:
    """Return the median milliseconds of one ask, sample and tell with the space's seeded TPE sampler."""
    sampler = create_sampler(settings.sampler, settings.sampler_options, settings.seed)
    study = optuna.load_study(study_name=name, storage=open_storage(storage_url), sampler=sampler)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        trial = study.ask()
        settings.search_space.sample(trial)
        study.tell(trial, 0.95)
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def _draw(distribution: Any, rng: np.random.Generator) -> Any:
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[int(rng.integers(len(distribution.choices)))]
    if isinstance(distribution, IntDistribution):
        return int(rng.integers(distribution.low, distribution.high + 1))
    if isinstance(distribution, FloatDistribution) and distribution.log:
        return float(math.exp(rng.uniform(math.log(distribution.low), math.log(distribution.high))))
    return float(rng.uniform(distribution.low, distribution.high))


def _time_call(function: Any) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def _show(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 2000], help="trials per study")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each command")
    parser.add_argument("--ask-tell", type=int, default=20, help="timed ask/tell pairs per study")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "study_scale.json", help="JSON output file")
    return parser


if __name__ == "__main__":
    main()
