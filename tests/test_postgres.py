"""tuner on a real PostgreSQL server: runs, kill -9 and resume, best, report, the dashboard, errors and hidden passwords.

The server comes from TUNER_TEST_POSTGRES_URL (`bash .ci/run postgres` starts one
and prints it); each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import optuna_dashboard
import pytest
import sqlalchemy
from optuna.trial import TrialState
from sqlalchemy.engine import URL, make_url

from conftest import get_json, wait_until_training, write_helper_space
from tuner.cli import main
from tuner.runner import run
from tuner.settings import load_settings
from tuner.storage import POSTGRES_DRIVER, mask_url, open_storage

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@pytest.fixture(scope="session")
def postgres_server() -> URL:
    """The URL of the test server's role and database; CI sets TUNER_REQUIRE_POSTGRES=1 so absence fails."""
    url = os.environ.get("TUNER_TEST_POSTGRES_URL")
    if not url:
        message = "TUNER_TEST_POSTGRES_URL is not set; `bash .ci/run postgres` starts a local server and prints it"
        if os.environ.get("TUNER_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    parsed = make_url(url)
    if not parsed.password:
        pytest.fail("TUNER_TEST_POSTGRES_URL must contain a password, so that the tests can check that it stays hidden")
    return parsed


@pytest.fixture
def postgres_url(postgres_server: URL):
    """A bare postgresql:// URL of a fresh database, dropped after the test."""
    name = f"tuner_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(postgres_server.set(drivername=POSTGRES_DRIVER), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    yield postgres_server.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        # FORCE ends connections that a killed `tuner run` left open.
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def load_study(url: str, name: str | None = None) -> optuna.Study:
    storage = open_storage(url)
    if name is None:
        names = [summary.study_name for summary in storage.get_all_studies()]
        assert len(names) == 1, names
        name = names[0]
    return optuna.load_study(study_name=name, storage=storage)


def tuner(workdir: Path, *args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tuner", *args], cwd=workdir, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def tuner_output(workdir: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = tuner(workdir, *args, env=env)
    out, err = process.communicate()
    return process.returncode, out, err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.ray
def test_run_records_trials_on_postgres(ray_local, workdir, postgres_url):
    settings = load_settings(["space=adam_medical", "n_trials=5", "max_epochs=4", "pruner.grace_period=1", "max_concurrent=1", f"storage={postgres_url}"])
    result = run(settings, report=False)

    study = load_study(postgres_url, result.study_name)
    states = [t.state for t in study.trials]
    assert len(states) == 5
    assert set(states) <= set(FINISHED)
    assert TrialState.COMPLETE in states
    for trial in study.trials:
        epochs = 4 if trial.state == TrialState.COMPLETE else trial.user_attrs["pruned_at_epoch"]
        assert sorted(trial.intermediate_values) == list(range(1, epochs + 1))
    assert study.user_attrs["space"] == "adam_medical"
    best = json.loads((workdir / "results" / result.study_name / "best.json").read_text())
    assert best["storage"] == mask_url(postgres_url)
    assert best["trial"] == study.best_trial.number


@pytest.mark.ray
def test_dashboard_app_reads_postgres_study(ray_local, workdir, postgres_url):
    settings = load_settings(["space=adam_medical", "n_trials=4", "max_epochs=3", "pruner.grace_period=1", f"storage={postgres_url}"])
    result = run(settings, report=False)
    study = load_study(postgres_url, result.study_name)
    app = optuna_dashboard.wsgi(open_storage(postgres_url))

    studies = get_json(app, "/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == [study.study_name]

    detail = get_json(app, f"/api/studies/{study._study_id}")
    assert len(detail["trials"]) == 4
    assert {t["number"]: t["state"] for t in detail["trials"]} == {t.number: t.state.name.capitalize() for t in study.trials}
    for trial in detail["trials"]:
        assert len(trial["intermediate_values"]) == len(study.trials[trial["number"]].intermediate_values)


@pytest.mark.ray
def test_kill_9_then_resume_on_postgres(workdir, postgres_url, capsys):
    write_helper_space(workdir, "slow", "slow", None, max_epochs=6, n_trials=4, pruner="none", sampler="random")
    fifo = workdir / "started"
    os.mkfifo(fifo)
    timing = {"TUNER_TEST_EPOCH_S": "0.25", "TUNER_TEST_FIFO": str(fifo)}
    process = tuner(workdir, "run", "space=slow", f"storage={postgres_url}", env=timing, start_new_session=True)
    wait_until_training(fifo, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()

    study = load_study(postgres_url)
    left_running = [t.number for t in study.trials if t.state == TrialState.RUNNING]
    assert left_running

    code, out, err = tuner_output(workdir, "run", "space=slow", "resume=true", f"storage={postgres_url}", env={"TUNER_TEST_EPOCH_S": "0.25"})
    assert code == 0, err

    trials = load_study(postgres_url).trials
    stale = [t.number for t in trials if t.user_attrs.get("fail_reason") == "stale"]
    finished = [t for t in trials if t.state in FINISHED]
    assert stale == left_running
    assert all(t.state == TrialState.FAIL for t in trials if t.number in stale)
    assert len(finished) == 4
    assert len({t.params["x"] for t in finished}) == 4
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]

    name = study.study_name
    code = main(["best", f"study={name}", f"storage={postgres_url}"])
    out, err = capsys.readouterr()
    assert code == 0, err
    record = json.loads(out)
    best = max(finished, key=lambda t: t.value if t.state == TrialState.COMPLETE else float("-inf"))
    assert record["study"] == name
    assert record["trial"] == best.number
    assert record["value"] == best.value
    assert record["storage"] == mask_url(postgres_url)

    code = main(["report", f"study={name}", f"storage={postgres_url}"])
    out, err = capsys.readouterr()
    assert code == 0, err
    page = Path(workdir, out.strip()).read_text(encoding="utf-8")
    assert name in page
    assert mask_url(postgres_url) in page


@pytest.mark.ray
def test_password_never_written_or_printed(workdir, postgres_url, postgres_server, capsys):
    password = postgres_server.password
    wrong = f"wrong-{uuid.uuid4().hex}"
    code, out, err = tuner_output(workdir, "-v", "run", "space=adam_medical", "n_trials=2", "max_epochs=2", "pruner=none", f"storage={postgres_url}")
    assert code == 0, err
    outputs = [out, err]

    name = load_study(postgres_url).study_name
    rejected = make_url(postgres_url).set(password=wrong).render_as_string(hide_password=False)
    for args, expected_code in (
        (["best", f"study={name}", f"storage={postgres_url}"], 0),
        (["report", f"study={name}", f"storage={postgres_url}"], 0),
        (["best", f"study={name}", f"storage={rejected}"], 2),
        (["run", "space=adam_medical", "resume=true", "n_trials=1", f"storage={rejected}"], 2),
        (["show", "space=adam_medical", f"storage={postgres_url}"], 0),
        (["show", "space=adam_medical", f"storage=tuner:{password}@127.0.0.1/tuner_test"], 2),
    ):
        code = main(args)
        captured = capsys.readouterr()
        assert code == expected_code, captured.err
        outputs += [captured.out, captured.err]
    code, out, err = dashboard_output(workdir, postgres_url)
    assert "Listening on" in err
    outputs += [out, err]

    printed = "\n".join(outputs)
    assert mask_url(postgres_url) in printed
    assert password not in printed
    assert wrong not in printed
    written = [path for path in workdir.rglob("*") if path.is_file()]
    assert any(path.name == "best.json" for path in written)
    assert any(path.name == "report.html" for path in written)
    assert [path for path in written if password.encode() in path.read_bytes()] == []
    study = load_study(postgres_url, name)
    assert password not in json.dumps([study.user_attrs, [t.user_attrs for t in study.trials]], default=str)


def dashboard_output(workdir: Path, url: str) -> tuple[int, str, str]:
    """Start `tuner dashboard`, fetch its study list once it accepts connections, then stop it with SIGTERM."""
    port = free_port()
    process = tuner(workdir, "dashboard", f"storage={url}", f"port={port}")
    try:
        reply = http_get(process, port, "/api/studies")
        assert reply.startswith(b"HTTP/1.0 200"), reply[:200]
    finally:
        process.send_signal(signal.SIGTERM)
    out, err = process.communicate()
    return process.returncode, out, err


def http_get(process: subprocess.Popen, port: int, path: str) -> bytes:
    """GET `path` from 127.0.0.1:port, retrying refused connections while `process` starts its server."""
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port)) as connection:
                connection.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
                return connection.makefile("rb").read()
        except ConnectionRefusedError:
            try:
                process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"tuner dashboard exited with {process.returncode}: {process.stderr.read()}")


