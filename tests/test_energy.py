import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from optuna.trial import TrialState
from torch import nn

from conftest import load_only_study
from objectives.energy import WindowForecaster, build_model, evaluate, forecast_metrics, naive_metrics, train
from objectives.series import CALENDAR_FEATURES, SeriesSplit, load_series
from tuner.runner import run
from tuner.settings import load_settings
from tuner.space import parse_space
from tuner.trainable import make_context

START = pd.Timestamp("2024-01-01 00:00:00")
N_HOURS = 24 * 7 * 6
SPACE_FILE = Path(__file__).resolve().parents[1] / "search_spaces" / "adam_energy.yaml"


def load_mw(hour):
    """A load with a daily and a weekly cycle, always positive."""
    return 1000.0 + 200.0 * math.sin(2 * math.pi * hour / 24) + 50.0 * math.sin(2 * math.pi * hour / 168) + (hour * 7919) % 13


def write_load(folder, name="load.csv"):
    rows = [f"{START + pd.Timedelta(hours=h):%Y-%m-%d %H:%M:%S},{load_mw(h)}" for h in range(N_HOURS)]
    path = folder / name
    path.write_text("time,load\n" + "\n".join(rows) + "\n")
    return path


def small_data(folder, lookback=48):
    return load_series({"path": str(write_load(folder)), "time": "time", "target": "load", "lookback": lookback, "horizon": 24})


def trial_context(data, max_epochs=2, **params):
    payload = {"seed": 0, "max_epochs": max_epochs, "metric": "val_mape", "cpu": 1, "gpu": 0, "cv": None}
    return make_context({"lr": 3e-3, "batch_size": 64, "depth": 1, "width": 16, **params}, data.without_test(), 0, payload)


def actual_mw(split):
    hours = (pd.DatetimeIndex(split.times) - START) // pd.Timedelta(hours=1)
    return np.array([load_mw(h) for h in hours])


class Zeros(nn.Module):
    """Predict a scaled value of 0 for every window, that is the train mean in MW."""

    def forward(self, x):
        return torch.zeros(len(x))


class Recorder(nn.Module):
    """Store the input hours and calendar features it receives, and predict 0."""

    def forward(self, hours, calendar):
        self.hours, self.calendar = hours, calendar
        return torch.zeros(len(hours), 1)


def test_forecast_metrics_exact():
    split = SeriesSplit(
        x=torch.zeros(2, 1),
        y=torch.tensor([0.0, 1.0]),
        actual=torch.tensor([100.0, 110.0], dtype=torch.float64),
        naive=torch.tensor([90.0, math.nan], dtype=torch.float64),
        times=np.array([]),
    )
    info = {"mean": 100.0, "std": 10.0}

    metrics = forecast_metrics(torch.tensor([0.5, 1.0]), split, info)
    naive = naive_metrics(split)

    assert metrics["mape"] == pytest.approx(2.5)
    assert metrics["mae"] == pytest.approx(2.5)
    assert naive["naive_mape"] == pytest.approx(10.0)
    assert naive["naive_mae"] == pytest.approx(10.0)


def test_evaluate_in_mw(tmp_path):
    data = small_data(tmp_path)
    ctx = trial_context(data)
    actual = actual_mw(data.test)
    naive = np.array([load_mw(h) for h in (pd.DatetimeIndex(data.test.times) - START) // pd.Timedelta(hours=1) - 168])

    metrics = evaluate(Zeros(), data.test, ctx)

    mean = data.info["mean"]
    assert set(metrics) == {"mape", "mae", "naive_mape", "naive_mae"}
    assert metrics["mape"] == pytest.approx(100 * np.mean(np.abs(mean - actual) / actual), rel=1e-12)
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(mean - actual)), rel=1e-12)
    assert metrics["naive_mape"] == pytest.approx(100 * np.mean(np.abs(naive - actual) / actual), rel=1e-12)
    assert metrics["naive_mae"] == pytest.approx(np.mean(np.abs(naive - actual)), rel=1e-12)


def test_forecaster_uses_last_hours():
    recorder = Recorder()
    model = WindowForecaster(recorder, lookback=2, max_lookback=4)
    x = torch.arange(12, dtype=torch.float32).reshape(2, 6)

    output = model(x)

    assert output.shape == (2,)
    assert recorder.hours.tolist() == [[2.0, 3.0], [8.0, 9.0]]
    assert recorder.calendar.tolist() == [[4.0, 5.0], [10.0, 11.0]]


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_build_model_output_shape(kind):
    info = {"lookback": 168, "calendar_features": CALENDAR_FEATURES}
    model = build_model({"model": kind, "lookback": 24, "depth": 2, "width": 8}, info)

    assert model.lookback == 24
    assert model(torch.zeros(5, 168 + len(CALENDAR_FEATURES))).shape == (5,)


