"""Ray clusters for trials: the address to join, the code shipped to the nodes, and how many trials fit on them.

tuner.runner starts Ray. This module only checks addresses and resources, and builds the job's runtime_env.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tuner.errors import TunerError
from tuner.settings import Settings

logger = logging.getLogger(__name__)

RAY_ADDRESS_ENV = "RAY_ADDRESS"  # Ray's own variable; `ray job submit` sets it for the command it runs.
RAY_CLIENT_SCHEME = "ray://"
RAY_CONNECT_TIMEOUT_S = 5  # Time to wait for a TCP connection to a Ray head before giving up.
BUILTIN_PACKAGES = ("tuner", "objectives")  # Installed on every node with tuner, so never shipped.
_FIT_SLACK = 1e-9  # Lets 1 / 0.1 GPUs count as 10 trials despite rounding.


def ray_address(settings: Settings) -> str | None:
    """Return the Ray cluster to join: `ray.address`, else $RAY_ADDRESS, else None for a private local instance."""
    return settings.ray_address or os.environ.get(RAY_ADDRESS_ENV) or None


def address_source(settings: Settings) -> str:
    """Return where the address came from, for error messages."""
    return "ray.address" if settings.ray_address else RAY_ADDRESS_ENV


def check_address(address: str, source: str) -> None:
    """Reject Ray Client addresses and unreachable heads, before Ray starts.

    Raises:
        TunerError: The address is a ray:// one, or nothing accepts a TCP connection at HOST:PORT.
    """
    if address.startswith(RAY_CLIENT_SCHEME):
        raise TunerError(
            f"{source}: '{address}' is a Ray Client address, which tuner cannot use: under Ray Client, Ray Tune runs its "
            "driver on the head node, away from the study and the searcher that tuner keeps in this process. Give the "
            "head's GCS address instead, such as HOST:6379, or run tuner on a node of the cluster with ray.address=auto."
        )
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        raise TunerError(f"{source}: cannot reach '{address}' ({error}). Check that the Ray head is up and the port is right, or drop {source} to run locally.") from None


def check_local_resources(settings: Settings) -> None:
    """Reject per-trial resources that this machine cannot give, before a local Ray instance starts.

    Raises:
        TunerError: resources.cpu exceeds the CPUs here, or resources.gpu the GPUs that torch detects.
    """
    cpus = os.cpu_count() or 1
    if settings.cpu > cpus:
        raise TunerError(f"resources.cpu: {settings.cpu:g} CPUs per trial requested, but this machine has {cpus}. Lower resources.cpu.")
    if settings.gpu > 0:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus < settings.gpu:
            raise TunerError(f"resources.gpu: {settings.gpu:g} GPU per trial requested, but this machine has {gpus} GPUs. Set resources.gpu=0 or run on a machine or cluster with GPUs.")


def runtime_env(settings: Settings) -> dict[str, Any]:
    """Return the runtime_env of a job on a cluster: the objective's module, when it lives in the working directory.

    Ray uploads that file or package folder once and puts it on the import
    path of every worker, so the nodes need no copy of the driver's files.
    """
    path = local_module_path(settings.train_ref)
    if path is None:
        return {}
    logger.info("Shipping %s to the Ray nodes for the objective %s", path, settings.train_ref)
    return {"py_modules": [str(path)]}


def local_module_path(reference: str, folder: Path | None = None) -> Path | None:
    """Return the file or package folder of the top-level module of `package.module:function`, if it lives in `folder`.

    `folder` defaults to the working directory. Returns None for tuner's own
    packages, for installed packages (in a site-packages folder) and for
    modules elsewhere, which every node must then have installed.
    """
    top = reference.partition(":")[0].split(".")[0]
    if not top or top in BUILTIN_PACKAGES:
        return None
    spec = importlib.util.find_spec(top)
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if locations:
        path = Path(locations[0])
    elif spec.origin and spec.origin.endswith(".py"):
        path = Path(spec.origin)
    else:
        return None
    path = path.resolve()
    inside = path.is_relative_to((folder or Path.cwd()).resolve())
    installed = {"site-packages", "dist-packages"} & set(path.parts)
    return path if inside and not installed else None


def trials_per_node(resources: Mapping[str, float], cpu: float, gpu: float) -> int:
    """Return how many trials of `cpu` CPUs and `gpu` GPUs fit on a node with `resources` at once.

    A fraction of a GPU must fit within one GPU, as Ray places it, so a node
    with 2 GPUs takes 4 trials of 0.4 GPU, not 5.
    """
    fit = _cpu_fit(resources, cpu)
    return fit if gpu <= 0 else min(fit, _gpu_fit(resources, gpu))


def concurrency(settings: Settings, nodes: Sequence[Mapping[str, float]], where: str) -> int:
    """Return how many trials run at once: `max_concurrent`, else as many as fit on the nodes, at most n_trials.

    NOTE: only the nodes alive now count, so the nodes that an autoscaling
    cluster would add on demand are not counted.

    Raises:
        TunerError: No node has the resources for one trial, so the run would wait forever. One line per missing resource.
    """
    fit = sum(trials_per_node(resources, settings.cpu, settings.gpu) for resources in nodes)
    if fit == 0:
        raise TunerError(_shortfall(settings, nodes, where))
    logger.debug("Ray nodes: %s; %d trials fit at a time", list(nodes), fit)
    return max(1, min(settings.max_concurrent or fit, settings.n_trials))


def _shortfall(settings: Settings, nodes: Sequence[Mapping[str, float]], where: str) -> list[str]:
    """Name the per-trial resources that no node of `where` can give."""
    problems = []
    if settings.gpu > 0 and not any(_gpu_fit(node, settings.gpu) for node in nodes):
        most = max((node.get("GPU", 0.0) for node in nodes), default=0.0)
        if most == 0:
            problems.append(f"resources.gpu: {settings.gpu:g} GPU per trial requested, but {where} has no GPUs. Set resources.gpu=0, or run on a cluster with GPUs.")
        else:
            problems.append(f"resources.gpu: {settings.gpu:g} GPUs per trial requested, but no node of {where} has more than {_count(most, 'GPU')}. Lower resources.gpu.")
    if not any(_cpu_fit(node, settings.cpu) for node in nodes):
        most = max((node.get("CPU", 0.0) for node in nodes), default=0.0)
        problems.append(f"resources.cpu: {settings.cpu:g} CPUs per trial requested, but no node of {where} has more than {_count(most, 'CPU')}. Lower resources.cpu.")
    return problems


def _count(number: float, noun: str) -> str:
    return f"{number:g} {noun}" if number == 1 else f"{number:g} {noun}s"


def _cpu_fit(resources: Mapping[str, float], cpu: float) -> int:
    return math.floor(resources.get("CPU", 0.0) / cpu + _FIT_SLACK)


def _gpu_fit(resources: Mapping[str, float], gpu: float) -> int:
    gpus = resources.get("GPU", 0.0)
    if gpu < 1:
        return math.floor(gpus + _FIT_SLACK) * math.floor(1 / gpu + _FIT_SLACK)
    return math.floor(gpus / gpu + _FIT_SLACK)
