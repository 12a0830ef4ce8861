import math

import pytest
import torch

from objectives.data import load_breast_cancer
from objectives.models import mlp
from objectives.training import evaluate_classifier, fit_classifier, make_optimizer
from tuner.context import TrialContext, TrialDiverged


def context(params, max_epochs=3, records=None):
    sink = records.append if records is not None else (lambda record: None)
    return TrialContext(params=params, data=None, number=0, seed=0, max_epochs=max_epochs, metric="val_auc",
                        device=torch.device("cpu"), _sink=sink)


@pytest.mark.parametrize("params, cls", [
    ({"lr": 0.01}, torch.optim.Adam),
    ({"optimizer": "adamw", "lr": 0.01, "beta1": 0.8}, torch.optim.AdamW),
    ({"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": True}, torch.optim.SGD),
])
def test_make_optimizer_kinds(params, cls):
    optimizer = make_optimizer(torch.nn.Linear(2, 2), params)
    assert type(optimizer) is cls
    assert optimizer.defaults["lr"] == 0.01


def test_make_optimizer_betas():
    optimizer = make_optimizer(torch.nn.Linear(2, 2), {"lr": 0.01, "beta1": 0.85, "beta2": 0.99})
    assert optimizer.defaults["betas"] == (0.85, 0.99)


def test_fit_reports_every_epoch():
    data = load_breast_cancer({})
    records = []
    torch.manual_seed(0)
    model = mlp(30, 2, depth=2, width=32, dropout=0.1)
    fit_classifier(context({"lr": 0.01, "batch_size": 32}, max_epochs=4, records=records), model, data.train, data.val)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert set(records[0]) == {"epoch", "train_loss", "val_auc", "val_acc", "val_loss"}
    assert records[-1]["val_auc"] > 0.95
    assert records[-1]["train_loss"] < records[0]["train_loss"]


def test_evaluate_accuracy_is_argmax():
    model = torch.nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0], [1.0]]))
    split = type("S", (), {"x": torch.tensor([[-2.0], [-1.0], [1.0], [2.0]]), "y": torch.tensor([0, 1, 1, 1])})
    metrics = evaluate_classifier(model, split)
    assert metrics["acc"] == 0.75
    assert metrics["auc"] == 1.0


def test_report_rejects_nan_as_diverged():
    ctx = context({})
    with pytest.raises(TrialDiverged, match="val_loss is nan at epoch 1"):
        ctx.report(1, val_auc=0.5, val_loss=math.nan)


def test_report_requires_metric_and_valid_epoch():
    ctx = context({}, max_epochs=2)
    with pytest.raises(ValueError, match="report\\(\\) must include the metric 'val_auc'"):
        ctx.report(1, val_loss=0.1)
    with pytest.raises(ValueError, match="epoch must be an integer in 1..2; got 3"):
        ctx.report(3, val_auc=0.5)
