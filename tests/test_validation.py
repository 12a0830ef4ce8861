"""Bad input through the command line: one line per problem, exit code 2, nothing started or written."""

import textwrap

import pytest

from tuner import runner
from tuner.cli import main

FILE = "search_spaces/case.yaml"
BASE = """
objective: tabular_classifier
data: {name: breast_cancer}
metric: val_auc
max_epochs: 10
params:
"""

CASES = [
    ("lr: {type: float, low: 0.0, high: 0.1, log: true}", [],
     "params.lr.low: must be > 0 when 'log' is true; got 0.0. Use a positive bound such as 1.0e-5."),
    ("depth: {type: int, low: 0, high: 4, log: true}", [],
     "params.depth.low: must be >= 1 when 'log' is true; got 0. Use 1 or more."),
    ("lr: {type: float, low: 0.001, high: 0.1, log: true, step: 0.001}", [],
     "params.lr: 'step' cannot be combined with 'log: true'; got step=0.001. Remove one of them."),
    ("dropout: {type: float, low: 0.0, high: 0.5, step: 0.2}", [],
     "params.dropout.step: 0.2 does not divide the range 0.0..0.5. Set 'high' to 0.4 or pick a step that divides the range."),
    ("depth: {type: int, low: 4, high: 2}", [],
     "params.depth: 'low' must be < 'high'; got low=4, high=2. Swap them or widen the range."),
    ("depth: {type: integer, low: 1, high: 2}", [],
     "params.depth.type: unknown type 'integer'. Did you mean 'int'? Allowed: categorical, float, int."),
    ("depth: {type: int, low: 1, high: 4}", ["sampler=bayes"],
     "unknown sampler 'bayes'. Allowed: cmaes, gp, grid, qmc, random, tpe."),
    ("depth: {type: int, low: 1, high: 4}", ["pruner=medan"],
     "unknown pruner 'medan'. Did you mean 'median'? Allowed: asha, hyperband, median, none."),
    ("depth: {type: int, low: 1, high: 4}", ["objective=tabular_clasifier"],
     "unknown objective 'tabular_clasifier'. Did you mean 'tabular_classifier'? Allowed: credit_classifier, forecaster, image_classifier, tabular_classifier. Or give 'package.module:function'."),
    ("depth: {type: int, low: 1, high: 4, lw: 2}", [],
     "params.depth: unknown key for a int parameter 'lw'. Did you mean 'low'? Allowed: high, log, low, step, type, when."),
    ("lr: {type: float, low: 0.001, high: 0.1}", ["sampler=grid"],
     "params.lr: the grid sampler needs a finite set of values for a float; add 'grid: [...]', 'grid_points: N' or 'step'."),
]


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if the command gets as far as starting Ray."""
    def refuse(settings):
        raise AssertionError("Ray was started")
    monkeypatch.setattr(runner, "_start_ray", refuse)


@pytest.mark.parametrize("params, overrides, expected", CASES)
def test_invalid_space_exits_2(workdir, capsys, no_ray, params, overrides, expected):
    (workdir / "search_spaces").mkdir()
    (workdir / FILE).write_text(textwrap.dedent(BASE) + f"  {params}\n")

    code = main(["run", "space=case", *overrides])

    assert code == 2
    captured = capsys.readouterr()
    prefix = f"override {overrides[0]}" if overrides and not expected.startswith("params.") else FILE
    assert captured.err == f"error: {prefix}: {expected}\n"
    assert captured.out == ""
    assert sorted(p.name for p in workdir.iterdir()) == ["search_spaces"]


def test_many_problems_one_line_each(workdir, capsys, no_ray):
    (workdir / "search_spaces").mkdir()
    (workdir / FILE).write_text(textwrap.dedent(BASE) + "  lr: {type: float, low: 0, high: 1, log: true}\n  depth: {type: int, low: 3, high: 1}\n")

    assert main(["run", "space=case", "sampler=tpee"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("error: override sampler=tpee: unknown sampler 'tpee'.")
    assert lines[1].startswith(f"error: {FILE}: params.lr.low:")
    assert lines[2].startswith(f"error: {FILE}: params.depth:")
