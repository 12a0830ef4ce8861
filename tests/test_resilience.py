"""Studies stay whole through interrupts, kill -9, resume, time budgets, failures and concurrent runs."""

import hashlib
import os
import signal
import subprocess
import sys
import threading

import optuna
import pytest
from optuna.trial import TrialState

from conftest import load_only_study, wait_until_training, write_helper_space

pytestmark = pytest.mark.ray

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def start_tuner(workdir, *args, epoch_s="0", fifo=None, **popen):
    env = {**os.environ, "TUNER_TEST_EPOCH_S": epoch_s, "TUNER_TEST_FIFO": str(fifo or "")}
    return subprocess.Popen([sys.executable, "-m", "tuner", "run", *args], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def run_tuner(workdir, *args):
    process = start_tuner(workdir, *args)
    out, err = process.communicate()
    return process.returncode, out, err


def storage_of(workdir):
    return f"sqlite:///{workdir}/results/tuner.db"


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_records_open_trials(workdir, signum, code):
    write_helper_space(workdir, "slow", "slow", None, max_epochs=30, n_trials=6, pruner="none", sampler="random")
    fifo = workdir / "started"
    os.mkfifo(fifo)
    process = start_tuner(workdir, "space=slow", epoch_s="0.3", fifo=fifo)
    wait_until_training(fifo, process)

    process.send_signal(signum)
    out, err = process.communicate()

    assert process.returncode == code, err
    trials = load_only_study(storage_of(workdir)).trials
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    interrupted = [t for t in trials if t.state == TrialState.FAIL]
    assert interrupted
    assert {t.user_attrs["fail_reason"] for t in interrupted} == {"interrupted"}
    assert "Stopped:  interrupted" in out


def test_kill_9_then_resume(workdir):
    write_helper_space(workdir, "slow", "slow", None, max_epochs=20, n_trials=6, pruner="none", sampler="random")
    fifo = workdir / "started"
    os.mkfifo(fifo)
    process = start_tuner(workdir, "space=slow", epoch_s="0.3", fifo=fifo, start_new_session=True)
    wait_until_training(fifo, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()

    study = load_only_study(storage_of(workdir))
    left_running = [t.number for t in study.trials if t.state == TrialState.RUNNING]
    assert left_running

    code, out, err = run_tuner(workdir, "space=slow", "resume=true")
    assert code == 0, err

    trials = load_only_study(storage_of(workdir)).trials
    stale = [t.number for t in trials if t.user_attrs.get("fail_reason") == "stale"]
    finished = [t for t in trials if t.state in FINISHED]
    assert stale == left_running
    assert all(t.state == TrialState.FAIL for t in trials if t.number in stale)
    assert len(finished) == 6
    assert len({t.params["x"] for t in finished}) == 6
    assert not [t for t in trials if t.state == TrialState.RUNNING]


def database_digest(workdir):
    return hashlib.sha256((workdir / "results" / "tuner.db").read_bytes()).hexdigest()


def test_resume_edited_space_changes_nothing(workdir):
    write_helper_space(workdir, "steady", "steady", [1, 2, 3], max_epochs=2, n_trials=2, pruner="none")
    code, _, err = run_tuner(workdir, "space=steady")
    assert code == 0, err
    before = database_digest(workdir)

    write_helper_space(workdir, "steady", "steady", [1, 2, 4], max_epochs=2, n_trials=2, pruner="none")
    code, out, err = run_tuner(workdir, "space=steady", "resume=true", "n_trials=4")

    assert code == 2
    lines = err.strip().splitlines()
    name = load_only_study(storage_of(workdir)).study_name
    assert lines[0] == (f"error: resume: study '{name}': params.x: CategoricalDistribution({{\"choices\": [1, 2, 3]}}) "
                        f"-> CategoricalDistribution({{\"choices\": [1, 2, 4]}}).")
    assert lines[1].startswith("error: resume: Start a new study")
    assert database_digest(workdir) == before


def test_resume_different_data_fails(workdir):
    code, _, err = run_tuner(workdir, "space=adam_medical", "n_trials=2", "max_epochs=2", "pruner=none")
    assert code == 0, err
    before = database_digest(workdir)

    code, _, err = run_tuner(workdir, "space=adam_medical", "n_trials=3", "max_epochs=2", "pruner=none", "resume=true", "data.split_seed=1")

    assert code == 2
    assert "data fingerprint" in err.splitlines()[0]
    assert "so the data or its split differ." in err.splitlines()[0]
    assert database_digest(workdir) == before


def test_time_budget_prunes_running_trials(workdir):
    write_helper_space(workdir, "slow", "slow", None, max_epochs=40, n_trials=20, pruner="none", sampler="random")
    # A budget well above Ray's start-up on a loaded machine, so that trials have reported when it ends.
    process = start_tuner(workdir, "space=slow", "time_budget=15s", epoch_s="0.25")
    out, err = process.communicate()

    assert process.returncode == 0, err
    trials = load_only_study(storage_of(workdir)).trials
    assert len(trials) < 20
    cut = [t for t in trials if t.user_attrs.get("pruned_reason") == "time budget"]
    assert cut
    assert all(t.state == TrialState.PRUNED for t in cut)
    assert all(len(t.intermediate_values) == t.user_attrs["pruned_at_epoch"] for t in cut)
    first_start = min(t.datetime_start for t in trials)
    assert all((t.datetime_start - first_start).total_seconds() < 15 for t in trials)
    assert "Stopped:  time budget" in out


def test_consecutive_failures_stop_run(workdir):
    write_helper_space(workdir, "broken", "always_fails", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], max_epochs=2, n_trials=10,
                       pruner="none", max_consecutive_failures=3)
    code, out, err = run_tuner(workdir, "space=broken")

    assert code == 1
    trials = load_only_study(storage_of(workdir)).trials
    assert 3 <= len(trials) < 10
    assert all(t.state == TrialState.FAIL for t in trials)
    assert "error: the run stopped because 3 trials failed in a row. Errors, grouped:" in err
    assert f"x RuntimeError: broken objective (first in trial 0)" in err
    assert "the traceback of trial 0 is in its user attribute 'traceback'" in err
    assert "Traceback (most recent call last)" not in err


def test_concurrent_runs_share_sqlite(workdir):
    write_helper_space(workdir, "steady", "steady", [1, 2, 3, 4, 5, 6, 7, 8], max_epochs=5, n_trials=8, pruner="none")
    processes = [start_tuner(workdir, "space=steady", f"study=run-{i}", "max_concurrent=1") for i in range(2)]
    reads, errors = [0], []

    def poll_storage():
        while any(p.poll() is None for p in processes):
            try:
                for summary in optuna.get_all_study_summaries(storage_of(workdir)):
                    optuna.load_study(study_name=summary.study_name, storage=storage_of(workdir)).trials
                reads[0] += 1
            except Exception as error:  # Any failure of the reader is what this test looks for.
                errors.append(error)

    (workdir / "results").mkdir()
    reader = threading.Thread(target=poll_storage)
    reader.start()
    outputs = [p.communicate() for p in processes]
    reader.join()

    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
        assert "locked" not in err
    assert errors == []
    assert reads[0] > 0
    for name in ("run-0", "run-1"):
        study = optuna.load_study(study_name=name, storage=storage_of(workdir))
        assert len(study.trials) == 8
        assert all(t.state == TrialState.COMPLETE for t in study.trials)
