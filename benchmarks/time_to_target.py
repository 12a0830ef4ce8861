"""Time to target: wall-clock seconds until the best val_auc reaches a target on PneumoniaMNIST.

Three sides tune the adam_xray search space with the same trial count and
epoch budget on the same machine: tuner (xray_tuner.py), a plain Optuna
script (xray_optuna.py) and a plain Ray Tune script (xray_raytune.py). Each
run is a fresh process; the clock starts just before the process is spawned,
so Python start-up, imports, data loading and Ray start-up count. A side
reaches a target at the first epoch, of any trial, whose reported val_auc is
at or above it. The sides run interleaved, in a rotated order per seed.

    python benchmarks/time_to_target.py --seeds 4 --n-trials 16 --max-epochs 6 --targets 0.99 0.995 0.997
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import BENCHMARKS_DIR, DEFAULT_DATA_DIR, RESULTS_DIR, median, print_table, ratio, rotated, write_json

SIDES = ("tuner", "optuna", "raytune")
LOG_TAIL_CHARS = 3000


def main() -> None:
    args = _parser().parse_args()
    data = args.data_dir / "pneumoniamnist.npz"
    if not data.is_file():
        raise SystemExit(f"error: {data} not found. Give the folder of pneumoniamnist.npz with --data-dir or TUNER_DATA_DIR.")
    with tempfile.TemporaryDirectory(prefix="time-to-target-") as scratch:
        if args.image_limit:
            data = write_subset(data, Path(scratch) / "subset.npz", args.image_limit)
        runs = []
        for seed in range(args.seeds):
            for side in rotated(SIDES, seed):
                runs.append(run_side(side, seed, args, data, Path(scratch) / f"{side}-{seed}"))
                print(f"seed {seed} {side:8} wall {runs[-1]['wall_s']:6.1f} s  best {runs[-1]['best']:.4f}", flush=True)
    summary = summarize(runs, args.targets)
    print_summary(summary, args.targets)
    settings = {"seeds": args.seeds, "n_trials": args.n_trials, "max_epochs": args.max_epochs, "targets": args.targets,
                "image_limit": args.image_limit, "space": "adam_xray"}
    write_json(args.out, {"settings": settings, "summary": summary, "runs": runs})


def run_side(side: str, seed: int, args: argparse.Namespace, data: Path, workdir: Path) -> dict[str, Any]:
    """Run one side in a fresh process and return its times to each target, its best value and its effort."""
    workdir.mkdir(parents=True)
    events_path = workdir / "events.json"
    command = [sys.executable, str(BENCHMARKS_DIR / f"xray_{side}.py"), "--seed", str(seed), "--n-trials", str(args.n_trials),
               "--max-epochs", str(args.max_epochs), "--data", str(data), "--workdir", str(workdir), "--events-out", str(events_path)]
    log_path = workdir / "output.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd())
    wall_s = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"error: {side} (seed {seed}) exited with {done.returncode}:\n{log_path.read_text()[-LOG_TAIL_CHARS:]}")
    record = json.loads(events_path.read_text())
    events = [(t - started, trial, epoch, value) for t, trial, epoch, value in record["events"]]
    epochs_by_trial: dict[int, int] = {}
    for _, trial, epoch, _ in events:
        epochs_by_trial[trial] = max(epoch, epochs_by_trial.get(trial, 0))
    return {
        "side": side,
        "seed": seed,
        "wall_s": wall_s,
        "best": max((value for *_, value in events), default=math.nan),
        "time_to_target_s": {str(target): first_reached(events, target) for target in args.targets},
        "first_report_s": min((t for t, *_ in events), default=None),
        "trials": len(epochs_by_trial),
        "epochs_trained": sum(epochs_by_trial.values()),
        "training_threads": record["training_threads"],
        "counts": record.get("counts"),
    }


def first_reached(events: list[tuple[float, int, int, float]], target: float) -> float | None:
    """Return the time of the first event whose value is at or above `target`, or None if none is."""
    return min((t for t, _, _, value in events if value >= target), default=None)


def summarize(runs: list[dict[str, Any]], targets: list[float]) -> dict[str, Any]:
    """Return per side the medians over seeds, and tuner's speed-up against each plain side.

    A run that misses a target counts as infinitely slow in the median, so a
    median is reported only when more than half of the seeds reach it.
    """
    summary: dict[str, Any] = {}
    for side in SIDES:
        mine = [run for run in runs if run["side"] == side]
        if not mine:
            continue
        summary[side] = {
            "median_wall_s": median(run["wall_s"] for run in mine),
            "median_best": median(run["best"] for run in mine),
            "median_epochs_trained": median(run["epochs_trained"] for run in mine),
            "median_first_report_s": median(run["first_report_s"] for run in mine),
            "targets": {str(target): _target_summary([run["time_to_target_s"][str(target)] for run in mine]) for target in targets},
        }
    for side in ("optuna", "raytune"):
        if side not in summary or "tuner" not in summary:
            continue
        for target in map(str, targets):
            entry = summary[side]["targets"][target]
            entry["tuner_speedup"] = ratio(entry["median_s"], summary["tuner"]["targets"][target]["median_s"])
    return summary


def _target_summary(times: list[float | None]) -> dict[str, Any]:
    reached = [t for t in times if t is not None]
    padded = sorted(reached) + [math.inf] * (len(times) - len(reached))
    middle = float(np.median(padded)) if padded else math.inf
    return {"reached": len(reached), "runs": len(times), "median_s": None if math.isinf(middle) else middle, "times_s": times}


def print_summary(summary: dict[str, Any], targets: list[float]) -> None:
    rows = []
    for side, entry in summary.items():
        for target in map(str, targets):
            hit = entry["targets"][target]
            rows.append([side, target, f"{hit['reached']}/{hit['runs']}", hit["median_s"], hit.get("tuner_speedup")])
    print_table(["side", "target", "reached", "median s", "tuner speed-up"], rows)
    print()
    print_table(["side", "median wall s", "median best", "median epochs", "first report s"],
                [[side, e["median_wall_s"], e["median_best"], e["median_epochs_trained"], e["median_first_report_s"]] for side, e in summary.items()])


def write_subset(source: Path, target: Path, limit: int) -> Path:
    """Write a MedMNIST-format file with `limit` images of each split, drawn with a fixed seed, for smoke runs.

    The draw is random because the file is not shuffled: its first images may all share one class.
    """
    rng = np.random.default_rng(0)
    subset = {}
    with np.load(source) as archive:
        for split in ("train", "val", "test"):
            rows = rng.permutation(len(archive[f"{split}_labels"]))[:limit]
            subset[f"{split}_images"] = archive[f"{split}_images"][rows]
            subset[f"{split}_labels"] = archive[f"{split}_labels"][rows]
    np.savez(target, **subset)
    return target


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4, help="seeds 0..N-1; each seed runs every side once")
    parser.add_argument("--n-trials", type=int, default=16, help="trials per run")
    parser.add_argument("--max-epochs", type=int, default=6, help="epoch budget of each trial")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.99, 0.995, 0.997], help="val_auc targets")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder of pneumoniamnist.npz")
    parser.add_argument("--image-limit", type=int, default=None, help="use only N images of each split, drawn with a fixed seed (smoke tests)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "time_to_target.json", help="JSON output file")
    return parser


if __name__ == "__main__":
    main()
