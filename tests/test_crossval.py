import json
import math

import numpy as np
import pytest
import torch
from optuna.trial import TrialState
from torch import nn

from conftest import load_only_study
from objectives import credit, tabular
from objectives.crossval import cv_folds, mean_metrics, stratified_folds
from objectives.data import Dataset, Split, load_breast_cancer
from objectives.training import decision_cost, evaluate_classifier
from tuner.context import TrialContext
from tuner.errors import TunerError
from tuner.runner import run
from tuner.settings import load_settings

TABULAR_METRICS = {"epoch", "train_loss", "val_auc", "val_acc", "val_loss", "val_auc_std"}


def context(data, params=None, cv=None, max_epochs=3, records=None):
    sink = records.append if records is not None else (lambda record: None)
    params = params or {"lr": 0.01, "batch_size": 32, "depth": 1, "width": 16}
    return TrialContext(params=params, data=data, number=0, seed=0, max_epochs=max_epochs, metric="val_auc",
                        device=torch.device("cpu"), cv=cv, _sink=sink)


def with_nan_test(data):
    """Return the data set with every test feature NaN, so that any use of the test rows shows up as NaN."""
    test = Split(torch.full_like(data.test.x, math.nan), data.test.y)
    return Dataset(data.name, data.train, data.val, test, data.n_classes, data.fingerprint, data.classes, data.info)


def probe(weight):
    """Return a model whose logits for one feature x are (0, weight * x), so P(class 1) = sigmoid(weight * x)."""
    model = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0], [weight]]))
    return model


def test_folds_are_stratified_and_disjoint():
    labels = np.array([1] * 30 + [0] * 70)
    folds = stratified_folds(labels, n_folds=5, seed=0)

    assert len(folds) == 5
    validation = [val for _, val in folds]
    assert sorted(np.concatenate(validation).tolist()) == list(range(100))
    for train, val in folds:
        assert len(set(train.tolist()) & set(val.tolist())) == 0
        assert len(train) + len(val) == 100
        assert int(labels[val].sum()) == 6
        assert len(val) == 20


def test_folds_are_fixed_by_seed():
    labels = np.array([0, 1] * 20)
    first, second = stratified_folds(labels, 4, seed=0), stratified_folds(labels, 4, seed=0)
    other = stratified_folds(labels, 4, seed=1)

    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, second))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other))


def test_folds_reject_small_class():
    labels = np.array([0] * 20 + [1] * 3)

    with pytest.raises(TunerError) as caught:
        stratified_folds(labels, 5, seed=0, classes=("good", "bad"))
    assert str(caught.value) == "cv: 5 folds need at least 5 rows of each class in the train and validation splits; class 'bad' has 3. Lower cv, or add rows."


def test_cv_folds_pool_train_and_val_only():
    data = with_nan_test(load_breast_cancer({}))
    folds = cv_folds(data, 5)

    pooled = torch.cat([data.train.x, data.val.x])
    validation = torch.cat([val.x for _, val in folds])
    assert len(validation) == len(data.train) + len(data.val) == 455
    assert sorted(map(tuple, validation.tolist())) == sorted(map(tuple, pooled.tolist()))
    for train, val in folds:
        assert len(train) + len(val) == 455
        assert torch.isfinite(train.x).all()
        assert torch.isfinite(val.x).all()


def test_cv_reports_mean_once_per_epoch():
    data = with_nan_test(load_breast_cancer({}))
    records = []
    ctx = context(data.without_test(), cv=3, records=records)
    torch.manual_seed(0)
    models = tabular.train(ctx)

    assert [record["epoch"] for record in records] == [1, 2, 3]
    assert set(records[0]) == TABULAR_METRICS
    assert len(models) == 3
    per_fold = [evaluate_classifier(model, val) for model, (_, val) in zip(models, cv_folds(data, 3))]
    aucs = [fold["auc"] for fold in per_fold]
    assert records[-1]["val_auc"] == pytest.approx(np.mean(aucs))
    assert records[-1]["val_auc_std"] == pytest.approx(np.std(aucs))
    assert records[-1]["val_loss"] == pytest.approx(np.mean([fold["loss"] for fold in per_fold]))


def test_cv_never_reads_test_rows():
    data = with_nan_test(load_breast_cancer({}))
    records = []
    # A NaN from the test rows would reach a reported metric and raise TrialDiverged.
    tabular.train(context(data, cv=2, max_epochs=2, records=records))

    assert all(math.isfinite(value) for record in records for value in record.values())


def test_single_split_unchanged_without_cv():
    data = load_breast_cancer({})
    records = []
    model = tabular.train(context(data.without_test(), records=records))

    assert isinstance(model, nn.Module)
    assert set(records[0]) == TABULAR_METRICS - {"val_auc_std"}


def test_mean_metrics_values():
    means = mean_metrics([{"train_loss": 1.0, "val_auc": 0.6}, {"train_loss": 3.0, "val_auc": 0.8}])

    assert means == pytest.approx({"train_loss": 2.0, "val_auc": 0.7, "val_auc_std": 0.1})


def test_mean_metrics_one_fold_has_no_std():
    assert mean_metrics([{"val_auc": 0.6}]) == {"val_auc": 0.6}


