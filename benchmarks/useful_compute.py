"""Useful compute: the share of worker time that a tuner run spends inside the objective's train/validate steps.

tuner's reports carry no timing, so the run tunes a copy of the space whose
objective is the built-in one wrapped by timed_objective.py: every report
adds the seconds spent inside the objective outside of `report()`. The sum
of those seconds over trials is the useful compute. It is divided by wall
time times workers, the trials at once, which the runner sets to one per CPU.
Three wall times:

- search: from the call of `tuner.runner.run` to the last report of the last
  trial, so Python's imports are excluded but data loading, Ray start-up and
  trial scheduling count;
- steady: from the first objective entry to the last report, which leaves
  out the start-up and shows the cost of trial turnover and the idle tail;
- run: the whole `run` call, which adds the retraining of the best trial in
  the driver, the test evaluation, the report and the shutdown of Ray.

    python benchmarks/useful_compute.py --space adam_xray --n-trials 20 --max-epochs 6
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import yaml
from rich.console import Console

from objectives import OBJECTIVES
from tuner.runner import run
from tuner.settings import load_settings

from common import BENCHMARKS_DIR, DEFAULT_DATA_DIR, REPO_DIR, RESULTS_DIR, median, print_table, write_json

DATA_FILES = {"adam_xray": "pneumoniamnist.npz"}  # Spaces whose data comes from a file; the others are embedded.


def main() -> None:
    args = _parser().parse_args()
    os.environ.setdefault("TUNER_DATA_DIR", str(args.data_dir))
    runs = [measure(args, seed) for seed in range(args.repeats)]
    keys = ("search_share", "steady_share", "run_share")
    summary = {f"median_{key}": median(run[key] for run in runs) for key in keys}
    print_table(["seed", "trials", "epochs", "useful s", "in report s", "search s", "run s", "workers", *keys],
                [[run["seed"], run["trials"], run["epochs"], run["useful_s"], run["report_s"], run["search_wall_s"], run["run_wall_s"],
                  run["workers"], *(run[key] for key in keys)] for run in runs])
    settings = {"space": args.space, "n_trials": args.n_trials, "max_epochs": args.max_epochs, "repeats": args.repeats}
    write_json(args.out, {"settings": settings, "summary": summary, "runs": runs})


def measure(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Run one timed tuner run in a scratch folder and return its useful compute and wall times."""
    previous = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="useful-compute-") as scratch:
        os.chdir(scratch)
        try:
            settings = load_settings(_overrides(args, seed, Path(scratch)))
            started = time.monotonic()
            result = run(settings, console=Console(stderr=True))
            finished = time.monotonic()
            study = optuna.load_study(study_name=result.study_name, storage=settings.storage)
        finally:
            os.chdir(previous)

    trials = [trial_times(trial) for trial in study.get_trials(deepcopy=False)]
    timed = [trial for trial in trials if trial["compute_s"] is not None]
    if not timed:
        raise SystemExit(f"error: no trial of study {result.study_name} reported; the run failed: {result.errors}")
    workers = min(os.cpu_count() or 1, args.n_trials)
    useful = sum(trial["compute_s"] for trial in timed)
    # The start of each trial's last report() call.
    last_report = max(trial["objective_start"] + trial["compute_s"] + trial["report_s"] for trial in timed)
    first_entry = min(trial["objective_start"] for trial in timed)

    return {
        "seed": seed,
        "trials": len(trials),
        "timed_trials": len(timed),
        "epochs": sum(trial["epochs"] for trial in trials),
        "counts": result.counts,
        "workers": workers,
        "useful_s": useful,
        "report_s": sum(trial["report_s"] for trial in timed),
        "search_wall_s": last_report - started,
        "steady_wall_s": last_report - first_entry,
        "run_wall_s": finished - started,
        "search_share": useful / ((last_report - started) * workers),
        "steady_share": useful / ((last_report - first_entry) * workers),
        "run_share": useful / ((finished - started) * workers),
        "first_entry_s": first_entry - started,
        "per_trial": trials,
    }


def trial_times(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """Return a trial's state, epochs trained and the objective timing of its last report."""
    last = trial.user_attrs.get("last_metrics") or {}
    return {
        "number": trial.number,
        "state": trial.state.name,
        "epochs": len(trial.intermediate_values),
        "compute_s": last.get("compute_s"),
        "report_s": last.get("report_s"),
        "objective_start": last.get("objective_start"),
    }


def write_timed_space(folder: Path, space: str) -> str:
    """Write `search_spaces/timed_SPACE.yaml`: the space with its objective wrapped by timed_objective.py.

    The test evaluation and predictions stay those of the built-in objective.
    """
    raw = yaml.safe_load((REPO_DIR / "search_spaces" / f"{space}.yaml").read_text())
    builtin = OBJECTIVES[raw["objective"]]
    raw["objective"] = f"timed_objective:{raw['objective']}"
    raw["evaluate"] = builtin.evaluate
    if getattr(builtin, "predict", None):
        raw["predict"] = builtin.predict
    if space in DATA_FILES:
        raw["data"] = {**raw["data"], "path": str(Path(os.environ["TUNER_DATA_DIR"]) / DATA_FILES[space])}
    # Ray workers import a user objective from the driver's working directory, as they would a user's module.
    shutil.copy(BENCHMARKS_DIR / "timed_objective.py", folder / "timed_objective.py")
    (folder / "search_spaces").mkdir()
    (folder / "search_spaces" / f"timed_{space}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return f"timed_{space}"


def _overrides(args: argparse.Namespace, seed: int, scratch: Path) -> list[str]:
    """Return the overrides of the timed run, after writing its space file into `scratch`."""
    space = write_timed_space(scratch, args.space)
    overrides = [f"space={space}", f"n_trials={args.n_trials}", f"seed={seed}", f"storage=sqlite:///{scratch}/tuner.db"]
    if args.max_epochs is None:
        return overrides
    overrides.append(f"max_epochs={args.max_epochs}")
    # tuner rejects a grace period longer than the epoch budget, which only tiny smoke budgets reach.
    grace_period = yaml.safe_load((REPO_DIR / "search_spaces" / f"{args.space}.yaml").read_text())["pruner"]["grace_period"]
    if args.max_epochs < grace_period:
        overrides.append(f"pruner.grace_period={args.max_epochs}")
    return overrides


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=("adam_xray", "adam_medical"), default="adam_xray", help="built-in space to run")
    parser.add_argument("--n-trials", type=int, default=20, help="trials per run")
    parser.add_argument("--max-epochs", type=int, default=None, help="epoch budget of each trial (default: the space's)")
    parser.add_argument("--repeats", type=int, default=1, help="runs, with seeds 0..N-1")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder of the data files (TUNER_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "useful_compute.json", help="JSON output file")
    return parser


if __name__ == "__main__":
    main()
