"""Space file + key=value overrides -> validated, frozen Settings."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from objectives import DATASETS, LOADER_KEYS, OBJECTIVES
from tuner.catalog import display_path, find_space
from tuner.errors import TunerError, did_you_mean, unknown_name
from tuner.pruners import PRUNERS, check_pruner_options
from tuner.samplers import SAMPLERS, check_sampler_options
from tuner.space import SearchSpace, parse_space
from tuner.overrides import parse_overrides
from tuner.storage import DEFAULT_STORAGE, mask_url

DIRECTIONS = ("maximize", "minimize")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}
AMP_MODES = ("bf16", "fp16", "none")  # Mixed precision: autocast to bfloat16 or float16, or float32 throughout.
CNN_OBJECTIVE = "image_classifier"  # The built-in objective that reads `amp` and `channels_last`.

# Every top-level key a space file or an override may set, with its default.
DEFAULTS: dict[str, Any] = {
    "space": None,
    "description": "",
    "objective": None,
    "evaluate": None,
    "predict": None,
    "data": {},
    "metric": None,
    "direction": "maximize",
    "n_trials": 20,
    "max_epochs": 10,
    "cv": None,
    "sampler": {"name": "tpe"},
    "pruner": {"name": "asha"},
    "seed": 0,
    "storage": DEFAULT_STORAGE,
    "study": None,
    "resume": False,
    "warm_start": None,
    "time_budget": None,
    "max_consecutive_failures": 10,
    "resources": {"cpu": 1, "gpu": 0},
    "max_concurrent": None,
    "ray": {"address": None},
    "amp": "none",
    "channels_last": False,
    "results_dir": "results",
    "params": {},
}
_NESTED_KEYS = {"resources": {"cpu", "gpu"}, "ray": {"address"}}


@dataclass(frozen=True)
class Settings:
    """Everything a run needs, checked once before Ray starts or a study exists."""

    space: str
    source: Path
    description: str
    objective: str
    train_ref: str
    evaluate_ref: str | None
    predict_ref: str | None
    data: Mapping[str, Any]
    metric: str
    direction: str
    n_trials: int
    max_epochs: int
    cv: int | None
    sampler: str
    sampler_options: Mapping[str, Any]
    pruner: str
    pruner_options: Mapping[str, Any]
    seed: int
    storage: str
    study: str | None
    resume: bool
    warm_start: str | None
    time_budget_s: float | None
    max_consecutive_failures: int | None
    cpu: float
    gpu: float
    max_concurrent: int | None
    ray_address: str | None
    amp: str
    channels_last: bool
    results_dir: Path
    search_space: SearchSpace = field(repr=False)
    resolved: Mapping[str, Any] = field(repr=False, default_factory=dict)


def load_settings(overrides: Sequence[str]) -> Settings:
    """Build Settings from `space=NAME` and the other key=value overrides.

    Raises:
        TunerError: With one line per problem found, in the file or the overrides.
    """
    pairs = parse_overrides(overrides)
    space_name = dict(pairs).get("space")
    path = find_space(space_name)
    raw = _read_yaml(path)

    problems = [f"override {key}={_show(value)}: {unknown_name('key', key.split('.')[0], DEFAULTS)}"
                for key, value in pairs if key.split(".")[0] not in DEFAULTS]
    if problems:
        raise TunerError(problems)

    config = _merge(path, raw, pairs)
    if isinstance(config.get("study"), (int, float)) and not isinstance(config["study"], bool):
        config["study"] = str(config["study"])
    config["space"] = path.stem if space_name is None or str(space_name).endswith((".yaml", ".yml")) else str(space_name)
    try:
        return _validate(path, config, explicit={key for key, _ in pairs})
    except TunerError as error:
        raise TunerError([_blame_override(line, display_path(path), overrides) for line in error.problems]) from None


def parse_duration(value: object, key: str = "time_budget") -> float | None:
    """Parse `45m`, `30s`, `2h` or a number of seconds; None means no limit."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh])\s*", str(value))
    if not match or float(match.group(1)) <= 0:
        raise TunerError(f"{key}: invalid duration {value!r}. Use a positive number with s, m or h, such as 45m, 30s or 2h.")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def load_callable(reference: str, where: str) -> Callable[..., Any]:
    """Import `package.module:function` and return the function."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise TunerError(f"{where}: must be a built-in name or 'package.module:function'; got '{reference}'.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise TunerError(f"{where}: cannot import module '{module_name}' ({error}). Check the name and that it is on PYTHONPATH.") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise TunerError(f"{where}: module '{module_name}' has no function '{attribute}'.")
    return function


def _blame_override(line: str, where: str, overrides: Sequence[str]) -> str:
    """Name the override instead of the file when the problem is in a key the command line set."""
    for token in overrides:
        key = token.split("=", 1)[0]
        for prefix in (f"{where}: {key}: ", f"{where}: {key}.", f"{where}: params.{key.removeprefix('params.')}"):
            if key != "space" and line.startswith(prefix) and (prefix.endswith(": ") or key.startswith(("params.", "data.", "sampler", "pruner"))):
                rest = line[len(f"{where}: "):]
                rest = rest[len(key) + 2:] if rest.startswith(f"{key}: ") else rest
                shown = f"storage={mask_url(token.split('=', 1)[1])}" if key == "storage" else token
                return f"override {shown}: {rest}"
    return line


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise TunerError(f"{display_path(path)}:{line}: invalid YAML ({getattr(error, 'problem', error)}). Fix the syntax.") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise TunerError(f"{display_path(path)}: must be a mapping of settings; got {type(raw).__name__}.")
    for key in ("sampler", "pruner"):
        if isinstance(raw.get(key), str):
            raw[key] = {"name": raw[key]}
    return raw


def _merge(path: Path, raw: dict[str, Any], pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    allowed = [key for key in DEFAULTS if key != "space"]
    unknown = [f"{display_path(path)}: {unknown_name('key', key, allowed)}" for key in raw if key not in allowed]
    if unknown:
        raise TunerError(unknown)
    try:
        config = OmegaConf.merge(OmegaConf.create(DEFAULTS), OmegaConf.create(raw))
        for key, value in pairs:
            OmegaConf.update(config, key, value, merge=False, force_add=True)
        return OmegaConf.to_container(config, resolve=True)
    except OmegaConfBaseException as error:
        raise TunerError(f"{display_path(path)}: {str(error).splitlines()[0]}") from None


def _validate(path: Path, config: dict[str, Any], explicit: set[str]) -> Settings:
    where = display_path(path)
    problems: list[str] = []

    def check(ok: bool, key: str, rule: str) -> None:
        if not ok:
            problems.append(f"{where}: {key}: {rule}; got {_show(_get(config, key))}.")

    for section, keys in _NESTED_KEYS.items():
        value = config[section]
        if not isinstance(value, Mapping):
            problems.append(f"{where}: {section}: must be a mapping with keys {', '.join(sorted(keys))}; got {_show(value)}.")
            continue
        problems += [f"{where}: {section}.{k}: {unknown_name(f'key in {section}', k, keys)}" for k in value if k not in keys]
    if problems:
        raise TunerError(problems)

    train_ref, evaluate_ref, metrics = _objective_refs(config, where, problems)
    predict_ref = _predict_ref(config, where, problems)
    check(isinstance(config["metric"], str) and bool(config["metric"]), "metric", "must name the metric to optimise, such as val_auc")
    if metrics and config["metric"] not in metrics and isinstance(config["metric"], str):
        problems.append(f"{where}: metric: {unknown_name('metric', config['metric'], metrics)}")
    check(config["direction"] in DIRECTIONS, "direction", "must be maximize or minimize")
    check(_is_int(config["n_trials"], 1), "n_trials", "must be an integer >= 1")
    check(_is_int(config["max_epochs"], 1), "max_epochs", "must be an integer >= 1")
    check(_is_int(config["seed"], 0), "seed", "must be an integer >= 0")
    check(config["cv"] is None or _is_int(config["cv"], 2), "cv", "must be an integer >= 2 (folds of cross-validation) or null")
    if not (isinstance(config["storage"], str) and "://" in config["storage"]):
        problems.append(f"{where}: storage: must be a database URL such as sqlite:///results/tuner.db; got {_show(mask_url(str(config['storage'])))}.")
    check(config["study"] is None or (isinstance(config["study"], str) and config["study"].strip() != ""), "study", "must be a non-empty name")
    check(_is_number(config["resources"]["cpu"]) and config["resources"]["cpu"] > 0, "resources.cpu", "must be a number > 0 (CPUs per trial)")
    check(_is_number(config["resources"]["gpu"]) and config["resources"]["gpu"] >= 0 and (config["resources"]["gpu"] <= 1 or float(config["resources"]["gpu"]).is_integer()),
          "resources.gpu", "must be >= 0: a fraction of one GPU such as 0.25, or a whole number of GPUs per trial")
    check(isinstance(config["resume"], bool), "resume", "must be true or false")
    check(config["warm_start"] is None or (isinstance(config["warm_start"], str) and config["warm_start"].strip() != ""),
          "warm_start", "must name a study in the storage, or a best.json or YAML file of params")
    if config["warm_start"] is not None and (config["sampler"] == "grid" or (isinstance(config["sampler"], Mapping) and config["sampler"].get("name") == "grid")):
        problems.append(f"{where}: warm_start: the grid sampler runs grid points only, so it cannot try a warm-start config first. Drop warm_start or use another sampler.")
    if config["resume"] is True and config["warm_start"] is not None:
        problems.append(f"{where}: warm_start: applies to a new study only, but resume=true continues an existing one. Drop warm_start or resume.")
    check(config["max_consecutive_failures"] is None or _is_int(config["max_consecutive_failures"], 1), "max_consecutive_failures", "must be an integer >= 1 or null (never stop)")
    try:
        time_budget_s = parse_duration(config["time_budget"])
    except TunerError as error:
        problems.append(f"{where}: {error.problems[0]}")
        time_budget_s = None
    check(config["max_concurrent"] is None or _is_int(config["max_concurrent"], 1), "max_concurrent", "must be an integer >= 1 or null (as many as the CPUs allow)")
    check(config["ray"]["address"] is None or isinstance(config["ray"]["address"], str), "ray.address", "must be a Ray address such as auto or HOST:6379")
    _check_precision(config, where, problems)
    check(isinstance(config["data"], Mapping), "data", "must be a mapping")
    check(isinstance(config["results_dir"], str) and config["results_dir"].strip() != "", "results_dir", "must be a folder path such as results")
    check(isinstance(config["params"], Mapping), "params", "must be a mapping of parameter names to distributions")
    _check_data(config, where, problems)

    sampler, sampler_options = _named(config, "sampler", SAMPLERS, where, problems)
    pruner, pruner_options = _named(config, "pruner", PRUNERS, where, problems)
    if sampler in SAMPLERS:
        problems += [f"{where}: {line}" for line in check_sampler_options(sampler, sampler_options)]
    if pruner in PRUNERS and _is_int(config["max_epochs"], 1):
        problems += [f"{where}: {line}" for line in check_pruner_options(pruner, pruner_options, config["max_epochs"])]

    space = SearchSpace(())
    if isinstance(config["params"], Mapping):
        space, space_problems = parse_space(config["params"], where=where, need_grid=sampler == "grid")
        problems += space_problems
    if problems:
        raise TunerError(problems)

    n_trials = config["n_trials"]
    if sampler == "grid":
        size = len(space.grid_points())
        if "n_trials" not in explicit:
            n_trials = size
        elif n_trials > size:
            raise TunerError(f"{where}: n_trials: the grid has {size} points, so at most {size} trials; got {n_trials}. Drop n_trials or lower it.")

    return Settings(
        space=config["space"],
        source=path,
        description=str(config["description"] or ""),
        objective=config["objective"],
        train_ref=train_ref,
        evaluate_ref=evaluate_ref,
        predict_ref=predict_ref,
        data=MappingProxyType(dict(config["data"])),
        metric=config["metric"],
        direction=config["direction"],
        n_trials=n_trials,
        max_epochs=config["max_epochs"],
        cv=config["cv"],
        sampler=sampler,
        sampler_options=MappingProxyType(sampler_options),
        pruner=pruner,
        pruner_options=MappingProxyType(pruner_options),
        seed=config["seed"],
        storage=config["storage"],
        study=config["study"],
        resume=config["resume"],
        warm_start=config["warm_start"],
        time_budget_s=time_budget_s,
        max_consecutive_failures=config["max_consecutive_failures"],
        cpu=float(config["resources"]["cpu"]),
        gpu=float(config["resources"]["gpu"]),
        max_concurrent=config["max_concurrent"],
        ray_address=config["ray"]["address"],
        amp=config["amp"],
        channels_last=config["channels_last"],
        results_dir=Path(config["results_dir"]),
        search_space=space,
        resolved=MappingProxyType(config),
    )


def _objective_refs(config: dict[str, Any], where: str, problems: list[str]) -> tuple[str, str | None, tuple[str, ...]]:
    name = config["objective"]
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: objective: missing. Name a built-in one ({', '.join(OBJECTIVES)}) or 'package.module:function'.")
        return "", None, ()
    if name in OBJECTIVES:
        builtin = OBJECTIVES[name]
        if config["evaluate"]:
            try:
                load_callable(config["evaluate"], f"{where}: evaluate")
            except TunerError as error:
                problems += error.problems
        _check_builtin_params(builtin, name, config, where, problems)
        return builtin.train, config["evaluate"] or builtin.evaluate, builtin.metrics
    if ":" not in name:
        problems.append(f"{where}: objective: {unknown_name('objective', name, OBJECTIVES)} Or give 'package.module:function'.")
        return "", None, ()
    try:
        load_callable(name, f"{where}: objective")
        if config["evaluate"]:
            load_callable(config["evaluate"], f"{where}: evaluate")
    except TunerError as error:
        problems += error.problems
    return name, config["evaluate"], ()


def _predict_ref(config: dict[str, Any], where: str, problems: list[str]) -> str | None:
    """Return the function that predicts with the best trial's model: `predict`, else the built-in objective's."""
    if config["predict"]:
        try:
            load_callable(config["predict"], f"{where}: predict")
        except TunerError as error:
            problems += error.problems
        return config["predict"]
    builtin = OBJECTIVES.get(config["objective"]) if isinstance(config["objective"], str) else None
    return builtin.predict if builtin else None


def _check_precision(config: dict[str, Any], where: str, problems: list[str]) -> None:
    """Check `amp` and `channels_last`, which only the CNN objective and users' own objectives read."""
    amp, channels_last, objective = config["amp"], config["channels_last"], config["objective"]
    valid = {"amp": amp in AMP_MODES, "channels_last": isinstance(channels_last, bool)}
    if not valid["amp"]:
        problems.append(f"{where}: amp: must be one of {', '.join(AMP_MODES)}; got {_show(amp)}.")
    elif amp == "fp16" and _is_number(config["resources"]["gpu"]) and config["resources"]["gpu"] == 0:
        problems.append(f"{where}: amp: fp16 needs a GPU, but resources.gpu is 0. Set resources.gpu, or use amp=bf16 on CPUs.")
    if not valid["channels_last"]:
        problems.append(f"{where}: channels_last: must be true or false; got {_show(channels_last)}.")
    if isinstance(objective, str) and objective in OBJECTIVES and objective != CNN_OBJECTIVE:
        for key, value, unset in (("amp", amp, "none"), ("channels_last", channels_last, False)):
            if valid[key] and value != unset:
                problems.append(f"{where}: {key}: applies to the CNN of {CNN_OBJECTIVE} and to your own objectives; "
                                f"the objective '{objective}' ignores it. Drop {key}.")


