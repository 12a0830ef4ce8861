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
_CHOICES = {"qmc_type": ("sobol", "halton", "lhs"), "restart_strategy": ("ipop", "bipop")}


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
            continue
        expected = _expected_type(name, key)
        if key in _CHOICES and value not in _CHOICES[key]:
            problems.append(f"sampler.{key}: must be one of {', '.join(_CHOICES[key])}; got {value!r}.")
        elif expected is bool and not isinstance(value, bool):
            problems.append(f"sampler.{key}: must be true or false; got {value!r}.")
        elif expected is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            problems.append(f"sampler.{key}: must be an integer >= 0; got {value!r}.")
        elif expected is float and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            problems.append(f"sampler.{key}: must be a number >= 0; got {value!r}.")
        elif not isinstance(value, _SCALAR):
            problems.append(f"sampler.{key}: must be a single value; got {value!r}.")
    return problems


def effective_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Return every scalar setting of the sampler as it runs: the given ones over the defaults."""
    if name == "grid":
        return {}
    signature = inspect.signature(SAMPLERS[name])
    defaults = {key: signature.parameters[key].default for key in sampler_options(name)}
    return {**{k: v for k, v in defaults.items() if isinstance(v, _SCALAR)}, **options}


def _expected_type(name: str, key: str) -> type | None:
    """Return bool, int or float from the setting's default value or annotation, or None."""
    parameter = inspect.signature(SAMPLERS[name]).parameters[key]
    for kind in (bool, int, float):
        if type(parameter.default) is kind or str(parameter.annotation).split(" ")[0] == kind.__name__:
            return kind
    return None


def create_sampler(name: str, options: Mapping[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """Build the named Optuna sampler, seeded."""
    return SAMPLERS[name](seed=seed, **options)
