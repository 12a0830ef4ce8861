"""Search spaces: parse and check the `params` section, sample it, expand grids."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tuner.errors import did_you_mean, unknown_name

TYPES = ("float", "int", "categorical")
_KEYS = {
    "float": {"type", "low", "high", "log", "step", "grid", "grid_points", "when"},
    "int": {"type", "low", "high", "log", "step", "when"},
    "categorical": {"type", "choices", "when"},
}
_CHOICE_TYPES = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Condition:
    """The parent categorical parameter and the values that activate a child."""

    parent: str
    values: tuple[Any, ...]

    def holds(self, params: Mapping[str, Any]) -> bool:
        return self.parent in params and params[self.parent] in self.values


@dataclass(frozen=True)
class Param:
    """One entry of a search space: a distribution to sample, or a constant."""

    name: str
    distribution: BaseDistribution | None = None
    value: Any = None
    condition: Condition | None = None
    grid: tuple[Any, ...] | None = None

    @property
    def is_constant(self) -> bool:
        return self.distribution is None


@dataclass(frozen=True)
class SearchSpace:
    """Ordered parameters of a search space; parents come before their children."""

    params: tuple[Param, ...]

    @property
    def tuned(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if not p.is_constant)

    def distributions(self) -> dict[str, BaseDistribution]:
        return {p.name: p.distribution for p in self.tuned}

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest every active parameter on `trial`; return the flat params."""
        params: dict[str, Any] = {}
        for param in self.tuned:
            if param.condition is not None and not param.condition.holds(params):
                continue
            params[param.name] = _suggest(trial, param.name, param.distribution)
        return params

    def config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return the nested config an objective receives: params plus active constants."""
        flat = dict(params)
        for param in self.params:
            if param.is_constant and (param.condition is None or param.condition.holds(flat)):
                flat[param.name] = param.value
        return unflatten(flat)

    def active_sets(self) -> dict[str, list[str]]:
        """Map each choice of a parent parameter to the tuned params active under it.

        The key "always" lists the params without a condition.
        """
        sets: dict[str, list[str]] = {"always": [p.name for p in self.tuned if p.condition is None]}
        for parent in self.tuned:
            children = [p for p in self.tuned if p.condition is not None and p.condition.parent == parent.name]
            if not children:
                continue
            for choice in parent.distribution.choices:
                active = [p.name for p in children if choice in p.condition.values]
                sets[f"{parent.name}={choice}"] = active
        return sets

    def grid_points(self) -> list[dict[str, Any]]:
        """Expand the grid: every distinct combination of active parameters.

        Conditional parameters are expanded only under the parent values that
        activate them, so no two points differ in inactive parameters alone.
        """
        points: list[dict[str, Any]] = [{}]
        for param in self.tuned:
            expanded = []
            for point in points:
                if param.condition is not None and not param.condition.holds(point):
                    expanded.append(point)
                    continue
                expanded.extend({**point, param.name: value} for value in param.grid or ())
            points = expanded
        return points

    def fingerprint(self) -> str:
        """Return a short hash of the distributions and conditions."""
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """Return a JSON-ready description, stored with the study."""
        described = {}
        for param in self.params:
            entry: dict[str, Any]
            if param.is_constant:
                entry = {"value": param.value}
            else:
                entry = optuna.distributions.distribution_to_json(param.distribution)
                entry = json.loads(entry)
            if param.condition is not None:
                entry["when"] = {param.condition.parent: list(param.condition.values)}
            described[param.name] = entry
        return described


def parse_space(raw: Mapping[str, Any], *, where: str, need_grid: bool = False) -> tuple[SearchSpace, list[str]]:
    """Parse the `params` mapping of a space file.

    Args:
        raw: The `params` mapping, nested keys allowed.
        where: Prefix for messages, such as the file name.
        need_grid: Whether every tuned parameter needs a finite set of values.

    Returns:
        The search space and the list of problems found (empty when valid).
    """
    problems: list[str] = []
    params = [_parse_param(name, spec, where, need_grid, problems) for name, spec in _flatten_specs(raw)]
    params = [p for p in params if p is not None]
    ordered = _order_by_condition(params, where, problems)
    return SearchSpace(tuple(ordered)), problems


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Turn {"a": {"b": 1}} into {"a.b": 1}."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Turn {"a.b": 1} into {"a": {"b": 1}}."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


# Keys that make a mapping a distribution (or a constant) rather than a group of nested params.
_SPEC_KEYS = {"type", "value", "low", "high", "log", "step", "choices", "grid", "grid_points", "when"}


def _flatten_specs(raw: Mapping[str, Any], prefix: str = ""):
    for key, spec in raw.items():
        name = f"{prefix}{key}"
        if isinstance(spec, Mapping) and not _SPEC_KEYS & set(spec) and not _looks_like_typo(spec):
            yield from _flatten_specs(spec, prefix=f"{name}.")
        else:
            yield name, spec


def _looks_like_typo(spec: Mapping[str, Any]) -> bool:
    """Return True for a mapping of scalars with a key close to 'type': a misspelt distribution, not a group."""
    return any(did_you_mean(key, ["type"]) for key in spec) and not any(isinstance(v, Mapping) for v in spec.values())


def _parse_param(name: str, spec: Any, where: str, need_grid: bool, problems: list[str]) -> Param | None:
    at = f"{where}: params.{name}"
    if not isinstance(spec, Mapping):
        return Param(name, value=spec)
    if "type" not in spec and "value" in spec:
        return Param(name, value=spec["value"], condition=_parse_condition(spec, at, problems))
    if "type" not in spec:
        typos = [key for key in spec if key not in _SPEC_KEYS and did_you_mean(key, ["type"])]
        hint = f" '{typos[0]}' is not a key; did you mean 'type'?" if typos else ""
        problems.append(f"{at}: missing 'type'.{hint} Add 'type: float', 'int' or 'categorical', or 'value:' for a constant.")
        return None

    kind = spec["type"]
    if kind not in TYPES:
        problems.append(f"{at}.type: {unknown_name('type', kind, TYPES)}")
        return None
    before = len(problems)
    for key in spec:
        if key not in _KEYS[kind]:
            problems.append(f"{at}: {unknown_name(f'key for a {kind} parameter', key, _KEYS[kind])}")
    condition = _parse_condition(spec, at, problems)
    if kind == "categorical":
        distribution, grid = _categorical(spec, at, problems)
    else:
        distribution, grid = _numeric(kind, spec, at, need_grid, problems)
    if len(problems) > before or distribution is None:
        return None
    return Param(name, distribution=distribution, condition=condition, grid=grid)


def _parse_condition(spec: Mapping[str, Any], at: str, problems: list[str]) -> Condition | None:
    when = spec.get("when")
    if when is None:
        return None
    if not isinstance(when, Mapping) or len(when) != 1:
        problems.append(f"{at}.when: must map one categorical parameter to its values, such as 'when: {{optimizer: [adam, adamw]}}'; got {when!r}.")
        return None
    (parent, values), = when.items()
    values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
    return Condition(str(parent), values)


def _categorical(spec: Mapping[str, Any], at: str, problems: list[str]):
    choices = spec.get("choices")
    if not isinstance(choices, (list, tuple)) or not choices:
        problems.append(f"{at}.choices: must be a non-empty list; got {choices!r}. Use for example 'choices: [32, 64, 128]'.")
        return None, None
    bad = [c for c in choices if not isinstance(c, _CHOICE_TYPES)]
    if bad:
        problems.append(f"{at}.choices: each choice must be null, bool, int, float or str; got {bad[0]!r}. Use a constant parameter for lists and mappings.")
        return None, None
    if len(set(map(repr, choices))) != len(choices):
        problems.append(f"{at}.choices: contains duplicates; got {list(choices)!r}. List each choice once.")
        return None, None
    return CategoricalDistribution(tuple(choices)), tuple(choices)


def _numeric(kind: str, spec: Mapping[str, Any], at: str, need_grid: bool, problems: list[str]):
    number = float if kind == "float" else int
    low, high = spec.get("low"), spec.get("high")
    log, step = spec.get("log", False), spec.get("step")
    for key, value in (("low", low), ("high", high)):
        if not _is_number(value, kind):
            problems.append(f"{at}.{key}: must be {'a number' if kind == 'float' else 'an integer'}; got {value!r}.")
    if not isinstance(log, bool):
        problems.append(f"{at}.log: must be true or false; got {log!r}.")
    if step is not None and not (_is_number(step, kind) and step > 0):
        problems.append(f"{at}.step: must be a positive {'number' if kind == 'float' else 'integer'}; got {step!r}.")
    if len(problems) and problems[-1].startswith(at):
        return None, None

    low, high = number(low), number(high)
    if low >= high:
        problems.append(f"{at}: 'low' must be < 'high'; got low={low!r}, high={high!r}. Swap them or widen the range.")
        return None, None
    if log and kind == "float" and low <= 0:
        problems.append(f"{at}.low: must be > 0 when 'log' is true; got {low!r}. Use a positive bound such as 1.0e-5.")
        return None, None
    if log and kind == "int" and low < 1:
        problems.append(f"{at}.low: must be >= 1 when 'log' is true; got {low!r}. Use 1 or more.")
        return None, None
    if log and step is not None:
        problems.append(f"{at}: 'step' cannot be combined with 'log: true'; got step={step!r}. Remove one of them.")
        return None, None
    if step is not None and not _divides(low, high, step):
        nearest = low + round((high - low) / step) * step
        nearest = number(round(nearest, 12)) if nearest > low else number(low + step)
        problems.append(f"{at}.step: {step!r} does not divide the range {low!r}..{high!r}. Set 'high' to {nearest!r} or pick a step that divides the range.")
        return None, None

    if kind == "float":
        distribution = FloatDistribution(low, high, log=log, step=step)
    else:
        distribution = IntDistribution(low, high, log=log, step=step or 1)
    grid = _numeric_grid(kind, spec, distribution, at, need_grid, problems)
    return distribution, grid


def _numeric_grid(kind, spec, distribution, at, need_grid, problems) -> tuple[Any, ...] | None:
    if "grid" in spec:
        values = spec["grid"]
        if not isinstance(values, (list, tuple)) or not values:
            problems.append(f"{at}.grid: must be a non-empty list of values; got {values!r}.")
            return None
        outside = [v for v in values if not _is_number(v, kind) or not distribution._contains(v)]
        if outside:
            problems.append(f"{at}.grid: {outside[0]!r} is outside {distribution.low!r}..{distribution.high!r} or not a valid {kind}. Keep grid values inside the range.")
            return None
        return tuple(values)
    if "grid_points" in spec:
        count = spec["grid_points"]
        if not (isinstance(count, int) and not isinstance(count, bool) and count >= 2):
            problems.append(f"{at}.grid_points: must be an integer >= 2; got {count!r}.")
            return None
        spaced = np.geomspace if distribution.log else np.linspace
        return tuple(float(v) for v in spaced(distribution.low, distribution.high, count))
    if kind == "int":
        return tuple(range(distribution.low, distribution.high + 1, distribution.step))
    if distribution.step is not None:
        count = int(round((distribution.high - distribution.low) / distribution.step)) + 1
        return tuple(round(distribution.low + i * distribution.step, 12) for i in range(count))
    if need_grid:
        problems.append(f"{at}: the grid sampler needs a finite set of values for a float; add 'grid: [...]', 'grid_points: N' or 'step'.")
    return None


def _order_by_condition(params: list[Param], where: str, problems: list[str]) -> list[Param]:
    by_name = {p.name: p for p in params}
    for param in params:
        condition = param.condition
        if condition is None:
            continue
        parent = by_name.get(condition.parent)
        at = f"{where}: params.{param.name}.when"
        if parent is None or not isinstance(parent.distribution, CategoricalDistribution):
            categorical = [p.name for p in params if isinstance(p.distribution, CategoricalDistribution)]
            problems.append(f"{at}: {unknown_name('categorical parameter', condition.parent, categorical)}")
            continue
        missing = [v for v in condition.values if v not in parent.distribution.choices]
        if missing:
            problems.append(f"{at}: {missing[0]!r} is not a choice of '{parent.name}'; choices are {list(parent.distribution.choices)!r}.")
    # A stable topological order: each parent before the parameters it activates.
    ordered: list[Param] = []
    placed: set[str] = set()
    pending = list(params)
    while pending:
        ready = [p for p in pending if p.condition is None or p.condition.parent in placed or p.condition.parent not in by_name]
        if not ready:
            problems.append(f"{where}: params: conditions form a cycle among {', '.join(p.name for p in pending)}.")
            return ordered + pending
        for param in ready:
            ordered.append(param)
            placed.add(param.name)
        pending = [p for p in pending if p.name not in placed]
    return ordered


def _suggest(trial: optuna.Trial, name: str, distribution: BaseDistribution) -> Any:
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high, step=distribution.step, log=distribution.log)
    return trial.suggest_float(name, distribution.low, distribution.high, step=distribution.step, log=distribution.log)


def _is_number(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int)
    return isinstance(value, (int, float)) and math.isfinite(value)


def _divides(low: float, high: float, step: float) -> bool:
    ratio = (high - low) / step
    return abs(ratio - round(ratio)) < 1e-9
