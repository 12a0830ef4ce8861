"""Optuna storages: URLs, study names and creation, connection errors, and password masking."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import optuna
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from tuner.errors import TunerError

DEFAULT_STORAGE = "sqlite:///results/tuner.db"

SQLITE_TIMEOUT_S = 60  # How long a SQLite writer waits for a lock before failing.
POOL_RECYCLE_S = 3600  # Server databases: replace pooled connections older than this, before server-side idle timeouts close them.
POSTGRES_CONNECT_TIMEOUT_S = 10  # libpq's default is to wait forever for a host that does not respond; `?connect_timeout=N` in the URL overrides this.
# SQLAlchemy 2.0 maps a bare postgresql:// to psycopg2 and 2.1 to psycopg (3); tuner installs psycopg.
POSTGRES_DRIVER = "postgresql+psycopg"
_SECRET_QUERY_KEYS = ("password", "sslpassword")  # libpq options that carry a secret in the URL's query string.
MASK = "***"

# Hints for connection errors: a regular expression on the driver's message, and the fix.
_CONNECT_HINTS = (
    (r"password authentication failed", "Check the user name and password, in the URL or in PGPASSWORD or ~/.pgpass."),
    (r"no password supplied", "Give the password in PGPASSWORD, in ~/.pgpass or in the URL."),
    (r'role ".*" does not exist', "Check the user name in the URL, or create that role on the server."),
    (r'database ".*" does not exist', "Check the database name in the URL, or create the database: createdb -O {user} {database}."),
    (r"connection refused", "Check that the server is running and listens on {host}:{port}."),
    (r"timeout expired", "The server did not respond within connect_timeout. Check the host and port, or raise ?connect_timeout=SECONDS in the URL."),
    (r"resolve host|translate host name", "Check the host name in the URL."),
)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Open an Optuna RDB storage, creating its schema when needed.

    For SQLite, the folder of the file is created. For server databases,
    connections are checked before use and recycled hourly, so that long
    runs survive server restarts and server-side timeouts.

    Raises:
        TunerError: The URL is invalid, its driver is missing, or the database
            cannot be reached. The message never contains the password.
    """
    parsed = _parse(url)
    engine_kwargs: dict[str, Any]
    if parsed.drivername.startswith("sqlite"):
        _create_sqlite_folder(parsed)
        target, engine_kwargs = url, {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    else:
        target, engine_kwargs = _server_options(parsed)
    try:
        return optuna.storages.RDBStorage(target, engine_kwargs=engine_kwargs)
    except Exception as error:  # SQLAlchemy and the drivers raise many types here.
        raise TunerError(_open_error(url, parsed, error)) from None


def existing_sqlite(url: str) -> bool:
    """Return False for a SQLite URL whose file does not exist (True for other databases and invalid URLs)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
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
    """Return the URL with its password, and any password in its query string, replaced by ***."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return _mask_text(url)
    if "@" in (parsed.host or ""):
        # An unescaped "@" in the password: SQLAlchemy reads its tail as part of the host.
        return _mask_text(url)
    secret_keys = [key for key in parsed.query if key.lower() in _SECRET_QUERY_KEYS]
    if secret_keys:
        parsed = parsed.update_query_dict({key: MASK for key in secret_keys})
    return parsed.render_as_string(hide_password=True).replace(quote(MASK, safe=""), MASK)


def _parse(url: str) -> URL:
    """Parse a storage URL, rejecting forms whose password would show in later messages."""
    invalid = f"storage: invalid database URL '{mask_url(url)}'."
    example = "Use for example sqlite:///results/tuner.db or postgresql://USER:PASSWORD@HOST:5432/DATABASE."
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise TunerError(f"{invalid} {example}") from None
    if "@" in (parsed.host or ""):
        raise TunerError(f"{invalid} It has more than one '@' before the host. Write '@' in the user name or password as %40.")
    return parsed


def _create_sqlite_folder(parsed: URL) -> None:
    if not parsed.database or parsed.database == ":memory:":
        return
    folder = Path(parsed.database).expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TunerError(f"storage: cannot create the folder '{folder}' for the SQLite file ({error.strerror}). Pick a writable path.") from None


def _server_options(parsed: URL) -> tuple[str, dict[str, Any]]:
    """Return the URL to open and the engine options for a server database."""
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_recycle": POOL_RECYCLE_S}
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername=POSTGRES_DRIVER)
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        engine_kwargs["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    # Rendering percent-encodes braces, which Optuna would read as str.format fields of its URL template.
    return parsed.render_as_string(hide_password=False), engine_kwargs


def _open_error(url: str, parsed: URL, error: Exception) -> str:
    """Return one line on why the storage did not open, with the password removed and a hint where one is known."""
    masked = mask_url(url)
    if isinstance(error, NoSuchModuleError):
        return f"storage: unknown database driver '{parsed.drivername}' in '{masked}'. Use postgresql:// or sqlite:///."
    if isinstance(error, ImportError):
        cause = error.__cause__ or error
        return f"storage: the database driver for '{parsed.drivername}' is not installed ({cause}). Install it with pip, or use postgresql:// or sqlite:///."
    reason = _driver_reason(error)
    for secret in _secrets(parsed):
        reason = reason.replace(secret, MASK)
    hint = next((text for pattern, text in _CONNECT_HINTS if re.search(pattern, reason, re.IGNORECASE)), "")
    hint = hint.format(user=parsed.username or "USER", database=parsed.database or "NAME", host=parsed.host or "localhost", port=parsed.port or 5432)
    return f"storage: cannot open '{masked}': {reason}. {hint}".rstrip()


def _driver_reason(error: Exception) -> str:
    """Return the first line of the driver's message, without libpq's repeated connection prefixes."""
    text = str(getattr(error, "orig", None) or error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    line = re.sub(r'^connection failed:\s*', "", line)
    line = re.sub(r'^connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed:\s*', "", line)
    line = re.sub(r"^(?:FATAL|ERROR):\s*", "", line)
    return line.rstrip(".") or type(error).__name__


def _secrets(parsed: URL) -> list[str]:
    """Return the URL's password and query secrets, raw and percent-encoded, longest first."""
    values = [parsed.password or ""]
    for key, value in parsed.query.items():
        if key.lower() in _SECRET_QUERY_KEYS:
            values += [value] if isinstance(value, str) else list(value)
    found = {form for value in values if value for form in (str(value), quote(str(value), safe=""))}
    return sorted(found, key=len, reverse=True)


def _mask_text(url: str) -> str:
    """Mask a URL that SQLAlchemy cannot parse: everything between the user name and the last '@', and query secrets."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        # Not a URL at all, such as "user:password@host": mask it the same way.
        scheme, rest = "", url
    if "@" in rest:
        userinfo, _, host = rest.rpartition("@")
        user = re.split(r"[:@]", userinfo, maxsplit=1)[0]
        rest = f"{user}:{MASK}@{host}"
    masked = f"{scheme}{separator}{rest}"
    return re.sub(r"([?&](?:ssl)?password=)[^&]*", rf"\g<1>{MASK}", masked, flags=re.IGNORECASE)
