"""Overhead per trial: milliseconds per trial of a trivial objective for tuner, raw Optuna and raw Ray Tune.

The objective samples one float x, reports one epoch and returns. Sides:

- tuner: `tuner.runner.run` on a space whose objective is a user function
  (`trivial_objective:one_epoch`), as `tuner run` does;
- optuna_memory and optuna_sqlite: `study.optimize` with the default sampler
  (TPE) and pruner (median), in memory and in a SQLite file;
- raytune: a function trainable with Ray Tune's default settings (random
  search, FIFO scheduler, no actor reuse);
- raytune_optuna: the same with the stock OptunaSearch (TPE).

Each measurement is a fresh process. Ray is started before the clock, with
tuner's options (no dashboard, worker output not sent to the driver), and a
run of `--warm-up` trials (default 2) warms up every side. Then runs of `--small` and `--large`
trials are timed. The marginal cost per trial is the difference of their wall
times divided by the difference of their trial counts, so the fixed costs of
a run cancel out. The sides run interleaved, in a rotated order per repeat.

    python benchmarks/trial_overhead.py --repeats 3 --small 5 --large 25
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BENCHMARKS_DIR, RESULTS_DIR, median, print_table, ratio, rotated, write_json

SIDES = ("tuner", "optuna_memory", "optuna_sqlite", "raytune", "raytune_optuna")
WARM_UP_TRIALS = 2
LOG_TAIL_CHARS = 3000
OBJECTIVE_MODULE = '''
def one_epoch(trial):
    """Report one epoch whose score is the param x, and return."""
    trial.report(1, score=float(trial.params["x"]))
'''
SPACE_FILE = """objective: trivial_objective:one_epoch
metric: score
max_epochs: 1
params:
  x: {type: float, low: 0.0, high: 1.0}