def _check_builtin_params(builtin, name: str, config: dict[str, Any], where: str, problems: list[str]) -> None:
    """Reject params a built-in objective never reads, which are most often typos."""
    if not isinstance(config["params"], Mapping):
        return
    for key in config["params"]:
        if key not in builtin.params:
            problems.append(
                f"{where}: params.{key}: the objective '{name}' does not read this parameter."
                f"{did_you_mean(key, builtin.params)} It reads: {', '.join(builtin.params)}."
            )


def _check_data(config: dict[str, Any], where: str, problems: list[str]) -> None:
    data = config["data"]
    if config["objective"] in OBJECTIVES and isinstance(data, Mapping) and not data:
        problems.append(f"{where}: data: missing; the objective '{config['objective']}' needs data. Set data.name (one of {', '.join(DATASETS)}) or data.path.")
        return
    if not isinstance(data, Mapping) or not data:
        return
    _check_data_keys(config, data, where, problems)
    name, loader, path = data.get("name"), data.get("loader"), data.get("path")
    if name is not None and name not in DATASETS:
        problems.append(f"{where}: data.name: {unknown_name('data set', name, DATASETS)} Or set data.path to your own file, or data.loader to 'package.module:function'.")
    if name is None and loader is None and path is None:
        problems.append(f"{where}: data: needs 'name' (one of {', '.join(DATASETS)}), 'path' (your own file) or 'loader' ('package.module:function').")
    if loader is None and name is None and path is not None and config["objective"] not in OBJECTIVES:
        problems.append(f"{where}: data.path: your own objective needs data.loader ('package.module:function') to read it, or no data section to load its own.")
    if loader is not None:
        try:
            load_callable(str(loader), f"{where}: data.loader")
        except TunerError as error:
            problems += error.problems


