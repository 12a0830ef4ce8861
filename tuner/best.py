"""The best trial of a stored study, in formats other tools read: JSON, YAML, env, overrides."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import optuna
import yaml

from tuner.errors import RunFailed, TunerError, unknown_name

from tuner.space import flatten, unflatten
from tuner.storage import DEFAULT_STORAGE, existing_sqlite, mask_url, newest_study, open_storage

FORMATS = ("json", "yaml", "env", "overrides")
ENV_PREFIX = "TUNER_PARAM_"


def load_best(study: str | None = None, space: str | None = None, storage: str = DEFAULT_STORAGE) -> dict[str, Any]:
    """Return the best trial of a stored study with its provenance, as `tuner best` prints it.

    `record["params"]` contains the tuned params (nested keys restored) and
    `record["config"]` the params plus the space's constants, as the objective received them.

    Args:
        study: The study name. Without it, the newest study of `space` is used.
        space: The search space whose newest study to read.
        storage: The storage URL, by default the one `tuner run` writes.

    Raises:
        TunerError: The storage, study or space does not exist.
        RunFailed: The study has no COMPLETE trial.

    Example:
        >>> best = load_best(space="adam_medical")  # doctest: +SKIP
    """
    return best_record(study=study, space=space, storage=storage)


def load_named_study(study: str | None, space: str | None, storage: str) -> optuna.Study:
    """Load a study by name, or the newest study of a space, with one-line errors for what is missing."""
    if not existing_sqlite(storage):
        raise TunerError(f"storage: the SQLite file of '{mask_url(storage)}' does not exist. Run a study first, or give storage=URL.")
    backend = open_storage(storage)
    name = study or _newest_study(backend, space, storage)
    try:
        return optuna.load_study(study_name=name, storage=backend)
    except KeyError:
        names = [s.study_name for s in backend.get_all_studies()]
        raise TunerError(f"study: {unknown_name('study', name, names)}") from None


def best_record(study: str | None = None, space: str | None = None, storage: str = DEFAULT_STORAGE) -> dict[str, Any]:
    """Return the best trial of a stored study with its provenance, as plain Python types."""
    loaded = load_named_study(study, space, storage)
    try:
        # RDBStorage finds the best trial in SQL, without loading every trial.
        best = loaded.best_trial
    except ValueError:
        raise RunFailed(f"study '{loaded.study_name}' has no COMPLETE trial, so it has no best params.") from None
    attrs = loaded.user_attrs
    seed = attrs.get("seed")
    return {
        "study": loaded.study_name,
        "storage": mask_url(storage),
        "space": attrs.get("space"),
        "objective": attrs.get("objective"),
        "trial": best.number,
        "metric": attrs.get("metric"),
        "direction": loaded.direction.name.lower(),
        "value": best.value,
        "params": unflatten(best.params),
        "config": unflatten(with_constants(best.params, attrs.get("search_space") or {})),
        "val_metrics": best.user_attrs.get("last_metrics"),
        # The test metrics belong to the trial that was best when the run ended.
        "test_metrics": attrs.get("best_test_metrics") if attrs.get("best_trial", best.number) == best.number else None,
        "space_fingerprint": attrs.get("space_fingerprint"),
        "data_fingerprint": attrs.get("data_fingerprint"),
        "seed": seed,
        "trial_seed": seed + best.number if isinstance(seed, int) else None,
        "max_epochs": attrs.get("max_epochs"),
        "versions": attrs.get("versions"),
    }


def with_constants(params: Mapping[str, Any], described: Mapping[str, Any]) -> dict[str, Any]:
    """Add the constants of a stored search-space description (SearchSpace.describe) whose condition holds."""
    flat = dict(params)
    for name, entry in described.items():
        if not isinstance(entry, Mapping) or "value" not in entry or name in flat:
            continue
        condition = entry.get("when")
        if condition is None or all(flat.get(parent) in values for parent, values in condition.items()):
            flat[name] = entry["value"]
    return flat


def format_best(record: dict[str, Any], fmt: str) -> str:
    """Render a best record: the whole record as JSON, or the params as YAML, env lines or overrides."""
    if fmt not in FORMATS:
        raise TunerError(f"format: {unknown_name('format', fmt, FORMATS)}")
    if fmt == "json":
        return json.dumps(record, indent=2)
    if fmt == "yaml":
        return yaml.safe_dump(record["params"], sort_keys=False).rstrip()
    flat = flatten(record["params"])
    if fmt == "env":
        return "\n".join(f"{ENV_PREFIX}{name.replace('.', '__').upper()}={_literal(value)}" for name, value in flat.items())
    return " ".join(f"params.{name}={_literal(value)}" for name, value in flat.items())


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
