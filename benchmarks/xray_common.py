"""Options, event log, search space and training steps shared by the three sides of the time-to-target benchmark.

Each side (xray_tuner.py, xray_optuna.py, xray_raytune.py) takes the same
options, tunes the adam_xray search space, and writes one event per epoch
reported, (monotonic time, trial, epoch, val_auc), to a JSON file. The two
plain sides train with tuner's model, loss, optimizer, schedule and
augmentation, but feed batches through a DataLoader, as the Optuna and Ray
Tune tutorials do.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from objectives.data import Split
from objectives.models import cnn
from objectives.training import class_weights, make_optimizer, make_schedule
from objectives.xray import augment_batch

from common import REPO_DIR

SPACE_FILE = REPO_DIR / "search_spaces" / "adam_xray.yaml"
METRIC = "val_auc"


def side_parser(description: str) -> argparse.ArgumentParser:
    """Return the options every side takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampler")
    parser.add_argument("--n-trials", type=int, default=16, help="trials to run")
    parser.add_argument("--max-epochs", type=int, default=6, help="epoch budget of each trial")
    parser.add_argument("--data", type=Path, required=True, help="MedMNIST-format .npz file (PneumoniaMNIST)")
    parser.add_argument("--workdir", type=Path, required=True, help="scratch folder for storages and Ray's files")
    parser.add_argument("--events-out", type=Path, required=True, help="JSON file that receives the epoch events")
    return parser


class EventLog:
    """Epoch reports in the order they reached the driver, with the time of arrival.

    Times are `time.monotonic()`, which on Linux is one clock for every
    process of the machine, so the driver of the benchmark can subtract its
    own start time.
    """

    def __init__(self) -> None:
        self.events: list[tuple[float, int, int, float]] = []
        self._numbers: dict[Any, int] = {}
        self._seen: set[tuple[Any, int]] = set()

    def record(self, trial: Any, epoch: int, value: float) -> None:
        """Record one epoch of `trial`, any hashable id, unless that epoch is already recorded.

        Trials are numbered in the order of their first report.
        """
        if (trial, int(epoch)) in self._seen:
            return
        self._seen.add((trial, int(epoch)))
        number = self._numbers.setdefault(trial, len(self._numbers))
        self.events.append((time.monotonic(), number, int(epoch), float(value)))

    def best(self) -> float:
        """Return the highest value recorded, or NaN before the first record."""
        return max((value for *_, value in self.events), default=float("nan"))

    def write(self, path: Path, side: str, training_threads: int | None, **extra: Any) -> None:
        """Write the events, the torch threads of each training process and the per-side facts in `extra` as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"side": side, "training_threads": training_threads, "events": self.events, **extra}
        path.write_text(json.dumps(record) + "\n")


def read_space(path: Path = SPACE_FILE) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Return the tuned params of a space file as their YAML specs, and its constants."""
    params = yaml.safe_load(path.read_text())["params"]
    tuned = {name: spec for name, spec in params.items() if isinstance(spec, dict) and "type" in spec}
    constants = {name: value for name, value in params.items() if name not in tuned}
    return tuned, constants


def space_settings(path: Path = SPACE_FILE) -> dict[str, Any]:
    """Return the top-level settings of a space file (sampler, pruner, ...)."""
    return yaml.safe_load(path.read_text())


class Training:
    """The model, optimizer, loss, schedule and augmentation that tuner's image_classifier builds from the params."""

    def __init__(self, params: Mapping[str, Any], train: Split, max_epochs: int) -> None:
        self.model = cnn(
            in_channels=train.x.shape[1],
            n_outputs=int(train.y.max()) + 1,
            depth=int(params["depth"]),
            width=int(params["width"]),
            dropout=float(params["dropout"]),
            image_size=train.x.shape[-1],
        )
        self.optimizer = make_optimizer(self.model, params)
        self.loss_fn = nn.CrossEntropyLoss(
            weight=class_weights(train.y, params.get("class_weight", "none")),
            label_smoothing=float(params.get("label_smoothing", 0.0)),
        )
        self.schedule = make_schedule(self.optimizer, params.get("schedule", "constant"), max_epochs)
        self.augment = str(params.get("augment", "none"))
        self.generator = torch.Generator().manual_seed(0)

    def train_epoch(self, loader: DataLoader) -> None:
        """Train one epoch over the batches of `loader`, then step the schedule."""
        self.model.train()
        for images, labels in loader:
            if self.augment != "none":
                images = augment_batch(images, self.generator, flip=self.augment == "flip_shift")
            self.optimizer.zero_grad()
            self.loss_fn(self.model(images), labels).backward()
            self.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()