def test_ensemble_evaluate_averages_probabilities():
    split = Split(torch.tensor([[-1.0], [1.0], [2.0]]), torch.tensor([0, 0, 1]))
    ctx = context(None)
    metrics = tabular.evaluate([probe(1.0), probe(3.0)], split, ctx)

    sigmoid = lambda z: 1 / (1 + math.exp(-z))
    positive = [(sigmoid(x) + sigmoid(3 * x)) / 2 for x in (-1.0, 1.0, 2.0)]
    expected_loss = -(math.log(1 - positive[0]) + math.log(1 - positive[1]) + math.log(positive[2])) / 3
    assert metrics["auc"] == 1.0
    # Row 1 has P(class 1) = 0.84 but class 0, so 2 of 3 rows are right.
    assert metrics["acc"] == pytest.approx(2 / 3)
    assert metrics["loss"] == pytest.approx(expected_loss, rel=1e-5)


def test_ensemble_of_one_matches_single_model():
    split = Split(torch.tensor([[-1.0], [0.5], [2.0]]), torch.tensor([0, 1, 1]))
    single = tabular.evaluate(probe(2.0), split, context(None))
    ensemble = tabular.evaluate([probe(2.0)], split, context(None))

    assert ensemble == pytest.approx(single, rel=1e-5)


@pytest.mark.parametrize("probabilities, labels, expected", [
    ([0.1, 0.2, 0.5, 0.9], [0, 1, 1, 0], 1 / 4),  # one good applicant refused
    ([0.1, 0.1, 0.5, 0.9], [0, 1, 1, 1], 5 / 4),  # one bad applicant accepted
    ([1 / 6, 0.9], [1, 1], 5 / 2),  # P(bad) equal to the threshold counts as good
    ([0.0, 1.0], [0, 1], 0.0),
])
def test_decision_cost_at_one_sixth(probabilities, labels, expected):
    cost = decision_cost(torch.tensor(probabilities, dtype=torch.float64), torch.tensor(labels), cost_fn=5.0, cost_fp=1.0)

    assert cost == pytest.approx(expected)


def test_credit_reports_cost_each_epoch():
    data = with_nan_test(load_breast_cancer({}))
    data = Dataset(data.name, data.train, data.val, data.test, 2, data.fingerprint, data.classes,
                   {"cost": {"fn": 5.0, "fp": 1.0}, "class_weights": (0.8, 1.3)})
    records = []
    model = credit.train(context(data.without_test(), records=records))
    metrics = credit.evaluate(model, data.val, context(data.without_test()))

    assert [record["epoch"] for record in records] == [1, 2, 3]
    assert set(records[0]) == {"epoch", "train_loss", "val_auc", "val_acc", "val_loss", "val_cost"}
    assert set(metrics) == {"auc", "acc", "loss", "cost"}
    assert metrics["cost"] == pytest.approx(records[-1]["val_cost"])


def test_credit_class_weights_change_loss():
    data = load_breast_cancer({})
    losses = {}
    for weights in (None, (1.0, 1.0), (0.5, 2.0)):
        info = {} if weights is None else {"class_weights": weights}
        weighted = Dataset(data.name, data.train, data.val, None, 2, data.fingerprint, data.classes, info)
        records = []
        torch.manual_seed(0)
        credit.train(context(weighted, max_epochs=1, records=records))
        losses[weights] = records[0]["train_loss"]

    assert losses[(1.0, 1.0)] == pytest.approx(losses[None])
    assert losses[(0.5, 2.0)] != pytest.approx(losses[None])


def test_credit_cv_evaluates_ensemble():
    data = load_breast_cancer({})
    data = Dataset(data.name, data.train, data.val, data.test, 2, data.fingerprint, data.classes, {"cost": {"fn": 5.0, "fp": 1.0}})
    records = []
    models = credit.train(context(data.without_test(), cv=3, records=records))
    metrics = credit.evaluate(models, data.test, context(data.without_test()))

    assert len(models) == 3
    assert set(records[-1]) == {"epoch", "train_loss", "val_auc", "val_acc", "val_loss", "val_cost", "val_auc_std"}
    assert set(metrics) == {"auc", "acc", "loss", "cost"}
    assert metrics["auc"] > 0.9


def test_credit_without_cost_reports_none():
    data = load_breast_cancer({})
    records = []
    credit.train(context(data.without_test(), max_epochs=1, records=records))

    assert "val_cost" not in records[0]


@pytest.mark.ray
def test_adam_credit_end_to_end(ray_local, workdir, data_dir, monkeypatch):
    monkeypatch.setenv("TUNER_DATA_DIR", str(data_dir))
    settings = load_settings(["space=adam_credit", "n_trials=3", "max_epochs=3", "pruner=none"])
    result = run(settings)
    study = load_only_study(settings.storage)
    best = json.loads(result.best_path.read_text())

    assert len(study.trials) == 3
    assert {trial.state for trial in study.trials} == {TrialState.COMPLETE}
    for trial in study.trials:
        assert sorted(trial.intermediate_values) == [1, 2, 3]
    assert best["value"] == study.best_value
    assert set(best["test_metrics"]) == {"test_auc", "test_acc", "test_loss", "test_cost"}
    assert 0.5 < best["test_metrics"]["test_auc"] <= 1.0
    assert 0.0 <= best["test_metrics"]["test_cost"] <= 5.0
    # Retraining in the driver reproduces the trial's models exactly.
    assert best["refit_value"] == best["value"]
