import textwrap

import pytest

from tuner.errors import TunerError
from tuner.settings import load_settings, parse_overrides

ALLOWED_KEYS = "amp, channels_last, cv, data, description, direction, evaluate, max_concurrent, max_consecutive_failures, max_epochs, metric, n_trials, objective, params, predict, pruner, ray, resources, results_dir, resume, sampler, seed, space, storage, study, time_budget, warm_start"


def problems_of(overrides):
    with pytest.raises(TunerError) as caught:
        load_settings(overrides)
    return caught.value.problems


def write_space(folder, name, text):
    (folder / "search_spaces").mkdir(exist_ok=True)
    (folder / "search_spaces" / f"{name}.yaml").write_text(textwrap.dedent(text))


def test_builtin_space_defaults():
    settings = load_settings(["space=adam_medical"])
    assert settings.objective == "tabular_classifier"
    assert settings.metric == "val_auc"
    assert settings.direction == "maximize"
    assert settings.sampler == "tpe"
    assert settings.pruner == "asha"
    assert settings.storage == "sqlite:///results/tuner.db"
    assert [p.name for p in settings.search_space.tuned] == ["lr", "beta1", "beta2", "batch_size", "dropout", "depth"]


def test_overrides_are_yaml_typed():
    settings = load_settings(["space=adam_medical", "n_trials=40", "sampler=random", "seed=7", "params.lr.high=0.01", "storage=sqlite:///x.db"])
    assert settings.n_trials == 40
    assert settings.sampler == "random"
    assert settings.seed == 7
    assert settings.search_space.distributions()["lr"].high == 0.01
    assert settings.storage == "sqlite:///x.db"


def test_override_param_to_constant():
    settings = load_settings(["space=adam_medical", "params.depth=2"])
    assert "depth" not in settings.search_space.distributions()
    assert settings.search_space.config({})["depth"] == 2


def test_pruner_name_and_setting_overrides():
    settings = load_settings(["space=adam_medical", "pruner=median", "pruner.grace_period=2"])
    assert settings.pruner == "median"
    assert dict(settings.pruner_options) == {"grace_period": 2}


def test_unknown_space_lists_available():
    problem = problems_of(["space=adam_medcal"])[0]
    assert problem.startswith("unknown space 'adam_medcal'. Did you mean 'adam_medical'? Available: ")
    assert "adam_medical, " in problem


def test_missing_space():
    problem = problems_of(["n_trials=3"])[0]
    assert problem.startswith("missing 'space'. Name one with space=NAME; available: ")
    assert "adam_medical" in problem


def test_unknown_key_nearest_match():
    assert problems_of(["space=adam_medical", "n_trails=5"]) == [
        f"override n_trails=5: unknown key 'n_trails'. Did you mean 'n_trials'? Allowed: {ALLOWED_KEYS}."
    ]


def test_override_without_equals():
    assert problems_of(["space=adam_medical", "n_trials"]) == [
        "invalid argument 'n_trials': expected key=value, such as n_trials=40 or params.lr.high=0.01."
    ]