def test_storage_reconnects_after_server_drops_connections(postgres_url):
    storage = open_storage(postgres_url)
    optuna.create_study(study_name="before-drop", storage=storage)
    admin = sqlalchemy.create_engine(make_url(postgres_url).set(drivername=POSTGRES_DRIVER))
    with admin.connect() as connection:
        ended = connection.execute(sqlalchemy.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )).scalar_one()
    admin.dispose()

    assert ended >= 1
    assert [s.study_name for s in storage.get_all_studies()] == ["before-drop"]


def test_libpq_reads_password_from_environment(workdir, postgres_url, postgres_server, capsys, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(workdir / "no-pgpass"))
    without_password = make_url(postgres_url)._replace(password=None).render_as_string(hide_password=False)
    no_study = f"error: space: no study of space 'adam_medical' in {mask_url(without_password)}."

    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    assert main(["best", "space=adam_medical", f"storage={without_password}"]) == 2
    assert capsys.readouterr().err.startswith(no_study)

    monkeypatch.delenv("PGPASSWORD")
    passfile = workdir / "pgpass"
    passfile.write_text(f"{postgres_server.host}:{postgres_server.port or 5432}:*:{postgres_server.username}:{postgres_server.password}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    assert main(["best", "space=adam_medical", f"storage={without_password}"]) == 2
    assert capsys.readouterr().err.startswith(no_study)


def test_postgres_connection_errors(workdir, postgres_url, postgres_server, capsys, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(workdir / "no-pgpass"))
    good = make_url(postgres_url)
    with socket.socket() as silent:
        # A socket that accepts TCP connections but never responds, like a hung server.
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        cases = [
            (good.set(port=free_port()), "Connection refused. Check that the server is running and listens on 127.0.0.1:{port}."),
            (good.set(password="not-{the}-password"), f'password authentication failed for user "{good.username}". Check the user name and password, in the URL or in PGPASSWORD or ~/.pgpass.'),
            (good.set(database="tuner_missing_db"), f'database "tuner_missing_db" does not exist. Check the database name in the URL, or create the database: createdb -O {good.username} tuner_missing_db.'),
            (good._replace(password=None), "fe_sendauth: no password supplied. Give the password in PGPASSWORD, in ~/.pgpass or in the URL."),
            (good.set(port=silent.getsockname()[1], query={"connect_timeout": "2"}), "connection timeout expired. The server did not respond within connect_timeout. Check the host and port, or raise ?connect_timeout=SECONDS in the URL."),
        ]
        for url, reason in cases:
            text = url.render_as_string(hide_password=False)
            code = main(["best", "study=any", f"storage={text}"])
            err = capsys.readouterr().err
            assert code == 2, err
            assert err == f"error: storage: cannot open '{mask_url(text)}': {reason.format(port=url.port)}\n"
            assert postgres_server.password not in err
            assert "not-{the}-password" not in err


@pytest.mark.parametrize("url, masked", [
    ("postgresql://tuner:s3cret@db.example:5432/tuner", "postgresql://tuner:***@db.example:5432/tuner"),
    ("postgresql://tuner:p%40ss%2Fword@127.0.0.1/tuner", "postgresql://tuner:***@127.0.0.1/tuner"),
    ("postgresql://tuner@127.0.0.1/tuner?password=s3cret&sslmode=require", "postgresql://tuner@127.0.0.1/tuner?password=***&sslmode=require"),
    ("postgresql://tuner:s3cret@x@127.0.0.1/tuner", "postgresql://tuner:***@127.0.0.1/tuner"),
    ("postgresql://tuner:s3cret@127.0.0.1:port/tuner", "postgresql://tuner:***@127.0.0.1:port/tuner"),
    ("sqlite:///results/tuner.db", "sqlite:///results/tuner.db"),
])
def test_mask_url_hides_passwords(url, masked):
    assert mask_url(url) == masked


@pytest.mark.parametrize("url, message", [
    ("postgresql://tuner:s3cret@x@127.0.0.1/tuner",
     "storage: invalid database URL 'postgresql://tuner:***@127.0.0.1/tuner'. It has more than one '@' before the host. Write '@' in the user name or password as %40."),
    ("postgresql://tuner:s3cret@127.0.0.1:port/tuner",
     "storage: invalid database URL 'postgresql://tuner:***@127.0.0.1:port/tuner'. Use for example sqlite:///results/tuner.db or postgresql://USER:PASSWORD@HOST:5432/DATABASE."),
    ("postgresql+nodriver://tuner:s3cret@127.0.0.1/tuner",
     "storage: unknown database driver 'postgresql+nodriver' in 'postgresql+nodriver://tuner:***@127.0.0.1/tuner'. Use postgresql:// or sqlite:///."),
])
def test_invalid_storage_url_rejected(workdir, capsys, url, message):
    code = main(["best", "study=any", f"storage={url}"])

    assert code == 2
    assert capsys.readouterr().err == f"error: {message}\n"