@pytest.mark.parametrize("params, expected", [
    ({"lookback": 200}, "params.lookback: must be in 1..168, the input hours of each window (data.lookback); got 200. Lower params.lookback or raise data.lookback."),
    ({"lookback": 0}, "params.lookback: must be in 1..168, the input hours of each window (data.lookback); got 0. Lower params.lookback or raise data.lookback."),
    ({"model": "rnn"}, "params.model: must be one of mlp, cnn; got 'rnn'."),
])
def test_build_model_rejects_params(params, expected):
    info = {"lookback": 168, "calendar_features": CALENDAR_FEATURES}

    with pytest.raises(ValueError) as raised:
        build_model(params, info)

    assert str(raised.value) == expected


def test_train_rejects_unknown_loss(tmp_path):
    ctx = trial_context(small_data(tmp_path), loss="l1")

    with pytest.raises(ValueError) as raised:
        train(ctx)

    assert str(raised.value) == "params.loss: must be one of mse, huber; got 'l1'."


def test_train_reports_every_epoch(tmp_path):
    data = small_data(tmp_path)
    ctx = trial_context(data, max_epochs=3, lookback=24)

    model = train(ctx)

    assert [record["epoch"] for record in ctx.history] == [1, 2, 3]
    assert set(ctx.history[0]) == {"epoch", "val_mape", "val_mae", "val_loss", "train_loss", "val_naive_mape"}
    naive = naive_metrics(data.val)["naive_mape"]
    assert [record["val_naive_mape"] for record in ctx.history] == [naive] * 3
    last = evaluate(model, data.val, ctx)
    assert ctx.history[-1]["val_mape"] == last["mape"]
    assert ctx.history[-1]["val_mae"] == last["mae"]


def test_train_same_seed_same_history(tmp_path):
    data = small_data(tmp_path)
    histories = []
    for _ in range(2):
        # make_context seeds torch, so each model starts from the same weights.
        ctx = trial_context(data, loss="huber")
        train(ctx)
        histories.append(ctx.history)

    assert histories[0] == histories[1]


def test_energy_space_lookbacks_fit_data():
    raw = yaml.safe_load(SPACE_FILE.read_text())
    space, problems = parse_space(raw["params"], where="adam_energy.yaml", need_grid=False)

    assert problems == []
    assert raw["objective"] == "forecaster"
    assert raw["data"]["name"] == "pjme"
    assert raw["data"]["horizon"] == 24
    assert (raw["metric"], raw["direction"]) == ("val_mape", "minimize")
    assert max(raw["params"]["lookback"]["choices"]) <= raw["data"]["lookback"]
    assert {p.name for p in space.tuned} == {"lr", "beta1", "beta2", "batch_size", "dropout", "depth", "width", "lookback"}


SPACE = """
objective: objectives.energy:train
evaluate: objectives.energy:evaluate
data: {loader: objectives.series:load_series, path: load.csv, time: time, target: load, lookback: 48, horizon: 24}
metric: val_mape
direction: minimize
n_trials: 2
max_epochs: 2
sampler: random
pruner: none
params:
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
  lookback: {type: categorical, choices: [24, 48]}
  batch_size: 64
  depth: 1
  width: 16
"""


@pytest.mark.ray
def test_energy_run_end_to_end(ray_local, workdir):
    write_load(workdir)
    (workdir / "search_spaces").mkdir()
    (workdir / "search_spaces" / "energy.yaml").write_text(SPACE)

    settings = load_settings(["space=energy"])
    result = run(settings)

    study = load_only_study(settings.storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    for trial in study.trials:
        assert sorted(trial.intermediate_values) == [1, 2]
    assert study.best_value == min(t.value for t in study.trials)
    best = json.loads(result.best_path.read_text())
    assert best["direction"] == "minimize"
    assert best["refit_value"] == best["value"]
    assert set(best["test_metrics"]) == {"test_mape", "test_mae", "test_naive_mape", "test_naive_mae"}
    data = load_series(settings.data)
    assert best["test_metrics"]["test_naive_mape"] == naive_metrics(data.test)["naive_mape"]
    assert best["val_metrics"]["val_naive_mape"] == naive_metrics(data.val)["naive_mape"]
