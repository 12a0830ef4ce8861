import socketserver
import subprocess
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna_dashboard
import pytest

from browser import find_chromium

from conftest import get_json, load_only_study
from tuner.runner import run
from tuner.settings import load_settings

pytestmark = pytest.mark.ray


def test_dashboard_reads_study_and_trials(ray_local, workdir):
    settings = load_settings(["space=adam_medical", "n_trials=4", "max_epochs=4", "pruner.grace_period=2"])
    run(settings)
    study = load_only_study(settings.storage)
    app = optuna_dashboard.wsgi(settings.storage)

    studies = get_json(app, "/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == [study.study_name]

    detail = get_json(app, f"/api/studies/{study._study_id}")
    assert len(detail["trials"]) == 4
    states = {t["number"]: t["state"] for t in detail["trials"]}
    assert states == {t.number: t.state.name.capitalize() for t in study.trials}
    for trial in detail["trials"]:
        assert len(trial["intermediate_values"]) == len(study.trials[trial["number"]].intermediate_values)


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=15000", "--window-size=1280,900",
]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def chromium():
    return find_chromium()


def test_dashboard_page_shows_trials(ray_local, workdir, chromium):
    settings = load_settings(["space=adam_medical", "n_trials=5", "max_epochs=4", "pruner.grace_period=1", "max_concurrent=1"])
    run(settings)
    study = load_only_study(settings.storage)
    # The server binds its loopback port on creation, so the browser can connect at once.
    server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(settings.storage), server_class=_ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/dashboard/studies/{study._study_id}/trials"
    browser = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={workdir / 'chromium'}"]
    try:
        page = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True).stdout
        subprocess.run([*browser, f"--screenshot={workdir / 'dashboard.png'}", url], capture_output=True)
    finally:
        server.shutdown()

    assert study.study_name in page
    assert "5 Trials" in page
    for trial in study.trials:
        assert f"Trial {trial.number}" in page
    states = {t.state.name.capitalize() for t in study.trials}
    for state in states:
        assert state in page
    assert (workdir / "dashboard.png").stat().st_size > 10_000
