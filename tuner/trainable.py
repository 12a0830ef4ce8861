"""The function Ray Tune runs for each trial: it builds a TrialContext and calls the objective."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import torch
from ray import tune

from tuner.searcher import REPORTED_KEY
from tuner.context import TrialContext, seed_everything
from tuner.settings import Settings, load_callable


def trial_payload(settings: Settings, import_paths: list[str]) -> dict[str, Any]:
    """Return the few settings a trial needs, as plain values that Ray ships to workers."""
    return {
        "train_ref": settings.train_ref,
        "seed": settings.seed,
        "max_epochs": settings.max_epochs,
        "cv": settings.cv,
        "metric": settings.metric,
        "cpu": settings.cpu,
        "gpu": settings.gpu,
        "import_paths": import_paths,
    }


def run_trial(config: Mapping[str, Any], data: Any, payload: Mapping[str, Any]) -> None:
    """Run one trial inside a Ray worker and report every epoch to Ray Tune."""
    for path in payload["import_paths"]:
        if path not in sys.path:
            sys.path.append(path)
    def sink(record: dict[str, Any]) -> None:
        tune.report({**record, REPORTED_KEY: ",".join(record)})

    ctx = make_context(config["params"], data, config["number"], payload, sink=sink)
    load_callable(payload["train_ref"], "objective")(ctx)


def make_context(params: Mapping[str, Any], data: Any, number: int, payload: Mapping[str, Any], sink=None) -> TrialContext:
    """Seed torch, size its thread pool to the trial's CPUs, and pick the device."""
    torch.set_num_threads(max(1, int(payload["cpu"])))
    seed = payload["seed"] + number
    seed_everything(seed)
    use_gpu = payload["gpu"] > 0 and torch.cuda.is_available()
    # Ray sets CUDA_VISIBLE_DEVICES per trial, so the first visible GPU is this trial's.
    device = torch.device("cuda") if use_gpu else torch.device("cpu")
    return TrialContext(
        params=dict(params),
        data=data,
        number=number,
        seed=seed,
        max_epochs=payload["max_epochs"],
        metric=payload["metric"],
        device=device,
        cv=payload.get("cv"),
        _sink=sink or (lambda metrics: None),
    )
