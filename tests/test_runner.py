import json

import pytest
from optuna.trial import TrialState

from conftest import load_only_study, write_helper_space
from tuner.runner import run
from tuner.settings import load_settings

pytestmark = pytest.mark.ray


def run_space(*overrides):
    settings = load_settings(list(overrides))
    return settings, run(settings)


def test_adam_medical_study_is_faithful(ray_local, workdir):
    settings, result = run_space("space=adam_medical", "n_trials=8", "max_epochs=6", "pruner.grace_period=2")
    study = load_only_study(settings.storage)
    trials = study.trials

    assert len(trials) == 8
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    for trial in trials:
        epochs = 6 if trial.state == TrialState.COMPLETE else trial.user_attrs["pruned_at_epoch"]
        assert sorted(trial.intermediate_values) == list(range(1, epochs + 1))
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        assert trial.value == trial.intermediate_values[6]
    assert sum(result.counts.values()) == 8
    assert result.study_name == study.study_name


def test_trials_run_concurrently(ray_local, workdir):
    settings, _ = run_space("space=adam_medical", "n_trials=4", "max_epochs=10", "pruner=none")
    trials = load_only_study(settings.storage).trials
    overlapping = [
        (a.number, b.number) for a in trials for b in trials
        if a.number < b.number and a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete
    ]
    assert overlapping


def test_best_json_and_test_metrics(ray_local, workdir):
    settings, result = run_space("space=adam_medical", "n_trials=3", "max_epochs=5", "pruner=none", "seed=3")
    study = load_only_study(settings.storage)
    best = json.loads(result.best_path.read_text())

    assert result.best_path.resolve() == workdir / "results" / study.study_name / "best.json"
    assert best["study"] == study.study_name
    assert best["trial"] == study.best_trial.number
    assert best["params"] == study.best_params
    assert best["value"] == study.best_value
    assert best["seed"] == 3
    assert best["storage"] == "sqlite:///results/tuner.db"
    assert best["config"]["width"] == 64
    assert set(best["test_metrics"]) == {"test_auc", "test_acc", "test_loss"}
    assert 0.5 < best["test_metrics"]["test_auc"] <= 1.0
    # Retraining in the driver reproduces the trial's model exactly.
    assert best["refit_value"] == best["value"]


def test_pruned_trials_are_pruned_with_epochs(ray_local, workdir):
    write_helper_space(workdir, "steady", "steady", [8, 7, 6, 5, 4, 3], max_epochs=4, sampler="grid",
                       pruner="{name: asha, grace_period: 1, reduction_factor: 2}", max_concurrent=1)
    settings, result = run_space("space=steady")
    trials = load_only_study(settings.storage).trials

    assert sorted(t.params["x"] for t in trials) == [3, 4, 5, 6, 7, 8]
    assert trials[0].state == TrialState.COMPLETE
    assert sorted(trials[0].intermediate_values) == [1, 2, 3, 4]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert len(pruned) == result.counts["PRUNED"] >= 1
    for trial in pruned:
        assert trial.user_attrs["pruned_at_epoch"] < 4
        assert sorted(trial.intermediate_values) == list(range(1, trial.user_attrs["pruned_at_epoch"] + 1))
        assert trial.value == trial.params["x"]


def test_failed_and_diverged_trials_do_not_stop_study(ray_local, workdir):
    write_helper_space(workdir, "flaky", "flaky", [1, 2, 3, 4, 5], max_epochs=3, sampler="grid", pruner="none")
    settings, result = run_space("space=flaky")
    by_x = {t.params["x"]: t for t in load_only_study(settings.storage).trials}

    assert by_x[2].state == TrialState.FAIL
    assert by_x[2].user_attrs["fail_reason"] == "exception"
    assert by_x[2].user_attrs["error"] == "ValueError: bad x 2"
    assert "bad x 2" in by_x[2].user_attrs["traceback"]
    assert by_x[3].state == TrialState.FAIL
    assert by_x[3].user_attrs["fail_reason"] == "diverged"
    assert by_x[3].user_attrs["error"] == "TrialDiverged: score is nan at epoch 2"
    assert sorted(by_x[3].intermediate_values) == [1]
    assert by_x[5].state == TrialState.FAIL
    assert by_x[5].user_attrs["fail_reason"] == "out of memory"
    assert by_x[1].state == by_x[4].state == TrialState.COMPLETE
    assert result.counts == {"COMPLETE": 2, "PRUNED": 0, "FAIL": 3}
    assert result.best.number == by_x[4].number
    assert result.best.note == "no test split in the data"


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_same_seed_same_params(ray_local, workdir, sampler):
    common = ["space=adam_medical", "n_trials=5", "max_epochs=2", "max_concurrent=1", f"sampler={sampler}", "pruner=none"]
    sequences = []
    for seed, storage in ((5, "a"), (5, "b"), (6, "c")):
        settings, _ = run_space(*common, f"seed={seed}", f"storage=sqlite:///{storage}.db")
        sequences.append([t.params for t in load_only_study(settings.storage).trials])
    assert sequences[0] == sequences[1]
    assert sequences[0] != sequences[2]


def test_objective_without_reports_fails_trial(ray_local, workdir):
    write_helper_space(workdir, "silent", "silent", [1, 2], max_epochs=2, sampler="grid", pruner="none")
    settings, result = run_space("space=silent")
    trials = load_only_study(settings.storage).trials

    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    assert {t.user_attrs["fail_reason"] for t in trials} == {"no report"}
    assert trials[0].user_attrs["error"] == "the objective reported no 'score'"
    assert result.best is None


def test_script_ships_its_own_folder(workdir):
    """A script that calls run() finds the objective module beside it, from any working directory."""
    import subprocess
    import sys

    project = workdir / "project"
    project.mkdir()
    write_helper_space(project, "steady", "steady", [1, 2], max_epochs=2, n_trials=2, pruner="none")
    (project / "tune.py").write_text(
        "import sys\n"
        "from tuner.runner import run\n"
        "from tuner.settings import load_settings\n"
        "result = run(load_settings([sys.argv[1], 'storage=sqlite:///elsewhere.db']))\n"
        "print(result.counts['COMPLETE'])\n"
    )
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()

    done = subprocess.run([sys.executable, str(project / "tune.py"), f"space={project / 'search_spaces' / 'steady.yaml'}"],
                          cwd=elsewhere, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "2"
