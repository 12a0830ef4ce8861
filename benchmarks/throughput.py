"""Training throughput: tuner's epoch loop against a plain PyTorch loop and a DataLoader loop.

Each case trains the same model on the same in-memory tensors with one
thread. The three loops run interleaved, `--repeats` times each, and the
table reports the median samples per second and the ratios.

    python benchmarks/throughput.py --repeats 5 --out results/benchmarks/throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from objectives.data import Split, load_breast_cancer
from objectives.models import cnn, mlp
from objectives.training import train_epoch

Case = tuple[str, Callable[[], nn.Module], Split, int]


def cases(data_dir: Path | None, image_limit: int | None) -> list[Case]:
    """Return (name, model factory, train split, batch size) for each objective whose data is present."""
    tabular = load_breast_cancer({}).train
    found: list[Case] = [("tabular (breast cancer MLP)", lambda: mlp(30, 2, depth=3, width=64, dropout=0.1), tabular, 32)]
    if data_dir is not None and (data_dir / "pneumoniamnist.npz").exists():
        from objectives.images import load_images

        images = load_images({"path": str(data_dir / "pneumoniamnist.npz")}).train
        if image_limit:
            images = Split(images.x[:image_limit], images.y[:image_limit])
        found.append(("x-ray CNN (PneumoniaMNIST)", lambda: cnn(1, 2, depth=3, width=32, dropout=0.1, image_size=28), images, 64))
    return found


def tuner_loop(model: nn.Module, data: Split, batch_size: int) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_epoch(model, optimizer, nn.CrossEntropyLoss(), data, batch_size, torch.Generator().manual_seed(0))


def plain_loop(model: nn.Module, data: Split, batch_size: int) -> None:
    """Train one epoch as a PyTorch user writes it over tensors already in memory."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    order = torch.randperm(len(data.y))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        optimizer.zero_grad()
        loss_fn(model(data.x[rows]), data.y[rows]).backward()
        optimizer.step()


def dataloader_loop(model: nn.Module, data: Split, batch_size: int) -> None:
    """Train one epoch as Optuna's and PyTorch's tutorials do, with a shuffled DataLoader over a TensorDataset."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for x, y in DataLoader(TensorDataset(data.x, data.y), batch_size=batch_size, shuffle=True):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()


LOOPS = {"tuner": tuner_loop, "plain": plain_loop, "dataloader": dataloader_loop}


def measure(case: Case, repeats: int) -> dict[str, float]:
    """Return the median samples per second of one epoch for each loop, run interleaved."""
    name, factory, data, batch_size = case
    timings: dict[str, list[float]] = {loop: [] for loop in LOOPS}
    for loop, function in LOOPS.items():  # One warm-up epoch each, not timed.
        function(factory(), data, batch_size)
    for _ in range(repeats):
        for loop, function in LOOPS.items():
            torch.manual_seed(0)
            model = factory()
            start = time.perf_counter()
            function(model, data, batch_size)
            timings[loop].append(len(data.y) / (time.perf_counter() - start))
    return {loop: statistics.median(values) for loop, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per loop and case")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("TUNER_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")))
    parser.add_argument("--image-limit", type=int, default=None, help="use only the first N training images (smoke tests)")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/throughput.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = []
    for case in cases(args.data_dir if args.data_dir.exists() else None, args.image_limit):
        speeds = measure(case, args.repeats)
        rows.append({"case": case[0], "samples_per_s": speeds,
                     "tuner_vs_plain": speeds["tuner"] / speeds["plain"], "tuner_vs_dataloader": speeds["tuner"] / speeds["dataloader"]})
    print(f"{'case':32} {'tuner/s':>10} {'plain/s':>10} {'loader/s':>10} {'vs plain':>9} {'vs loader':>10}")
    for row in rows:
        s = row["samples_per_s"]
        print(f"{row['case']:32} {s['tuner']:10.0f} {s['plain']:10.0f} {s['dataloader']:10.0f} {row['tuner_vs_plain']:9.2f} {row['tuner_vs_dataloader']:10.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"repeats": args.repeats, "torch": torch.__version__, "threads": 1, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
