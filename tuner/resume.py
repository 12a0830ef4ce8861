"""Resume a study: find it, check it matches the space and data, reconcile stale trials."""

from __future__ import annotations

import json
import logging
import os
import socket
from typing import Any

import optuna
from optuna.trial import TrialState

from tuner.errors import TunerError
from tuner.settings import Settings
from tuner.storage import mask_url, newest_study

logger = logging.getLogger(__name__)

STALE = "stale"


def latest_study(storage: optuna.storages.BaseStorage, settings: Settings) -> str:
    """Return the name of the newest study of the settings' space in the storage."""
    name = newest_study(storage, settings.space)
    if name is None:
        raise TunerError(
            f"resume: no study of space '{settings.space}' in {mask_url(settings.storage)}. "
            "Drop resume=true to start one, or name it with study=NAME."
        )
    return name


def check_matches(study: optuna.Study, settings: Settings, data: Any) -> None:
    """Raise TunerError, one line per difference, unless the study was run with this space and data."""
    attrs = study.user_attrs
    name = study.study_name
    fix = "Start a new study (drop resume=true, or pick a new name with study=NAME) to tune the edited space."
    problems = [f"resume: study '{name}': {line}" for line in _space_differences(attrs.get("search_space", {}), settings.search_space.describe())]
    stored_data = attrs.get("data_fingerprint")
    current_data = getattr(data, "fingerprint", None)
    if stored_data != current_data:
        problems.append(f"resume: study '{name}': data fingerprint {stored_data} -> {current_data}, so the data or its split differ.")
    direction = "maximize" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "minimize"
    for key, stored, current in (
        ("metric", attrs.get("metric"), settings.metric),
        ("direction", direction, settings.direction),
        ("objective", attrs.get("objective"), settings.objective),
        ("max_epochs", attrs.get("max_epochs"), settings.max_epochs),
    ):
        if stored != current:
            problems.append(f"resume: study '{name}': {key} {stored!r} -> {current!r}.")
    if problems:
        raise TunerError([*problems, f"resume: {fix}"])


def reconcile_stale(study: optuna.Study) -> int:
    """Mark FAIL ("stale") every RUNNING or WAITING trial whose process is gone; return how many."""
    count = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        owner = trial.user_attrs.get("owner")
        if owner is not None and _owner_alive(owner):
            continue
        # Optuna has no public call to annotate a trial of another process, so the storage is used directly.
        study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", STALE)
        study._storage.set_trial_user_attr(trial._trial_id, "error", "the process running this trial ended without recording it")
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        count += 1
    if count:
        logger.warning("Study %s: %d trials left RUNNING by a process that ended are recorded as FAIL (stale)", study.study_name, count)
    return count


def owner_tag() -> str:
    """Return `host:pid:start` identifying this process, stored on the trials it runs."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def done_params(study: optuna.Study) -> list[dict[str, Any]]:
    """Return the params of the trials that count toward the budget (COMPLETE or PRUNED)."""
    return [t.params for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))]


def _owner_alive(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname():
        # NOTE: a trial owned by another host cannot be checked from here, so it counts as stale.
        # Two hosts resuming one study at the same time are therefore not supported.
        return False
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return _start_time(pid) == start


def _start_time(pid: int) -> str:
    """Return the process start time from /proc (Linux), to tell a reused pid apart; "" elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            return file.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _space_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    lines = []
    for name in sorted(set(stored) | set(current)):
        if name not in current:
            lines.append(f"params.{name}: removed from the space file (stored {_describe(stored[name])}).")
        elif name not in stored:
            lines.append(f"params.{name}: added to the space file ({_describe(current[name])}).")
        elif stored[name] != current[name]:
            lines.append(f"params.{name}: {_describe(stored[name])} -> {_describe(current[name])}.")
    return lines


def _describe(entry: dict[str, Any]) -> str:
    if "value" in entry:
        text = f"constant {entry['value']!r}"
    else:
        attributes = entry.get("attributes", {})
        text = f"{entry.get('name', '?')}({json.dumps(attributes, sort_keys=True)})"
    if "when" in entry:
        text += f" when {json.dumps(entry['when'])}"
    return text