"""


def main() -> None:
    args = _parser().parse_args()
    if args.child:
        run_child(args)
        return
    runs = []
    with tempfile.TemporaryDirectory(prefix="trial-overhead-") as scratch:
        for repeat in range(args.repeats):
            for side in rotated(args.sides, repeat):
                runs.append(measure_side(side, repeat, args, Path(scratch) / f"{side}-{repeat}"))
                print(f"repeat {repeat} {side:15} {runs[-1]['marginal_ms']:8.1f} ms per trial (marginal)", flush=True)
    summary = summarize(runs, args.sides)
    print_table(["side", "marginal ms/trial", "amortized ms/trial", "tuner / side (marginal)"],
                [[side, entry["median_marginal_ms"], entry["median_amortized_ms"], entry["tuner_ratio"]] for side, entry in summary.items()])
    settings = {"sides": args.sides, "repeats": args.repeats, "small": args.small, "large": args.large, "warm_up_trials": args.warm_up}
    write_json(args.out, {"settings": settings, "summary": summary, "runs": runs})


def measure_side(side: str, repeat: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Time one side in a fresh process and return its wall times and costs per trial."""
    workdir.mkdir(parents=True)
    result_path = workdir / "result.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", side, "--small", str(args.small), "--large", str(args.large),
               "--warm-up", str(args.warm_up), "--workdir", str(workdir), "--out", str(result_path)]
    log_path = workdir / "output.log"
    with log_path.open("w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    if done.returncode != 0:
        raise SystemExit(f"error: {side} (repeat {repeat}) exited with {done.returncode}:\n{log_path.read_text()[-LOG_TAIL_CHARS:]}")
    walls = json.loads(result_path.read_text())["wall_s"]
    small, large = walls[str(args.small)], walls[str(args.large)]
    return {
        "side": side,
        "repeat": repeat,
        "wall_s": walls,
        "marginal_ms": 1000 * (large - small) / (args.large - args.small),
        "amortized_ms": 1000 * large / args.large,
    }


def summarize(runs: list[dict[str, Any]], sides: list[str]) -> dict[str, Any]:
    """Return per side the medians over repeats and tuner's marginal cost as a multiple of the side's."""
    summary = {}
    for side in sides:
        mine = [run for run in runs if run["side"] == side]
        summary[side] = {
            "median_marginal_ms": median(run["marginal_ms"] for run in mine),
            "median_amortized_ms": median(run["amortized_ms"] for run in mine),
        }
    tuner_ms = summary["tuner"]["median_marginal_ms"] if "tuner" in summary else None
    for entry in summary.values():
        entry["tuner_ratio"] = ratio(tuner_ms, entry["median_marginal_ms"])
    return summary


def run_child(args: argparse.Namespace) -> None:
    """Warm up one side unless `--warm-up` is 0, then time its runs of `--small` and `--large` trials; write the wall times."""
    workdir = args.workdir.resolve()
    os.chdir(workdir)
    sys.path.insert(0, str(workdir))  # As the tuner CLI does, so that the driver imports the user objective.
    run_trials = SIDE_FUNCTIONS[args.child]
    if args.child.startswith(("tuner", "raytune")):
        _start_ray(tuner_env=args.child == "tuner")
    if args.warm_up:
        run_trials(args.warm_up, workdir / "warm-up")
    walls = {}
    for n_trials in (args.small, args.large):
        started = time.perf_counter()
        run_trials(n_trials, workdir / f"run-{n_trials}")
        walls[str(n_trials)] = time.perf_counter() - started
    args.out.write_text(json.dumps({"side": args.child, "wall_s": walls}) + "\n")


def _start_ray(tuner_env: bool) -> None:
    import ray

    if tuner_env:
        from tuner.runner import _RAY_ENV

        # tuner sets these before it starts Ray, so that its workers see them too.
        os.environ.update(_RAY_ENV)
    ray.init(include_dashboard=False, log_to_driver=False)


def run_tuner(n_trials: int, folder: Path) -> None:
    from rich.console import Console

    from tuner.runner import run
    from tuner.settings import load_settings

    if not Path("trivial_objective.py").exists():
        Path("trivial_objective.py").write_text(OBJECTIVE_MODULE)
        Path("search_spaces").mkdir()
        Path("search_spaces/trivial.yaml").write_text(SPACE_FILE)
    settings = load_settings(["space=trivial", f"n_trials={n_trials}", f"storage=sqlite:///{folder}/tuner.db", f"results_dir={folder}"])
    run(settings, console=Console(stderr=True, quiet=True))


def run_optuna(n_trials: int, storage: str | None) -> None:
    import optuna

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report(x, 1)
        if trial.should_prune():
            raise optuna.TrialPruned()
        return x

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", storage=storage)
    study.optimize(objective, n_trials=n_trials)


def run_raytune(n_trials: int, folder: Path, with_optuna: bool) -> None:
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    def trainable(config: dict[str, Any]) -> None:
        tune.report({"score": config["x"]})

    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0.0, 1.0)},
        tune_config=tune.TuneConfig(num_samples=n_trials, metric="score", mode="max", search_alg=OptunaSearch() if with_optuna else None),
        run_config=tune.RunConfig(storage_path=str(folder)),
    )
    tuner.fit()


SIDE_FUNCTIONS = {
    "tuner": run_tuner,
    "optuna_memory": lambda n_trials, folder: run_optuna(n_trials, None),
    "optuna_sqlite": lambda n_trials, folder: run_optuna(n_trials, f"sqlite:///{folder}.db"),
    "raytune": lambda n_trials, folder: run_raytune(n_trials, folder, with_optuna=False),
    "raytune_optuna": lambda n_trials, folder: run_raytune(n_trials, folder, with_optuna=True),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES), help="sides to measure")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per side, interleaved")
    parser.add_argument("--small", type=int, default=5, help="trials of the smaller timed run")
    parser.add_argument("--large", type=int, default=25, help="trials of the larger timed run")
    parser.add_argument("--warm-up", type=int, default=WARM_UP_TRIALS, help="trials of the untimed warm-up run of each side, 0 for none")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "trial_overhead.json", help="JSON output file")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    main()
