import io
import json
from wsgiref.util import setup_testing_defaults

import optuna_dashboard
import pytest

from conftest import load_only_study
from tuner.runner import run
from tuner.settings import load_settings

pytestmark = pytest.mark.ray


def get_json(app, path):
    """Call the dashboard's WSGI app in-process and decode the JSON reply."""
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    status = []
    body = b"".join(app(environ, lambda code, headers, exc_info=None: status.append(code)))
    assert status[0].startswith("200"), status
    return json.loads(body)


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
