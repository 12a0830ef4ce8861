"""The best trial of a stored study, in formats other tools read: JSON, YAML, env, overrides."""

from __future__ import annotations

import json
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from tuner.errors import TunerError, unknown_name
from tuner.settings import DEFAULT_STORAGE
from tuner.storage import existing_sqlite, mask_url, newest_study, open_storage

FORMATS = ("json", "yaml", "env", "overrides")
ENV_PREFIX = "TUNER_PARAM_"


def load_best(study: str | None = None, space: str | None = None, storage: str = DEFAULT_STORAGE) -> dict[str, Any]:
    """Return the best params of a study, as stored (dotted names for nested params).

    Args:
        study: The study name. Without it, the newest study of `space` is used.
        space: The search space whose newest study to read.
        storage: The storage URL, by default the one `tuner run` writes.

    Example:
        >>> params = load_best(space="adam_medical")  # doctest: +SKIP
    """
    return best_record(study=study, space=space, storage=storage)["params"]


def best_record(study: str | None = None, space: str | None = None, storage: str = DEFAULT_STORAGE) -> dict[str, Any]:
    """Return the best trial of a stored study with its provenance, as plain Python types."""
    if not existing_sqlite(storage):
        raise TunerError(f"storage: the SQLite file of '{mask_url(storage)}' does not exist. Run a study first, or give storage=URL.")
    backend = open_storage(storage)
    name = study or _newest_study(backend, space, storage)
    try:
        loaded = optuna.load_study(study_name=name, storage=backend)
    except KeyError:
        names = [s.study_name for s in backend.get_all_studies()]
        raise TunerError(f"study: {unknown_name('study', name, names)}") from None
    if not loaded.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise TunerError(f"study '{name}' has no COMPLETE trial yet, so it has no best params.")
    best = loaded.best_trial
    return {
        "study": name,
        "storage": mask_url(storage),
        "space": loaded.user_attrs.get("space"),
        "trial": best.number,
        "metric": loaded.user_attrs.get("metric"),
        "value": best.value,
        "params": dict(best.params),
        "test_metrics": loaded.user_attrs.get("best_test_metrics"),
    }


def format_best(record: dict[str, Any], fmt: str) -> str:
    """Render a best record: the whole record as JSON, or the params as YAML, env lines or overrides."""
    if fmt not in FORMATS:
        raise TunerError(f"format: {unknown_name('format', fmt, FORMATS)}")
    params = record["params"]
    if fmt == "json":
        return json.dumps(record, indent=2)
    if fmt == "yaml":
        return yaml.safe_dump(params, sort_keys=False).rstrip()
    if fmt == "env":
        return "\n".join(f"{ENV_PREFIX}{name.replace('.', '__').upper()}={_literal(value)}" for name, value in params.items())
    return " ".join(f"params.{name}={_literal(value)}" for name, value in params.items())


def _newest_study(backend: optuna.storages.BaseStorage, space: str | None, storage: str) -> str:
    if space is None:
        raise TunerError("missing 'study' or 'space'. Name the study with study=NAME, or space=NAME for its newest study.")
    name = newest_study(backend, space)
    if name is None:
        raise TunerError(f"space: no study of space '{space}' in {mask_url(storage)}. Run one with tuner run space={space}.")
    return name


def _literal(value: Any) -> str:
    """Write a value so that YAML reads it back as the same value (floats keep every digit)."""
    if isinstance(value, str):
        return yaml.safe_dump(value, default_style=None).strip().removesuffix("...").strip()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
