"""Sampler names and settings -> Optuna samplers."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import optuna

# Grid search is driven by the searcher from the expanded grid (see
# SearchSpace.grid_points), because Optuna's GridSampler takes the full
# Cartesian product and cannot skip the inactive branches of conditional
# parameters. The random sampler below it is never asked for a value.
SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "grid": optuna.samplers.RandomSampler,
    "random": optuna.samplers.RandomSampler,
    "tpe": optuna.samplers.TPESampler,
    "gp": optuna.samplers.GPSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "qmc": optuna.samplers.QMCSampler,
}
_SCALAR = (bool, int, float, str, type(None))


def sampler_options(name: str) -> list[str]:
    """Return the settings a sampler accepts from a space file (scalar ones only)."""
    if name == "grid":
        return []
    signature = inspect.signature(SAMPLERS[name])
    skip = {"seed", "search_space", "independent_sampler", "constraints_func", "gamma", "weights", "x0", "source_trials"}
    return sorted(p for p in signature.parameters if p not in skip)


def check_sampler_options(name: str, options: Mapping[str, Any]) -> list[str]:
    """Return one problem line per invalid option (empty when valid)."""
    allowed = sampler_options(name)
    problems = []
    for key, value in options.items():
        if key not in allowed:
            listed = ", ".join(allowed) or "none"
            problems.append(f"sampler.{key}: unknown setting for sampler '{name}'. Allowed: {listed}.")
        elif not isinstance(value, _SCALAR):
            problems.append(f"sampler.{key}: must be a single value; got {value!r}.")
    return problems


def create_sampler(name: str, options: Mapping[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """Build the named Optuna sampler, seeded."""
    return SAMPLERS[name](seed=seed, **options)
