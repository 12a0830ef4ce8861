"""The function Ray Tune runs for each trial: it builds a TrialContext and calls the objective."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import torch
from ray import tune

from tuner.context import TrialContext, seed_everything
from tuner.searcher import GPU_PEAK_KEY, NODE_ID_KEY, REPORTED_KEY
from tuner.settings import Settings, load_callable

logger = logging.getLogger(__name__)

_MIB = 2**20
_warned_cpu_fallback = False


def trial_payload(settings: Settings, import_paths: list[str]) -> dict[str, Any]:
    """Return the few settings a trial needs, as plain values that Ray ships to workers.

    `import_paths` are folders added to each worker's `sys.path`, which only
    help where the workers share the driver's file system.
    """
    return {
        "train_ref": settings.train_ref,
        "seed": settings.seed,
        "max_epochs": settings.max_epochs,
        "cv": settings.cv,
        "metric": settings.metric,
        "cpu": settings.cpu,
        "gpu": settings.gpu,
        "amp": settings.amp,
        "channels_last": settings.channels_last,
        "import_paths": import_paths,
    }


def run_trial(config: Mapping[str, Any], data: Any, payload: Mapping[str, Any]) -> None:
    """Run one trial inside a Ray worker and report every epoch to Ray Tune."""
    for path in payload["import_paths"]:
        if path not in sys.path:
            sys.path.append(path)
    device = trial_device(payload["gpu"])
    ctx = make_context(config["params"], data, config["number"], payload, sink=_ray_sink(device), device=device)
    load_callable(payload["train_ref"], "objective")(ctx)


def make_context(
    params: Mapping[str, Any],
    data: Any,
    number: int,
    payload: Mapping[str, Any],
    sink: Callable[[dict[str, Any]], None] | None = None,
    device: torch.device | None = None,
) -> TrialContext:
    """Seed torch, size its thread pool to the trial's CPUs, and pick the device.

    Without `device`, a GPU request runs on this process's current GPU, or
    on the CPU with a warning when torch here has no CUDA (as when the
    driver retrains the best trial on a machine without a GPU).
    """
    torch.set_num_threads(max(1, int(payload["cpu"])))
    seed = payload["seed"] + number
    seed_everything(seed)
    return TrialContext(
        params=dict(params),
        data=data,
        number=number,
        seed=seed,
        max_epochs=payload["max_epochs"],
        metric=payload["metric"],
        device=device or _local_device(payload["gpu"]),
        cv=payload.get("cv"),
        gpu=float(payload["gpu"]),
        amp=payload.get("amp", "none"),
        channels_last=bool(payload.get("channels_last", False)),
        _sink=sink or (lambda metrics: None),
    )


def trial_device(gpu: float) -> torch.device:
    """Return the device of a trial in a Ray worker: the GPU that Ray assigned to it, or the CPU when it asked for none.

    NOTE: the GPU branch has not run on a GPU yet, because the machines of
    the tests have none.

    Raises:
        RuntimeError: The trial reserved a GPU, but torch on this node cannot use CUDA.
    """
    if gpu <= 0:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"resources.gpu={gpu:g}, but torch {torch.__version__} on this node cannot use CUDA "
            "(torch.cuda.is_available() is False). Install a CUDA build of torch on the GPU nodes."
        )
    device = torch.device("cuda", _ray_gpu_index())
    torch.cuda.set_device(device)
    torch.cuda.reset_peak_memory_stats(device)
    return device


def _ray_gpu_index() -> int:
    """Map the first GPU id that Ray assigned to this worker to a torch device index.

    Ray sets CUDA_VISIBLE_DEVICES to the ids it assigned, so the index is the
    id's position there. Without the variable, the ids are physical indices.
    Ray Train's CUDA device manager maps them the same way.
    """
    import ray

    ids = [str(gpu_id) for gpu_id in ray.get_gpu_ids()]
    if not ids:
        return torch.cuda.current_device()
    visible = [entry.strip() for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    if not visible:
        return int(ids[0])
    if ids[0] not in visible:
        raise RuntimeError(f"Ray assigned GPU {ids[0]}, but CUDA_VISIBLE_DEVICES is '{','.join(visible)}'. Do not override CUDA_VISIBLE_DEVICES on Ray nodes.")
    return visible.index(ids[0])


def _local_device(gpu: float) -> torch.device:
    global _warned_cpu_fallback

    if gpu <= 0:
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if not _warned_cpu_fallback:
        logger.warning("resources.gpu=%g, but torch here cannot use CUDA; training on the CPU instead", gpu)
        _warned_cpu_fallback = True
    return torch.device("cpu")


def _ray_sink(device: torch.device) -> Callable[[dict[str, Any]], None]:
    """Return the report hook of a Ray trial: each epoch's metrics, the node that ran it and, on a GPU, the peak memory."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()

    def sink(record: dict[str, Any]) -> None:
        extra: dict[str, Any] = {NODE_ID_KEY: node_id}
        if device.type == "cuda":
            extra[GPU_PEAK_KEY] = torch.cuda.max_memory_allocated(device) / _MIB
        tune.report({**record, REPORTED_KEY: ",".join(record), **extra})

    return sink
