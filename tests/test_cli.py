import json
import os
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from conftest import load_only_study


def tuner(*args, cwd):
    """Run `python -m tuner ARGS` in `cwd`; return the completed process."""
    return subprocess.run([sys.executable, "-m", "tuner", *args], cwd=cwd, capture_output=True, text=True, timeout=None)


@pytest.mark.parametrize("args, expected", [
    (["run", "space=nope"], "error: unknown space 'nope'. Available: adam_credit, adam_energy, adam_medical"),
    (["run", "space=adam_medical", "n_trails=5"], "error: override n_trails=5: unknown key 'n_trails'. Did you mean 'n_trials'? Allowed: amp, channels_last, cv, data,"),
    (["run", "space=adam_medical", "params.lr.low=-1"], "error: override params.lr.low=-1: must be > 0 when 'log' is true; got -1.0."),
    (["run", "space=adam_medical", "n_trials"], "error: invalid argument 'n_trials': expected key=value"),
])
def test_bad_input_one_line_exit_2(tmp_path, args, expected):
    done = tuner(*args, cwd=tmp_path)

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(expected)
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.ray
def test_run_defaults_end_to_end(tmp_path):
    """The main job with its shipped defaults, through the command line."""
    done = tuner("run", "space=adam_medical", cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    storage = f"sqlite:///{tmp_path}/results/tuner.db"
    study = load_only_study(storage)
    states = [t.state for t in study.trials]
    assert len(study.trials) == 24
    assert set(states) <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert study.best_value >= 0.98

    best = json.loads((tmp_path / "results" / study.study_name / "best.json").read_text())
    assert best["params"] == study.best_params
    assert best["test_metrics"]["test_auc"] >= 0.95
    assert f"Study:    {study.study_name}" in done.stdout
    assert f"Dashboard: optuna-dashboard sqlite:///{tmp_path}/results/tuner.db" in done.stdout
    assert "Test:     test_auc = " in done.stdout
    assert f"Trial {study.best_trial.number} finished with val_auc=" in done.stderr


@pytest.mark.ray
def test_two_runs_make_two_studies(tmp_path):
    for _ in range(2):
        done = tuner("run", "space=adam_medical", "n_trials=2", "max_epochs=2", "pruner=none", "study=fixed-name" if _ == 0 else "seed=1", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{tmp_path}/results/tuner.db"))
    assert len(names) == 2
    assert names[1] == "fixed-name"

    again = tuner("run", "space=adam_medical", "n_trials=2", "study=fixed-name", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip() == "error: study: 'fixed-name' already exists in sqlite:///results/tuner.db. Pick a new name with study=NAME, or add resume=true to continue it."


def test_spaces_lists_builtin(tmp_path):
    done = tuner("spaces", cwd=tmp_path)
    assert done.returncode == 0
    rows = {line.split()[0]: line.split()[1:3] for line in done.stdout.splitlines()}
    assert rows["adam_medical"] == ["tabular_classifier", "val_auc"]
    assert rows["adam_energy"] == ["forecaster", "val_mape"]


def test_show_prints_resolved_settings(tmp_path):
    done = tuner("show", "space=adam_medical", "n_trials=7", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "n_trials: 7" in done.stdout
    assert "#   lr: FloatDistribution(high=0.03, log=True, low=0.0001, step=None)" in done.stdout


def test_console_script_installed():
    bin_dir = os.path.dirname(sys.executable)
    done = subprocess.run([os.path.join(bin_dir, "tuner"), "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "run" in done.stdout