def _check_data_keys(config: dict[str, Any], data: Mapping[str, Any], where: str, problems: list[str]) -> None:
    """Reject data keys that the loader does not read, when the loader is a built-in one."""
    source = DATASETS.get(data.get("name"))
    builtin = OBJECTIVES.get(config["objective"])
    loader = data.get("loader")
    if loader is None and source is not None:
        loader = source.loader
    if loader is None and builtin is not None:
        loader = builtin.loader
    allowed = LOADER_KEYS.get(loader)
    if allowed is None:
        return
    allowed = set(allowed) | {"name", "path", "dir", "loader"}
    for key in data:
        if key not in allowed:
            problems.append(f"{where}: data.{key}: {unknown_name('data setting', key, allowed)}")


def _named(config: dict[str, Any], key: str, registry: Mapping[str, Any], where: str, problems: list[str]) -> tuple[str, dict[str, Any]]:
    value = config[key]
    if not isinstance(value, Mapping) or "name" not in value:
        problems.append(f"{where}: {key}: must be a name ({', '.join(registry)}) or a mapping with 'name'; got {_show(value)}.")
        return "", {}
    options = {k: v for k, v in value.items() if k != "name"}
    if value["name"] not in registry:
        problems.append(f"{where}: {key}: {unknown_name(key, value['name'], registry)}")
    return str(value["name"]), options


def _get(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
