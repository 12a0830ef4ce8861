import datetime as dt
import re

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from browser import find_chromium, render, script_sources
from conftest import load_only_study, write_helper_space
from tuner.cli import main
from tuner.diagnostics import summarize
from tuner.report import write_study_report
from tuner.runner import run
from tuner.settings import load_settings

MAX_REPORT_BYTES = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def medical_run(tmp_path_factory, ray_local):
    """One short adam_medical run, shared by the tests that read its report."""
    folder = tmp_path_factory.mktemp("medical")
    storage = f"sqlite:///{folder / 'tuner.db'}"
    settings = load_settings(["space=adam_medical", "n_trials=6", "max_epochs=4", "pruner.grace_period=2",
                              f"storage={storage}", f"results_dir={folder / 'results'}"])
    result = run(settings)
    return settings, result, load_only_study(storage)


@pytest.mark.ray
def test_run_writes_study_report(medical_run):
    settings, result, study = medical_run
    page = result.report_path.read_text(encoding="utf-8")
    assert result.report_path == settings.results_dir / study.study_name / "report.html"
    assert f"Study {study.study_name}" in page
    for section in ("Optimization history", "Learning curves", "Parameter importance", "Parallel coordinates",
                    "Slices", "Timeline", "Failures and pruning", "Best trial on the validation and test splits"):
        assert f"<h2>{section}</h2>" in page
    assert "ROC curve, validation split" in page
    assert "ROC curve, test split" in page
    assert "Confusion matrix, test split" in page


@pytest.mark.ray
def test_report_has_no_network_scripts(medical_run):
    page = medical_run[1].report_path.read_text(encoding="utf-8")
    assert script_sources(page) == []
    # plotly.js itself contains map-tile URLs as defaults of unused features; no script is loaded from a CDN.
    assert "cdn.plot.ly/plotly-" not in page
    assert medical_run[1].report_path.stat().st_size < MAX_REPORT_BYTES


@pytest.mark.ray
def test_report_command_rebuilds_report(medical_run, tmp_path, capsys):
    settings, result, study = medical_run
    out = tmp_path / "again.html"
    assert main(["report", f"study={study.study_name}", f"storage={settings.storage}", f"out={out}"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert re.findall(r'id="figure-\d+"', out.read_text()) == re.findall(r'id="figure-\d+"', result.report_path.read_text())


@pytest.mark.ray
def test_study_report_in_browser(medical_run, tmp_path):
    chromium = find_chromium()
    page_in_browser = render(chromium, medical_run[1].report_path, tmp_path, "study-report")
    assert page_in_browser.errors == []
    assert page_in_browser.figures == len(re.findall(r'id="figure-\d+"', medical_run[1].report_path.read_text()))
    assert page_in_browser.figures >= 9
    assert page_in_browser.rendered == page_in_browser.figures
    assert page_in_browser.screenshot.stat().st_size > 20_000


@pytest.mark.ray
def test_report_of_failed_study_says_why(ray_local, workdir):
    write_helper_space(workdir, "broken", "always_fails", [1, 2, 3], max_epochs=2, n_trials=3, max_consecutive_failures="null")
    result = run(load_settings(["space=broken"]))
    page = result.report_path.read_text(encoding="utf-8")
    assert "No COMPLETE trial yet, so there is no history of values to plot." in page
    assert "Parameter importance is not shown: it needs at least 2 COMPLETE trials, and the study has 0." in page
    assert "3 trials failed." in page
    assert "RuntimeError: broken objective" in page
    assert "No predictions of the best trial are stored" in page


def test_report_cli_unknown_study_exits_2(workdir, capsys):
    (workdir / "results").mkdir()
    optuna.create_study(study_name="present", storage="sqlite:///results/tuner.db")
    assert main(["report", "study=absent"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: study: unknown study 'absent'.")
    assert len(err.splitlines()) == 1
    assert not (workdir / "results" / "absent").exists()


def synthetic_study(n_trials: int, max_epochs: int = 30) -> optuna.Study:
    """A study of adam_medical's params with COMPLETE, PRUNED and FAIL trials and per-epoch values."""
    study = optuna.create_study(direction="maximize", study_name=f"synthetic-{n_trials}")
    study.set_user_attr("metric", "val_auc")
    study.set_user_attr("max_epochs", max_epochs)
    distributions = {
        "lr": FloatDistribution(1e-4, 3e-2, log=True), "beta1": FloatDistribution(0.8, 0.99),
        "batch_size": CategoricalDistribution([16, 32, 64, 128]), "depth": IntDistribution(1, 4),
    }
    sampler = optuna.samplers.RandomSampler(seed=0)
    for number in range(n_trials):
        params = {name: sampler.sample_independent(study, None, name, dist) for name, dist in distributions.items()}
        state = TrialState.COMPLETE
        if number % 3 == 1:
            state = TrialState.PRUNED
        if number % 10 == 9:
            state = TrialState.FAIL
        epochs = max_epochs if state == TrialState.COMPLETE else 4
        curve = {epoch: 0.9 + 0.09 * params["beta1"] * (1 - 1 / (epoch + 1)) for epoch in range(1, epochs + 1)}
        study.add_trial(create_trial(
            state=state, params=params, distributions=distributions,
            value=curve[epochs] if state == TrialState.COMPLETE else None,
            intermediate_values=curve if state != TrialState.FAIL else {},
            user_attrs={"fail_reason": "exception", "error": "ValueError: bad"} if state == TrialState.FAIL else {},
        ))
    return study


def test_report_of_500_trials_is_small(tmp_path):
    study = synthetic_study(500)
    path = write_study_report(study, tmp_path / "report.html", "sqlite:///x.db")
    page = path.read_text(encoding="utf-8")
    assert path.stat().st_size < MAX_REPORT_BYTES
    assert "500: 300 complete, 150 pruned, 50 failed, 0 running" in page
    assert "50 trials failed." in page


def test_summarize_classification_counts():
    summary = summarize({
        "kind": "classification", "classes": ["normal", "pneumonia"],
        "labels": [0, 0, 1, 1, 1],
        "probabilities": [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9]],
    })
    assert summary["confusion"] == [[1, 1], [1, 2]]
    assert summary["rows"] == 5
    assert [curve["class"] for curve in summary["roc"]] == ["pneumonia"]
    assert summary["roc"][0]["auc"] == pytest.approx(5 / 6)
    assert summary["roc"][0]["fpr"][0] == 0.0
    assert summary["roc"][0]["tpr"][-1] == 1.0


def test_summarize_forecast_thins_long_splits():
    hours = [dt.datetime(2020, 1, 1) + dt.timedelta(hours=h) for h in range(5000)]
    summary = summarize({"kind": "forecast", "time": np.array(hours, dtype="datetime64[s]"),
                         "actual": np.arange(5000.0), "predicted": np.arange(5000.0) + 1})
    assert len(summary["whole"]["time"]) == 1000
    assert summary["whole"]["time"][0] == "2020-01-01T00:00:00"
    assert summary["whole"]["actual"][-1] == 4999.0
    assert len(summary["last"]["time"]) == 336
    assert summary["last"]["predicted"][-1] == 5000.0


def test_summarize_rejects_unknown_kind():
    with pytest.raises(ValueError, match="predictions 'kind' must be 'classification' or 'forecast'; got 'ranking'"):
        summarize({"kind": "ranking"})
