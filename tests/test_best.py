import json

import pytest
import yaml

import tuner
from conftest import load_only_study
from tuner.cli import main
from tuner.runner import run
from tuner.settings import load_settings

pytestmark = pytest.mark.ray


@pytest.fixture
def finished_study(ray_local, workdir):
    settings = load_settings(["space=adam_medical", "n_trials=3", "max_epochs=3", "pruner=none"])
    run(settings)
    return load_only_study(settings.storage)


def best_output(capsys, *args):
    assert main(["best", *args]) == 0
    return capsys.readouterr().out


def test_best_yaml_is_stored_params(finished_study, capsys):
    out = best_output(capsys, "space=adam_medical", "format=yaml")
    assert yaml.safe_load(out) == finished_study.best_params


def test_best_json_record(finished_study, capsys):
    record = json.loads(best_output(capsys, f"study={finished_study.study_name}"))
    assert record["trial"] == finished_study.best_trial.number
    assert record["value"] == finished_study.best_value
    assert record["params"] == finished_study.best_params
    assert set(record["test_metrics"]) == {"test_auc", "test_acc", "test_loss"}


def test_best_env_lines(finished_study, capsys):
    lines = best_output(capsys, "space=adam_medical", "format=env").splitlines()
    expected = {f"TUNER_PARAM_{k.upper()}": v for k, v in finished_study.best_params.items()}
    assert {line.split("=")[0]: yaml.safe_load(line.split("=", 1)[1]) for line in lines} == expected


def test_best_overrides_rebuild_config(finished_study, capsys):
    overrides = best_output(capsys, "space=adam_medical", "format=overrides").split()
    settings = load_settings(["space=adam_medical", "n_trials=1", *overrides])
    assert settings.search_space.tuned == ()
    assert settings.search_space.config({}) == {**finished_study.best_params, "width": 64}


def test_load_best_returns_params(finished_study):
    assert tuner.load_best(space="adam_medical") == finished_study.best_params


def test_best_without_study_exits_2(workdir, capsys):
    assert main(["best", "space=adam_medical"]) == 2
    assert capsys.readouterr().err == "error: storage: the SQLite file of 'sqlite:///results/tuner.db' does not exist. Run a study first, or give storage=URL.\n"
