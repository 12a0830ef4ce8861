"""GPU check: a short adam_xray study with fractional GPUs, and what it achieved.

Runs `tuner` on the PneumoniaMNIST CNN with `--gpu` of a GPU per trial, where
0.25 packs four trials on one GPU. It then prints trials per hour and epochs
per second over the tuning phase. For each trial it prints the epochs, the
epochs per second and the peak GPU memory, which is
`torch.cuda.max_memory_allocated` in the trial's process and so leaves out
the CUDA context.

    python benchmarks/gpu_check.py --gpu 0.25 --trials 8 --epochs 3 --out results/gpu_check.json

Needs an NVIDIA GPU that torch can use and the file pneumoniamnist.npz in the
data folder (`--data-dir`, else TUNER_DATA_DIR). Without a GPU it prints one
line and exits with code 2, writing nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

NO_GPU = "error: no NVIDIA GPU that torch can use (torch.cuda.is_available() is False); run the GPU check on a machine with one."


def main(argv: list[str] | None = None) -> int:
    """Run the check and print its figures; return the exit code."""
    args = _parser().parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(NO_GPU, file=sys.stderr)
        return 2

    from tuner.errors import TunerError

    with tempfile.TemporaryDirectory(prefix="gpu_check-") as scratch:
        try:
            figures = run_check(args, Path(scratch))
        except TunerError as error:
            for line in error.problems:
                print(f"error: {line}", file=sys.stderr)
            return 2
    figures["device"] = torch.cuda.get_device_name(0)
    print_figures(figures)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


def run_check(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Run the study in `scratch` and return its figures."""
    import optuna

    from tuner.runner import run
    from tuner.settings import load_settings

    overrides = [
        "space=adam_xray", f"n_trials={args.trials}", f"max_epochs={args.epochs}", "pruner=none",
        f"resources.gpu={args.gpu}", f"resources.cpu={args.cpu}", f"amp={args.amp}", f"channels_last={str(args.channels_last).lower()}",
        f"storage=sqlite:///{scratch}/gpu_check.db", f"results_dir={scratch}/results",
    ]
    if args.data_dir is not None:
        overrides.append(f"data.dir={args.data_dir}")
    settings = load_settings(overrides)
    result = run(settings)
    study = optuna.load_study(study_name=result.study_name, storage=settings.storage)
    return summarize(study, args, result.wall_s)


def summarize(study, args: argparse.Namespace, run_s: float) -> dict[str, Any]:
    """Return the per-trial rows and the rates over the tuning phase, from the first trial's start to the last one's end."""
    trials = [t for t in study.trials if t.datetime_start is not None and t.datetime_complete is not None]
    rows = [_row(t) for t in trials]
    tuning_s = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds() if trials else 0.0
    finished = sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    epochs = sum(row["epochs"] for row in rows)
    return {
        "settings": {"gpu": args.gpu, "cpu": args.cpu, "trials": args.trials, "epochs": args.epochs, "amp": args.amp, "channels_last": args.channels_last},
        "run_s": round(run_s, 1),
        "tuning_s": round(tuning_s, 1),
        "trials_per_hour": round(finished / tuning_s * 3600, 1) if tuning_s else None,
        "epochs_per_s": round(epochs / tuning_s, 2) if tuning_s else None,
        "trials": rows,
    }


def print_figures(figures: dict[str, Any]) -> None:
    settings = figures["settings"]
    print(f"GPU check on {figures['device']}: {settings['trials']} trials of {settings['epochs']} epochs, "
          f"{settings['gpu']} GPU and {settings['cpu']} CPU per trial, amp={settings['amp']}, channels_last={settings['channels_last']}")
    print(f"tuning phase {figures['tuning_s']} s (whole run {figures['run_s']} s): "
          f"{figures['trials_per_hour']} trials per hour, {figures['epochs_per_s']} epochs per second")
    print(f"{'trial':>5} {'state':>9} {'epochs':>6} {'seconds':>8} {'epochs/s':>8} {'peak MiB':>9}  node")
    for row in figures["trials"]:
        peak = "-" if row["gpu_peak_mib"] is None else f"{row['gpu_peak_mib']:.0f}"
        print(f"{row['trial']:>5} {row['state']:>9} {row['epochs']:>6} {row['seconds']:>8.1f} {row['epochs_per_s']:>8.2f} {peak:>9}  {row['node_host']}")


def _row(trial) -> dict[str, Any]:
    seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
    epochs = len(trial.intermediate_values)
    return {
        "trial": trial.number,
        "state": trial.state.name,
        "epochs": epochs,
        "seconds": round(seconds, 2),
        "epochs_per_s": round(epochs / seconds, 3) if seconds > 0 else 0.0,
        "gpu_peak_mib": trial.user_attrs.get("gpu_peak_mib"),
        "node_host": trial.user_attrs.get("node_host"),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", type=float, default=0.25, help="GPUs per trial (default 0.25: four trials share one GPU)")
    parser.add_argument("--cpu", type=float, default=1, help="CPUs per trial (default 1)")
    parser.add_argument("--trials", type=int, default=8, help="trials in the study (default 8)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial (default 3)")
    parser.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none", help="mixed precision (default none)")
    parser.add_argument("--channels-last", action="store_true", help="train the CNN in channels-last memory format")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder with pneumoniamnist.npz (default: TUNER_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures to this JSON file")
    return parser


if __name__ == "__main__":
    sys.exit(main())
