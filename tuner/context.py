"""The small API between tuner and an objective: params, data, and per-epoch reports."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


class TrialDiverged(ArithmeticError):
    """A loss or metric became NaN or infinite; the trial stops and fails as "diverged"."""


@dataclass
class TrialContext:
    """The params, data and report hook that an objective receives for one trial.

    Attributes:
        params: The trial's config, nested: tuned params plus constants.
        data: The loaded data set (train and validation splits only during
            the search), or None when the space file names no data.
        number: The trial number in the study.
        seed: Seed for this trial: the run seed plus the trial number.
        max_epochs: Epoch budget; a trial may stop earlier on its own.
        metric: Name of the metric being optimised; every report includes it.
        device: The torch device assigned to this trial: the GPU that Ray
            reserved for it, or the CPU.
        cv: Folds of cross-validation on the train and validation rows, or
            None to train on the train split and validate on the validation split.
        gpu: GPUs reserved for this trial (`resources.gpu`); a fraction
            shares one GPU with other trials.
        amp: Mixed precision: "bf16" or "fp16" to train under torch.autocast
            with that dtype, "none" for float32.
        channels_last: Whether to store images and convolution weights in
            channels-last memory format.
    """

    params: dict[str, Any]
    data: Any
    number: int
    seed: int
    max_epochs: int
    metric: str
    device: torch.device
    cv: int | None = None
    gpu: float = 0.0
    amp: str = "none"
    channels_last: bool = False
    _sink: Callable[[dict[str, Any]], None] = field(repr=False, default=lambda metrics: None)
    history: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def report(self, epoch: int, **metrics: float) -> None:
        """Report the metrics of one finished epoch (1-based).

        Raises:
            TrialDiverged: A metric is NaN or infinite, so training stops now.
            ValueError: The optimised metric is missing or the epoch is invalid.
        """
        if not isinstance(epoch, int) or epoch < 1 or epoch > self.max_epochs:
            raise ValueError(f"epoch must be an integer in 1..{self.max_epochs}; got {epoch!r}.")
        if self.metric not in metrics:
            raise ValueError(f"report() must include the metric '{self.metric}'; got {sorted(metrics)}.")
        values = {name: float(value) for name, value in metrics.items()}
        bad = {name: value for name, value in values.items() if not math.isfinite(value)}
        if bad:
            name, value = next(iter(bad.items()))
            raise TrialDiverged(f"{name} is {value} at epoch {epoch}")
        record = {"epoch": epoch, **values}
        self.history.append(record)
        self._sink(record)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) for one trial."""
    torch.manual_seed(seed)

