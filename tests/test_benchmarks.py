"""Smoke runs of the benchmark scripts with tiny budgets, so that they keep working."""

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import study_scale  # noqa: E402  (a script in benchmarks/, importable once that folder is on sys.path)
import time_to_target  # noqa: E402


def run_script(name, *args):
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_throughput_smoke(tmp_path, data_dir):
    out = tmp_path / "throughput.json"
    done = run_script("throughput.py", "--repeats", 1, "--limit", 256, "--data-dir", data_dir, "--out", out)
    rows = json.loads(out.read_text())["rows"]
    assert [row["objective"] for row in rows] == ["tabular_classifier", "image_classifier", "credit_classifier", "forecaster"]
    for row in rows:
        assert row["rows"] == 256
        assert set(row["samples_per_s"]) == {"tuner", "plain", "dataloader"}
        assert all(speed > 0 for speed in row["samples_per_s"].values())
        assert row["tuner_vs_plain"] == pytest.approx(row["samples_per_s"]["tuner"] / row["samples_per_s"]["plain"])
    assert "vs plain" in done.stdout


def test_time_to_target_smoke(tmp_path, data_dir):
    out = tmp_path / "time_to_target.json"
    run_script("time_to_target.py", "--seeds", 1, "--n-trials", 1, "--max-epochs", 1, "--image-limit", 200,
               "--targets", 0.0, 1.01, "--data-dir", data_dir, "--out", out)
    record = json.loads(out.read_text())
    runs = record["runs"]
    assert sorted(run["side"] for run in runs) == ["optuna", "raytune", "tuner"]
    for run in runs:
        assert run["trials"] == 1
        assert run["epochs_trained"] == 1
        assert 0 < run["time_to_target_s"]["0.0"] <= run["wall_s"]
        assert run["time_to_target_s"]["1.01"] is None
        assert 0 <= run["best"] <= 1
    summary = record["summary"]
    assert summary["tuner"]["targets"]["0.0"]["reached"] == 1
    assert summary["tuner"]["targets"]["1.01"]["reached"] == 0
    assert summary["optuna"]["targets"]["0.0"]["tuner_speedup"] > 0
    assert summary["raytune"]["targets"]["1.01"]["tuner_speedup"] is None
    assert record["machine"]["cpus"] >= 1


def test_first_reached_takes_earliest_hit():
    events = [(5.0, 0, 1, 0.91), (3.0, 1, 1, 0.95), (7.0, 0, 2, 0.97)]
    assert time_to_target.first_reached(events, 0.9) == 3.0
    assert time_to_target.first_reached(events, 0.96) == 7.0
    assert time_to_target.first_reached(events, 0.99) is None


def test_target_median_counts_misses_as_slowest():
    assert time_to_target._target_summary([10.0, None, 20.0])["median_s"] == 20.0
    assert time_to_target._target_summary([10.0, None, None])["median_s"] is None
    assert time_to_target._target_summary([10.0, None, None])["reached"] == 1


def test_useful_compute_smoke(tmp_path, data_dir):
    out = tmp_path / "useful_compute.json"
    run_script("useful_compute.py", "--space", "adam_medical", "--n-trials", 2, "--max-epochs", 2, "--data-dir", data_dir, "--out", out)
    run = json.loads(out.read_text())["runs"][0]
    assert run["trials"] == 2
    assert run["timed_trials"] == 2
    assert run["workers"] == min(os.cpu_count(), 2)
    assert run["useful_s"] > 0
    assert 0 < run["run_share"] <= run["search_share"] <= run["steady_share"] <= 1


def test_trial_overhead_smoke(tmp_path):
    out = tmp_path / "trial_overhead.json"
    # The plain Ray Tune side differs from raytune_optuna only by its default searcher; leaving it out saves a Ray start.
    sides = {"tuner", "optuna_memory", "optuna_sqlite", "raytune_optuna"}
    run_script("trial_overhead.py", "--sides", *sorted(sides), "--repeats", 1, "--small", 1, "--large", 2, "--warm-up", 0, "--out", out)
    record = json.loads(out.read_text())
    assert set(record["summary"]) == sides
    assert {run["side"] for run in record["runs"]} == sides
    for run in record["runs"]:
        assert set(run["wall_s"]) == {"1", "2"}
        assert run["amortized_ms"] > 0
    assert record["summary"]["tuner"]["tuner_ratio"] == pytest.approx(1.0)


def test_study_scale_smoke(tmp_path):
    out = tmp_path / "study_scale.json"
    run_script("study_scale.py", "--sizes", 30, "--repeats", 1, "--ask-tell", 2, "--out", out)
    row = json.loads(out.read_text())["rows"][0]
    assert row["trials"] == 30
    assert row["report_status"] == "ok"
    assert row["report_s"] > 0
    assert row["best_cli_s"] > 0
    assert row["ask_tell_ms"] > 0


def test_synthetic_study_matches_tuner_records(tmp_path):
    storage = f"sqlite:///{tmp_path}/study.db"
    settings = study_scale.build_study(storage, "scale", 60, seed=0)
    study = optuna.load_study(study_name="scale", storage=storage)
    trials = study.get_trials()
    assert len(trials) == 60
    assert {trial.state.name for trial in trials} == {"COMPLETE", "PRUNED", "FAIL"}
    assert study.user_attrs["space"] == "adam_medical"
    assert study.user_attrs["metric"] == "val_auc"
    for trial in trials:
        assert set(trial.params) == set(settings.search_space.distributions())
        if trial.state.name == "COMPLETE":
            assert len(trial.intermediate_values) == settings.max_epochs
            assert trial.value == trial.intermediate_values[settings.max_epochs]
        if trial.state.name == "PRUNED":
            assert trial.user_attrs["pruned_at_epoch"] in study_scale.RUNGS
            assert len(trial.intermediate_values) == trial.user_attrs["pruned_at_epoch"]
        if trial.state.name == "FAIL":
            assert trial.user_attrs["fail_reason"] == "exception"


def test_gpu_check_without_gpu_exits_2(tmp_path):
    out = tmp_path / "gpu_check.json"
    # An empty CUDA_VISIBLE_DEVICES hides every GPU from torch, so this holds on GPU machines too.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--out", str(out)], capture_output=True, text=True, env=env)

    assert done.returncode == 2
    assert done.stderr == "error: no NVIDIA GPU that torch can use (torch.cuda.is_available() is False); run the GPU check on a machine with one.\n"
    assert done.stdout == ""
    assert not out.exists()
