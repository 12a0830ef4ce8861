import optuna
import pytest

from tuner.space import parse_space, unflatten

WHERE = "space.yaml"


def parse_ok(raw, need_grid=False):
    space, problems = parse_space(raw, where=WHERE, need_grid=need_grid)
    assert problems == []
    return space


def test_parse_all_distribution_kinds():
    space = parse_ok({
        "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "depth": {"type": "int", "low": 1, "high": 4},
        "batch_size": {"type": "categorical", "choices": [16, 32]},
        "width": 64,
    })
    kinds = {p.name: type(p.distribution).__name__ for p in space.params}
    assert kinds == {"lr": "FloatDistribution", "depth": "IntDistribution", "batch_size": "CategoricalDistribution", "width": "NoneType"}
    assert space.params[3].value == 64


def test_nested_keys_reach_objective_nested():
    space = parse_ok({"optimizer": {"lr": {"type": "float", "low": 0.01, "high": 0.1}, "name": "adam"}})
    assert [p.name for p in space.params] == ["optimizer.lr", "optimizer.name"]
    assert space.config({"optimizer.lr": 0.05}) == {"optimizer": {"lr": 0.05, "name": "adam"}}


def test_unflatten_builds_nested_dicts():
    assert unflatten({"a.b": 1, "a.c": 2, "d": 3}) == {"a": {"b": 1, "c": 2}, "d": 3}


@pytest.mark.parametrize("spec, expected", [
    ({"type": "floot", "low": 0, "high": 1}, "params.x.type: unknown type 'floot'. Did you mean 'float'? Allowed: categorical, float, int."),
    ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "params.x.low: must be > 0 when 'log' is true; got 0.0. Use a positive bound such as 1.0e-5."),
    ({"type": "int", "low": 0, "high": 8, "log": True}, "params.x.low: must be >= 1 when 'log' is true; got 0. Use 1 or more."),
    ({"type": "float", "low": 0.1, "high": 1.0, "log": True, "step": 0.1}, "params.x: 'step' cannot be combined with 'log: true'; got step=0.1. Remove one of them."),
    ({"type": "int", "low": 1, "high": 10, "step": 4}, "params.x.step: 4 does not divide the range 1..10. Set 'high' to 9 or pick a step that divides the range."),
    ({"type": "float", "low": 1.0, "high": 1.0}, "params.x: 'low' must be < 'high'; got low=1.0, high=1.0. Swap them or widen the range."),
    ({"type": "float", "low": "a", "high": 1.0}, "params.x.low: must be a number; got 'a'."),
    ({"type": "int", "low": 1.5, "high": 3}, "params.x.low: must be an integer; got 1.5."),
    ({"type": "categorical", "choices": []}, "params.x.choices: must be a non-empty list; got []. Use for example 'choices: [32, 64, 128]'."),
    ({"type": "categorical", "choices": [1, 1]}, "params.x.choices: contains duplicates; got [1, 1]. List each choice once."),
    ({"type": "categorical", "choices": [[1, 2]]}, "params.x.choices: each choice must be null, bool, int, float or str; got [1, 2]. Use a constant parameter for lists and mappings."),
    ({"type": "float", "low": 0.0, "high": 1.0, "hgh": 2}, "params.x: unknown key for a float parameter 'hgh'. Did you mean 'high'? Allowed: grid, grid_points, high, log, low, step, type, when."),
])
def test_invalid_distribution_messages(spec, expected):
    _, problems = parse_space({"x": spec, "y": {"type": "int", "low": 1, "high": 2}}, where=WHERE)
    assert problems == [f"{WHERE}: {expected}"]


def test_all_problems_reported_at_once():
    _, problems = parse_space({
        "a": {"type": "float", "low": 0.0, "high": 1.0, "log": True},
        "b": {"type": "int", "low": 5, "high": 1},
    }, where=WHERE)
    assert len(problems) == 2
    assert problems[0].startswith(f"{WHERE}: params.a.low:")
    assert problems[1].startswith(f"{WHERE}: params.b:")


def test_grid_needs_values_for_float():
    _, problems = parse_space({"lr": {"type": "float", "low": 0.1, "high": 1.0}}, where=WHERE, need_grid=True)
    assert problems == [f"{WHERE}: params.lr: the grid sampler needs a finite set of values for a float; add 'grid: [...]', 'grid_points: N' or 'step'."]


def test_grid_points_log_spaced():
    space = parse_ok({"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True, "grid_points": 3}}, need_grid=True)
    assert [p["lr"] for p in space.grid_points()] == pytest.approx([1e-4, 1e-3, 1e-2])


def test_conditional_grid_skips_inactive_branches():
    space = parse_ok({
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        "beta1": {"type": "float", "low": 0.8, "high": 0.9, "grid": [0.8, 0.9], "when": {"optimizer": "adam"}},
        "momentum": {"type": "float", "low": 0.0, "high": 0.9, "grid": [0.0, 0.5, 0.9], "when": {"optimizer": "sgd"}},
    }, need_grid=True)
    points = space.grid_points()
    assert len(points) == 5
    assert all(("beta1" in p) == (p["optimizer"] == "adam") for p in points)
    assert all(("momentum" in p) == (p["optimizer"] == "sgd") for p in points)


def test_condition_on_unknown_parent():
    _, problems = parse_space({
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        "momentum": {"type": "float", "low": 0.0, "high": 0.9, "when": {"optimiser": "sgd"}},
    }, where=WHERE)
    assert problems == [f"{WHERE}: params.momentum.when: unknown categorical parameter 'optimiser'. Did you mean 'optimizer'? Allowed: optimizer."]


def test_condition_value_not_a_choice():
    _, problems = parse_space({
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        "momentum": {"type": "float", "low": 0.0, "high": 0.9, "when": {"optimizer": "rmsprop"}},
    }, where=WHERE)
    assert problems == [f"{WHERE}: params.momentum.when: 'rmsprop' is not a choice of 'optimizer'; choices are ['adam', 'sgd']."]


def test_sample_skips_inactive_params():
    space = parse_ok({
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        "momentum": {"type": "float", "low": 0.0, "high": 0.9, "when": {"optimizer": "sgd"}},
        "beta1": {"type": "float", "low": 0.8, "high": 0.99, "when": {"optimizer": "adam"}},
    })
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        params = space.sample(trial)
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        assert ("beta1" in params) == (params["optimizer"] == "adam")
        study.tell(trial, 0.0)


def test_fingerprint_changes_with_range():
    a = parse_ok({"x": {"type": "float", "low": 0.0, "high": 1.0}})
    b = parse_ok({"x": {"type": "float", "low": 0.0, "high": 2.0}})
    assert a.fingerprint() == parse_ok({"x": {"type": "float", "low": 0.0, "high": 1.0}}).fingerprint()
    assert a.fingerprint() != b.fingerprint()


@pytest.mark.parametrize("spec, expected", [
    ({"low": 0.1, "high": 1.0}, "params.x: missing 'type'. Add 'type: float', 'int' or 'categorical', or 'value:' for a constant."),
    ({"typ": "float", "low": 0.1, "high": 1.0}, "params.x: missing 'type'. 'typ' is not a key; did you mean 'type'? Add 'type: float', 'int' or 'categorical', or 'value:' for a constant."),
])
def test_distribution_without_type(spec, expected):
    _, problems = parse_space({"x": spec, "y": {"type": "int", "low": 1, "high": 2}}, where=WHERE)
    assert problems == [f"{WHERE}: {expected}"]
