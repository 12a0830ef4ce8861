"""Shared fixtures: a local Ray instance, a scratch working directory, a study reader."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import optuna
import pytest

from tuner.runner import _RAY_ENV


DATA_DIR = Path(os.environ.get("TUNER_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
# The product finds named data sets through the same variable, in this process and in Ray workers.
os.environ["TUNER_DATA_DIR"] = str(DATA_DIR)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of real data sets (TUNER_DATA_DIR); CI sets TUNER_REQUIRE_DATA=1 so absence fails."""
    if not DATA_DIR.is_dir():
        message = f"real data sets not found at {DATA_DIR}; set TUNER_DATA_DIR to their folder"
        if os.environ.get("TUNER_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return DATA_DIR


@pytest.fixture(scope="session")
def ray_local():
    """Start one local Ray instance with 2 CPUs for every test that runs trials."""
    import ray

    os.environ.update(_RAY_ENV)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in an empty working directory, so results/ and search_spaces/ are the test's own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def load_only_study(storage: str) -> optuna.Study:
    summaries = optuna.study.get_all_study_summaries(storage)
    assert len(summaries) == 1, [s.study_name for s in summaries]
    return optuna.load_study(study_name=summaries[0].study_name, storage=storage)


def wait_until_training(fifo: Path, process: subprocess.Popen) -> None:
    """Block until a trial has finished its first epoch (it writes to the FIFO), or the process exits."""
    descriptor = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        while process.poll() is None:
            readable, _, _ = select.select([descriptor], [], [], 1.0)
            if readable and os.read(descriptor, 64):
                return
        pytest.fail(f"tuner exited with {process.returncode} before training: {process.stderr.read()}")
    finally:
        os.close(descriptor)


def get_json(app, path: str):
    """Call the dashboard's WSGI app in-process and decode the JSON reply."""
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    status = []
    body = b"".join(app(environ, lambda code, headers, exc_info=None: status.append(code)))
    assert status[0].startswith("200"), status
    return json.loads(body)


# Objectives with known behaviour, written into the test's working directory
# as a user's own module would be, so that Ray workers import them the same way.
HELPER_OBJECTIVES = '''
import math
import os
import time


def steady(trial):
    """Report the value of param x at every epoch."""
    for epoch in range(1, trial.max_epochs + 1):
        trial.report(epoch, score=float(trial.params["x"]))


def flaky(trial):
    """x == 2 raises; x == 3 diverges at epoch 2; x == 5 runs out of memory; the others report x."""
    for epoch in range(1, trial.max_epochs + 1):
        if trial.params["x"] == 2:
            raise ValueError("bad x 2")
        if trial.params["x"] == 5:
            raise MemoryError("cannot allocate 80 GiB")
        value = math.nan if trial.params["x"] == 3 and epoch == 2 else float(trial.params["x"])
        trial.report(epoch, score=value)


def slow(trial):
    """Report x, taking TUNER_TEST_EPOCH_S seconds per epoch; after epoch 1, write to the TUNER_TEST_FIFO pipe."""
    delay = float(os.environ.get("TUNER_TEST_EPOCH_S", "0"))
    for epoch in range(1, trial.max_epochs + 1):
        time.sleep(delay)
        trial.report(epoch, score=float(trial.params["x"]))
        if epoch == 1:
            notify_started()


def silent(trial):
    """Train without ever calling report()."""
    return None


def always_fails(trial):
    raise RuntimeError("broken objective")


def notify_started():
    path = os.environ.get("TUNER_TEST_FIFO")
    if not path:
        return
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.write(descriptor, b"started\\n")
    os.close(descriptor)
'''


def write_helper_space(folder, name, objective, choices, **settings):
    """Write helper_objectives.py and a space over x in `choices` (a float in [0, 1] if None) into `folder`."""
    (folder / "helper_objectives.py").write_text(HELPER_OBJECTIVES)
    spaces = folder / "search_spaces"
    spaces.mkdir(exist_ok=True)
    lines = [f"objective: helper_objectives:{objective}", "metric: score"]
    lines += [f"{key}: {value}" for key, value in settings.items()]
    if choices is None:
        lines += ["params:", "  x: {type: float, low: 0.0, high: 1.0}"]
    else:
        lines += ["params:", f"  x: {{type: categorical, choices: {list(choices)}}}"]
    (spaces / f"{name}.yaml").write_text("\n".join(lines) + "\n")
