import os

import pytest
from optuna.trial import TrialState

from conftest import DATA_DIR, load_only_study
from objectives import DATASETS
from tuner.cli import main
from tuner.catalog import available_spaces
from tuner.runner import run
from tuner.samplers import create_sampler, effective_options, sampler_options
from tuner.settings import load_settings

pytestmark = pytest.mark.ray

SMALL = ["max_epochs=2", "pruner=none"]


def run_study(*overrides):
    settings = load_settings(list(overrides))
    run(settings)
    return load_only_study(settings.storage)


@pytest.mark.parametrize("sampler", ["random", "tpe", "gp", "cmaes", "qmc"])
def test_each_sampler_records_itself(ray_local, workdir, sampler):
    study = run_study("space=adam_medical", "n_trials=4", f"sampler={sampler}", "seed=11", *SMALL)
    assert len(study.trials) == 4
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    recorded = study.user_attrs["sampler"]
    assert recorded["name"] == sampler
    assert recorded["seed"] == 11
    assert recorded == {"name": sampler, "seed": 11, **effective_options(sampler, {})}


def skip_without_data(space):
    """Skip a space whose data file is not in TUNER_DATA_DIR (CI requires the folder, so there it fails)."""
    settings = load_settings([f"space={space}"])
    source = DATASETS.get(settings.data.get("name"))
    if source is not None and source.file is not None and not (DATA_DIR / source.file).exists():
        if os.environ.get("TUNER_REQUIRE_DATA") == "1":
            pytest.fail(f"{source.file} not found in {DATA_DIR}")
        pytest.skip(f"{source.file} not found in {DATA_DIR}; set TUNER_DATA_DIR to the data folder")


@pytest.mark.parametrize("space", sorted(available_spaces()))
def test_every_shipped_space_runs(ray_local, workdir, space):
    skip_without_data(space)
    study = run_study(f"space={space}", "n_trials=3", *SMALL)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    assert study.user_attrs["space"] == space


@pytest.mark.parametrize("sampler, n_trials", [("tpe", 12), ("random", 12), ("grid", 24)])
def test_conditional_params_absent_when_inactive(ray_local, workdir, sampler, n_trials):
    trials = [] if sampler == "grid" else [f"n_trials={n_trials}"]
    study = run_study("space=optimizer_medical", f"sampler={sampler}", "seed=2", *trials, *SMALL)
    assert len(study.trials) == n_trials
    optimizers = set()
    for trial in study.trials:
        params = trial.params
        optimizers.add(params["optimizer"])
        assert ("beta1" in params) == (params["optimizer"] in ("adam", "adamw"))
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        assert ("nesterov" in params) == (params["optimizer"] == "sgd")
        assert ("weight_decay" in params) == (params["optimizer"] == "adamw")
    assert optimizers == {"adam", "adamw", "sgd"}


def test_grid_parallel_runs_each_point_once(ray_local, workdir):
    overrides = [
        "space=adam_medical", "sampler=grid", "max_concurrent=2", *SMALL,
        "params.lr={type: float, low: 0.0001, high: 0.1, log: true, grid: [0.001, 0.01]}",
        "params.batch_size.choices=[16, 32, 64]", "params.depth.high=2",
        "params.beta1=0.9", "params.beta2=0.999", "params.dropout=0.1",
    ]
    settings = load_settings(overrides)
    assert settings.n_trials == 12
    run(settings)
    trials = load_only_study(settings.storage).trials

    seen = [tuple(sorted(t.params.items())) for t in trials]
    expected = {tuple(sorted(p.items())) for p in settings.search_space.grid_points()}
    assert len(trials) == 12
    assert len(set(seen)) == 12
    assert set(seen) == expected


def test_sampler_options_exclude_callables():
    assert "gamma" not in sampler_options("tpe")
    assert "n_startup_trials" in sampler_options("tpe")
    assert sampler_options("grid") == []
    assert create_sampler("tpe", {"n_startup_trials": 3}, seed=1)._n_startup_trials == 3


@pytest.mark.parametrize("space", sorted(available_spaces()))
def test_show_every_shipped_space(space, capsys):
    assert main(["show", f"space={space}"]) == 0
    out = capsys.readouterr().out
    assert f"space: {space}" in out
    assert "# active params:" in out


@pytest.mark.parametrize("pruner", ["asha", "hyperband", "median", "none"])
def test_each_pruner_records_states(ray_local, workdir, pruner):
    study = run_study("space=adam_medical", "n_trials=6", "max_epochs=4", f"pruner={pruner}", "max_concurrent=1")
    assert len(study.trials) == 6
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert study.user_attrs["pruner"]["name"] == pruner
    for trial in study.trials:
        epochs = 4 if trial.state == TrialState.COMPLETE else trial.user_attrs["pruned_at_epoch"]
        assert sorted(trial.intermediate_values) == list(range(1, epochs + 1))