@pytest.mark.parametrize("override, expected", [
    ("n_trials=0", "must be an integer >= 1; got 0."),
    ("n_trials=many", "must be an integer >= 1; got 'many'."),
    ("max_epochs=-1", "must be an integer >= 1; got -1."),
    ("direction=up", "must be maximize or minimize; got 'up'."),
    ("seed=-3", "must be an integer >= 0; got -3."),
    ("resources.cpu=0", "must be a number > 0 (CPUs per trial); got 0."),
    ("resources.gpus=1", "unknown key in resources 'gpus'. Did you mean 'gpu'? Allowed: cpu, gpu."),
    ("sampler=tpee", "unknown sampler 'tpee'. Did you mean 'tpe'? Allowed: cmaes, gp, grid, qmc, random, tpe."),
    ("pruner=ashaa", "unknown pruner 'ashaa'. Did you mean 'asha'? Allowed: asha, hyperband, median, none."),
    ("pruner.grace_period=100", "must be <= max_epochs (30); got 100. Lower it or raise max_epochs."),
    ("pruner.reduction_factor=1", "must be > 1; got 1."),
    ("sampler.n_startup=3", "unknown setting for sampler 'tpe'. Allowed: consider_endpoints, consider_magic_clip, consider_prior, constant_liar, group, multivariate, n_ei_candidates, n_startup_trials, prior_weight, warn_independent_sampling."),
    ("metric=val_aucc", "unknown metric 'val_aucc'. Did you mean 'val_auc'? Allowed: train_loss, val_acc, val_auc, val_loss."),
    ("objective=tabular", "unknown objective 'tabular'. Did you mean 'tabular_classifier'? Allowed: credit_classifier, forecaster, image_classifier, tabular_classifier. Or give 'package.module:function'."),
    ("objective=nowhere.mod:fn", "cannot import module 'nowhere.mod' (No module named 'nowhere'). Check the name and that it is on PYTHONPATH."),
    ("data.name=mnist", "unknown data set 'mnist'. Allowed: breast_cancer, german_credit, pjme, pneumoniamnist. Or set data.path to your own file, or data.loader to 'package.module:function'."),
    ("storage=results.db", "must be a database URL such as sqlite:///results/tuner.db; got 'results.db'."),
    ("params.lr.low=0", "must be > 0 when 'log' is true; got 0.0. Use a positive bound such as 1.0e-5."),
])


def test_invalid_override_messages(override, expected):
    assert problems_of(["space=adam_medical", override]) == [f"override {override}: {expected}"]


def test_local_space_shadows_nothing_and_is_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_space(tmp_path, "mine", """
        objective: tabular_classifier
        data: {name: breast_cancer}
        metric: val_auc
        params:
          lr: {type: float, low: 0.001, high: 0.1, log: true}
    """)
    settings = load_settings(["space=mine"])
    assert settings.source == tmp_path / "search_spaces" / "mine.yaml"
    assert load_settings(["space=adam_medical"]).space == "adam_medical"


def test_file_problems_reported_together(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_space(tmp_path, "bad", """
        objective: tabular_classifier
        data: {name: breast_cancer}
        metric: val_auc
        n_trials: 0
        params:
          lr: {type: float, low: 0.0, high: 0.1, log: true}
          depth: {type: int, low: 4, high: 1}
    """)
    assert problems_of(["space=bad"]) == [
        "search_spaces/bad.yaml: n_trials: must be an integer >= 1; got 0.",
        "search_spaces/bad.yaml: params.lr.low: must be > 0 when 'log' is true; got 0.0. Use a positive bound such as 1.0e-5.",
        "search_spaces/bad.yaml: params.depth: 'low' must be < 'high'; got low=4, high=1. Swap them or widen the range.",
    ]


def test_invalid_yaml_names_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_space(tmp_path, "broken", "objective: [unclosed\n")
    problems = problems_of(["space=broken"])
    assert len(problems) == 1
    assert problems[0].startswith("search_spaces/broken.yaml: line 2: invalid YAML")


def test_unknown_top_level_key_in_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_space(tmp_path, "typo", "objective: tabular_classifier\nmetrc: val_auc\n")
    assert problems_of(["space=typo"])[0].startswith("search_spaces/typo.yaml: unknown key 'metrc'. Did you mean 'metric'?")


def test_parse_overrides_types():
    assert parse_overrides(["a=1", "b=0.5", "c=true", "d=null", "e=text", "f=[1, 2]"]) == [
        ("a", 1), ("b", 0.5), ("c", True), ("d", None), ("e", "text"), ("f", [1, 2]),
    ]


def test_grid_sampler_defaults_trials_to_grid_size():
    settings = load_settings([
        "space=adam_medical", "sampler=grid",
        "params.lr.grid_points=3", "params.beta1=0.9", "params.beta2=0.999", "params.dropout.grid=[0.0, 0.2]",
    ])
    # 3 lr values x 4 batch sizes x 2 dropouts x 4 depths
    assert settings.n_trials == 96
