"""The README's worked example of a user objective runs as written."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState

from conftest import load_only_study

README = Path(__file__).resolve().parent.parent / "README.md"


def block_after(text: str, marker: str, language: str) -> str:
    """Return the first fenced block of `language` after `marker`."""
    start = text.index(marker)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    return match.group(1)


@pytest.mark.ray
def test_user_objective_example(tmp_path):
    text = README.read_text()
    (tmp_path / "my_objective.py").write_text(block_after(text, "Save this as `my_objective.py`", "python"))
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "my_mlp.yaml").write_text(block_after(text, "this as `search_spaces/my_mlp.yaml`", "yaml"))
    command = block_after(text, "then run", "bash").split()
    assert command == ["tuner", "run", "space=my_mlp"]

    done = subprocess.run([sys.executable, "-m", "tuner", *command[1:]], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    study = load_only_study(f"sqlite:///{tmp_path}/results/tuner.db")
    assert len(study.trials) == 8
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert study.user_attrs["objective"] == "my_objective:train"
    for trial in study.trials:
        assert set(trial.params) == {"lr", "width"}
        assert len(trial.intermediate_values) >= 1
    best = json.loads((tmp_path / "results" / study.study_name / "best.json").read_text())
    assert set(best["test_metrics"]) == {"test_auc"}
    assert best["params"] == study.best_params
