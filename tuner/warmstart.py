"""Warm start: the known params that a new study tries first, from a stored study or a file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tuner.errors import RunFailed, TunerError
from tuner.settings import Settings
from tuner.space import flatten
from tuner.storage import mask_url

_FILE_SUFFIXES = (".json", ".yaml", ".yml")


def warm_start_params(settings: Settings) -> dict[str, Any]:
    """Return the flat params named by `settings.warm_start`, checked against the search space.

    The source is a file (a best.json, the JSON of `tuner best`, or the YAML
    of `tuner best format=yaml`) or the name of a study in the storage, whose
    best params are used. Tuned params the source lacks are left to the sampler.

    Raises:
        TunerError: The source is missing or unreadable, or a param is unknown or outside its distribution.
    """
    source = str(settings.warm_start)
    path = Path(source).expanduser()
    if path.is_file() or source.endswith(_FILE_SUFFIXES):
        params = _read_file(path)
    else:
        params = _read_study(source, settings.storage)
    return _check(params, settings, source)


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TunerError(f"warm_start: file '{path}' not found. Give the path of a best.json or of `tuner best format=yaml` output, or a study name.")
    try:
        text = path.read_text(encoding="utf-8")
        loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
        raise TunerError(f"warm_start: cannot read '{path}': {type(error).__name__}: {str(error).splitlines()[0]}. Give a JSON or YAML file of params.") from None
    if isinstance(loaded, Mapping) and isinstance(loaded.get("params"), Mapping):
        loaded = loaded["params"]
    if not isinstance(loaded, Mapping) or not loaded:
        raise TunerError(f"warm_start: '{path}' contains no mapping of params; got {type(loaded).__name__}. Give a best.json or `tuner best format=yaml` output.")
    return flatten(loaded)


def _read_study(name: str, storage: str) -> dict[str, Any]:
    from tuner.best import best_record

    try:
        return flatten(best_record(study=name, storage=storage)["params"])
    except TunerError as error:
        raise TunerError(f"warm_start: '{name}' is not a file, and as a study in {mask_url(storage)}: {error.problems[0]}") from None
    except RunFailed as error:
        raise TunerError(f"warm_start: {error}. Pick a study with a COMPLETE trial.") from None


def _check(params: Mapping[str, Any], settings: Settings, source: str) -> dict[str, Any]:
    tuned = {param.name: param for param in settings.search_space.tuned}
    problems = []
    for name, value in params.items():
        param = tuned.get(name)
        if param is None:
            problems.append(f"warm_start: '{source}' sets params.{name}, which the space '{settings.space}' does not tune. "
                            f"Tuned params: {', '.join(tuned) or '(none)'}.")
            continue
        distribution = param.distribution
        try:
            inside = distribution._contains(distribution.to_internal_repr(value))
        except (ValueError, TypeError):
            inside = False
        if not inside:
            problems.append(f"warm_start: params.{name}={value!r} from '{source}' is outside {distribution}. Edit the file or widen the space.")
    if problems:
        raise TunerError(problems)
    return dict(params)
