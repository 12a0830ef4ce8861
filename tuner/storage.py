"""Optuna storages: URLs, study names and creation, and password masking."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import optuna
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tuner.errors import TunerError

SQLITE_TIMEOUT_S = 60  # How long a SQLite writer waits for a lock before failing.


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Open an Optuna RDB storage, creating its schema when needed.

    For SQLite, the folder of the file is created. For server databases,
    connections are checked before use and recycled hourly, so that long
    runs survive server-side timeouts.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise TunerError(f"storage: invalid database URL '{mask_url(url)}'. Use for example sqlite:///results/tuner.db or postgresql://user@host/db.") from None
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise TunerError(f"storage: cannot create the folder '{folder}' for the SQLite file ({error.strerror}). Pick a writable path.") from None
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    else:
        engine_kwargs = {"pool_pre_ping": True, "pool_recycle": 3600}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except Exception as error:  # SQLAlchemy raises many driver-specific types here.
        raise TunerError(f"storage: cannot open '{mask_url(url)}': {type(error).__name__}: {str(error).splitlines()[0]}") from None


def existing_sqlite(url: str) -> bool:
    """Return False for a SQLite URL whose file does not exist (True for other databases)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return True
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return True
    return Path(parsed.database).expanduser().is_file()


def new_study_name(space: str, storage: optuna.storages.BaseStorage, now: dt.datetime | None = None) -> str:
    """Return `SPACE-YYYYMMDD-HHMMSS`, with a numeric suffix if that name is taken."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    existing = {summary.study_name for summary in storage.get_all_studies()}
    name, suffix = f"{space}-{stamp}", 2
    while name in existing:
        name, suffix = f"{space}-{stamp}-{suffix}", suffix + 1
    return name


def study_exists(storage: optuna.storages.BaseStorage, name: str) -> bool:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def newest_study(storage: optuna.storages.BaseStorage, space: str) -> str | None:
    """Return the name of the most recently created study of `space`, or None if it has none."""
    studies = [s for s in storage.get_all_studies() if s.user_attrs.get("space") == space]
    if not studies:
        return None
    return max(studies, key=lambda s: s._study_id).study_name


def mask_url(url: str) -> str:
    """Return the URL with any password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1] if "@" in url else url
