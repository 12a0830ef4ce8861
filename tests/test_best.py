import importlib.metadata
import json
import shutil

import optuna
import pytest
import torch
import yaml

import tuner
from conftest import load_only_study
from tuner.cli import main
from tuner.runner import run
from tuner.settings import load_settings

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def study_folder(ray_local, tmp_path_factory):
    """A folder with one finished adam_medical study in results/tuner.db, shared by this module's tests."""
    folder = tmp_path_factory.mktemp("best")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        run(load_settings(["space=adam_medical", "n_trials=3", "max_epochs=3", "pruner=none"]))
    return folder


@pytest.fixture
def finished_study(study_folder, monkeypatch):
    monkeypatch.chdir(study_folder)
    return load_only_study("sqlite:///results/tuner.db")


@pytest.fixture
def warm_storage(finished_study, tmp_path):
    """A copy of the storage, so that warm-started studies never become the newest study of the shared one."""
    copy = tmp_path / "warm.db"
    shutil.copy("results/tuner.db", copy)
    return f"sqlite:///{copy}"


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


def test_load_best_returns_record(finished_study, capsys):
    best = tuner.load_best(space="adam_medical")
    assert best == json.loads(best_output(capsys, "space=adam_medical"))
    assert best["params"] == finished_study.best_params
    assert best["config"] == {**finished_study.best_params, "width": 64}


def test_best_record_provenance(finished_study, capsys):
    record = json.loads(best_output(capsys, "space=adam_medical"))
    attrs = finished_study.user_attrs
    assert record["study"] == finished_study.study_name
    assert record["storage"] == "sqlite:///results/tuner.db"
    assert record["metric"] == "val_auc"
    assert record["direction"] == "maximize"
    assert record["space_fingerprint"] == attrs["space_fingerprint"]
    assert record["data_fingerprint"] == attrs["data_fingerprint"]
    assert record["seed"] == 0
    assert record["trial_seed"] == finished_study.best_trial.number
    assert record["versions"]["torch"] == importlib.metadata.version("torch")
    assert set(record["versions"]) == {"tuner", "torch", "optuna", "ray", "numpy"}


def test_make_optimizer_from_best(finished_study):
    best = tuner.load_best(space="adam_medical")
    model = torch.nn.Linear(30, 2)
    optimizer = tuner.make_optimizer(model, best)
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.Adam)
    assert group["lr"] == finished_study.best_params["lr"]
    assert group["betas"] == (finished_study.best_params["beta1"], finished_study.best_params["beta2"])
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]


def test_make_optimizer_without_lr_raises():
    with pytest.raises(tuner.TunerError, match="make_optimizer: the config has no 'lr'; got keys beta1."):
        tuner.make_optimizer(torch.nn.Linear(2, 2), {"beta1": 0.9})


def test_best_without_complete_trial_exits_1(workdir, capsys):
    (workdir / "results").mkdir()
    optuna.create_study(study_name="empty", storage="sqlite:///results/tuner.db")
    assert main(["best", "study=empty"]) == 1
    assert capsys.readouterr().err == "error: study 'empty' has no COMPLETE trial, so it has no best params.\n"


def test_best_without_study_exits_2(workdir, capsys):
    assert main(["best", "space=adam_medical"]) == 2
    assert capsys.readouterr().err == "error: storage: the SQLite file of 'sqlite:///results/tuner.db' does not exist. Run a study first, or give storage=URL.\n"


def new_studies(storage: str, before: set[str]) -> list[optuna.Study]:
    names = [s.study_name for s in optuna.get_all_study_summaries(storage) if s.study_name not in before]
    return [optuna.load_study(study_name=name, storage=storage) for name in names]


@pytest.mark.parametrize("source", ["best.json", "yaml", "study"])
def test_warm_start_tries_known_params_first(finished_study, warm_storage, tmp_path, capsys, source):
    if source == "best.json":
        reference = f"results/{finished_study.study_name}/best.json"
    elif source == "yaml":
        reference = str(tmp_path / "best.yaml")
        with open(reference, "w") as handle:
            handle.write(best_output(capsys, f"study={finished_study.study_name}", "format=yaml"))
    else:
        reference = finished_study.study_name
    before = {s.study_name for s in optuna.get_all_study_summaries(warm_storage)}
    run(load_settings(["space=adam_medical", "n_trials=2", "max_epochs=2", "pruner=none", f"warm_start={reference}",
                       f"storage={warm_storage}", f"results_dir={tmp_path / 'results'}"]))
    [study] = new_studies(warm_storage, before)
    assert study.trials[0].params == finished_study.best_params
    assert study.trials[1].params != finished_study.best_params
    assert study.user_attrs["warm_start"] == {"source": reference, "params": finished_study.best_params}


def test_warm_start_rejects_params_outside_space(workdir, capsys):
    with open("outside.yaml", "w") as handle:
        handle.write("lr: 0.5\nbeta1: 0.9\nmomentum: 0.9\n")
    assert main(["run", "space=adam_medical", "warm_start=outside.yaml"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: warm_start: params.lr=0.5 from 'outside.yaml' is outside FloatDistribution(high=0.03, log=True, low=0.0001, step=None). Edit the file or widen the space.",
        "error: warm_start: 'outside.yaml' sets params.momentum, which the space 'adam_medical' does not tune. Tuned params: lr, beta1, beta2, batch_size, dropout, depth.",
    ]
    assert not (workdir / "results").exists()


@pytest.mark.parametrize("value, message", [
    ("missing.yaml", "error: warm_start: file 'missing.yaml' not found. Give the path of a best.json or of `tuner best format=yaml` output, or a study name."),
    ("no-such-study", "error: warm_start: 'no-such-study' is not a file, and as a study in sqlite:///results/tuner.db: study: unknown study 'no-such-study'."),
])
def test_warm_start_missing_source_exits_2(finished_study, capsys, value, message):
    assert main(["run", "space=adam_medical", f"warm_start={value}"]) == 2
    assert capsys.readouterr().err.startswith(message)


def test_warm_start_with_grid_exits_2(workdir, capsys):
    assert main(["run", "space=adam_medical", "sampler=grid", "warm_start=best.yaml"]) == 2
    assert capsys.readouterr().err == ("error: override warm_start=best.yaml: the grid sampler runs grid points only, so it cannot try "
                                       "a warm-start config first. Drop warm_start or use another sampler.\n")
