"""Training throughput: tuner's epoch loop against a plain PyTorch loop and a DataLoader loop, per built-in objective.

Each case trains the model of one built-in objective on the training split
of its space's data, loaded as `tuner run` loads it, with one thread (a trial
gets one CPU). Three loops train the same model with the same loss:

- tuner: `objectives.training.train_epoch`, the loop every built-in
  objective uses (slices of a shuffled index over tensors in memory);
- plain: the loop a PyTorch user writes over the same tensors;
- dataloader: a shuffled DataLoader over a TensorDataset, as in Optuna's
  and PyTorch's tutorials.

The loops run interleaved, `--repeats` times each after one warm-up epoch,
and the table reports the median samples per second of one training epoch
and the ratios.

    python benchmarks/throughput.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from objectives.data import Split
from objectives.energy import build_model
from objectives.models import cnn
from objectives.tabular import build_mlp
from objectives.training import train_epoch
from tuner.errors import TunerError
from tuner.runner import load_data
from tuner.settings import load_settings

from common import DEFAULT_DATA_DIR, RESULTS_DIR, print_table, write_json


@dataclass(frozen=True)
class Case:
    """One objective's model, training split, batch size and loss."""

    name: str
    objective: str
    model: Callable[[], nn.Module]
    data: Split
    batch_size: int
    loss: Callable[[], nn.Module]


def cases(data_dir: Path, limit: int | None) -> list[Case]:
    """Return a case for each built-in objective whose data is present, with at most `limit` training rows."""
    found = []
    for build in (_tabular, _xray, _credit, _energy):
        try:
            case = build(data_dir)
        except TunerError as error:
            print(f"skipped: {error.problems[0]}")
            continue
        if limit:
            case = Case(case.name, case.objective, case.model, Split(case.data.x[:limit], case.data.y[:limit]), case.batch_size, case.loss)
        found.append(case)
    return found


def _space_data(space: str, data_dir: Path):
    return load_data(load_settings([f"space={space}", f"data.dir={data_dir}"]))


def _tabular(data_dir: Path) -> Case:
    data = _space_data("adam_medical", data_dir)
    return Case("breast cancer MLP", "tabular_classifier", lambda: build_mlp(data, {"depth": 3, "width": 64, "dropout": 0.1}),
                data.train, 32, nn.CrossEntropyLoss)


def _xray(data_dir: Path) -> Case:
    data = _space_data("adam_xray", data_dir)
    return Case("x-ray CNN (PneumoniaMNIST)", "image_classifier", lambda: cnn(1, 2, depth=3, width=32, dropout=0.1, image_size=28),
                data.train, 64, nn.CrossEntropyLoss)


def _credit(data_dir: Path) -> Case:
    data = _space_data("adam_credit", data_dir)
    return Case("German credit MLP", "credit_classifier", lambda: build_mlp(data, {"depth": 2, "width": 64, "dropout": 0.1}),
                data.train, 32, nn.CrossEntropyLoss)


def _energy(data_dir: Path) -> Case:
    data = _space_data("adam_energy", data_dir)
    params = {"depth": 2, "width": 128, "dropout": 0.1, "lookback": 168}
    return Case("PJM load MLP forecaster", "forecaster", lambda: build_model(params, data.info), data.train, 256, nn.MSELoss)


def tuner_loop(model: nn.Module, case: Case) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_epoch(model, optimizer, case.loss(), case.data, case.batch_size, torch.Generator().manual_seed(0))


def plain_loop(model: nn.Module, case: Case) -> None:
    """Train one epoch as a PyTorch user writes it over tensors already in memory."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = case.loss()
    model.train()
    order = torch.randperm(len(case.data.y))
    for start in range(0, len(order), case.batch_size):
        rows = order[start:start + case.batch_size]
        optimizer.zero_grad()
        loss_fn(model(case.data.x[rows]), case.data.y[rows]).backward()
        optimizer.step()


def dataloader_loop(model: nn.Module, case: Case) -> None:
    """Train one epoch as Optuna's and PyTorch's tutorials do, with a shuffled DataLoader over a TensorDataset."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = case.loss()
    model.train()
    for x, y in DataLoader(TensorDataset(case.data.x, case.data.y), batch_size=case.batch_size, shuffle=True):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()


LOOPS = {"tuner": tuner_loop, "plain": plain_loop, "dataloader": dataloader_loop}


def measure(case: Case, repeats: int) -> dict[str, float]:
    """Return the median samples per second of one epoch for each loop, run interleaved."""
    timings: dict[str, list[float]] = {loop: [] for loop in LOOPS}
    for function in LOOPS.values():  # One warm-up epoch each, not timed.
        function(case.model(), case)
    for _ in range(repeats):
        for loop, function in LOOPS.items():
            torch.manual_seed(0)
            model = case.model()
            start = time.perf_counter()
            function(model, case)
            timings[loop].append(len(case.data.y) / (time.perf_counter() - start))
    return {loop: statistics.median(values) for loop, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per loop and case")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder of the data files (TUNER_DATA_DIR)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training rows of each case (smoke tests)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "throughput.json", help="JSON output file")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = []
    for case in cases(args.data_dir, args.limit):
        speeds = measure(case, args.repeats)
        rows.append({"case": case.name, "objective": case.objective, "rows": len(case.data.y), "batch_size": case.batch_size,
                     "samples_per_s": speeds, "tuner_vs_plain": speeds["tuner"] / speeds["plain"],
                     "tuner_vs_dataloader": speeds["tuner"] / speeds["dataloader"]})
    print_table(["objective", "rows", "batch", "tuner/s", "plain/s", "loader/s", "vs plain", "vs loader"],
                [[row["objective"], row["rows"], row["batch_size"], *row["samples_per_s"].values(), row["tuner_vs_plain"],
                  row["tuner_vs_dataloader"]] for row in rows])
    write_json(args.out, {"repeats": args.repeats, "threads": 1, "limit": args.limit, "rows": rows})


if __name__ == "__main__":
    main()
