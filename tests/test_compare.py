import csv
import re

import optuna
import pandas as pd
import pytest

from browser import find_chromium, render, script_sources
from tuner.cli import main
from tuner.compare import COMPARISON_ATTR, plan_comparison
from tuner.compare_stats import analyse, best_so_far
from tuner.errors import TunerError


@pytest.mark.parametrize("overrides, message", [
    (["samplers=random,foo"], "samplers: unknown sampler 'foo'."),
    (["samplers=tpe"], "samplers: name at least two samplers to compare, separated by commas, such as samplers=random,tpe; got tpe."),
    (["samplers=tpe,tpe"], "samplers: each sampler may appear once; got tpe,tpe."),
    (["repeats=0"], "repeats: must be an integer >= 1 (runs of each sampler); got 0."),
    (["budget=two"], "budget: must be an integer >= 1 (trials per run); got 'two'."),
    (["target=high"], "target: must be a number (a value of the metric to reach); got 'high'."),
    (["sampler=tpe"], "sampler: set by the comparison for each run; remove sampler=tpe (use budget=N for the trials per run)."),
    (["n_trials=5"], "n_trials: set by the comparison for each run; remove n_trials=5 (use budget=N for the trials per run)."),
])
def test_plan_rejects_bad_options(overrides, message):
    with pytest.raises(TunerError) as caught:
        plan_comparison(["space=adam_medical", *overrides])
    assert any(line.startswith(message) for line in caught.value.problems), caught.value.problems


def test_plan_interleaves_runs():
    plan = plan_comparison(["space=adam_medical", "samplers=grid,random,tpe", "repeats=2", "budget=5", "seed=7"])
    assert [(sampler, repeat) for sampler, repeat, _ in plan.runs] == [
        ("grid", 1), ("random", 1), ("tpe", 1), ("grid", 2), ("random", 2), ("tpe", 2)]
    assert [settings.seed for _, _, settings in plan.runs] == [7, 7, 7, 8, 8, 8]
    assert {settings.n_trials for _, _, settings in plan.runs} == {5}
    assert plan.runs[2][2].sampler_options["n_startup_trials"] == 8  # The space file's TPE settings stay.
    assert len({settings.study for _, _, settings in plan.runs}) == 6


def test_compare_bad_option_exits_2_and_writes_nothing(workdir, capsys):
    assert main(["compare", "space=adam_medical", "samplers=random,foo"]) == 2
    err = capsys.readouterr().err
    assert err == "error: samplers: unknown sampler 'foo'. Allowed: cmaes, gp, grid, qmc, random, tpe.\n"
    assert not (workdir / "results").exists()


def synthetic_trials(finals: dict[str, list[list[float]]]) -> pd.DataFrame:
    """Trials of a comparison: for each sampler, each repeat's list of values, one trial per second."""
    rows = []
    for sampler, repeats in finals.items():
        for repeat, values in enumerate(repeats, start=1):
            for number, value in enumerate(values):
                rows.append({"comparison": "compare-x-1-2", "sampler": sampler, "repeat": repeat, "study": f"{sampler}-{repeat}",
                             "metric": "val_auc", "direction": "maximize", "max_epochs": 10, "trial": number,
                             "state": "COMPLETE", "value": value, "epochs": 10, "finished_order": number + 1,
                             "started_s": float(number), "finished_s": float(number + 1), "test_auc": values[-1] - 0.01})
    return pd.DataFrame(rows)


def test_best_so_far_keeps_running_max():
    trials = synthetic_trials({"tpe": [[0.5, 0.7, 0.6, 0.9]]})
    curve = best_so_far(trials, "maximize")
    assert curve["best"].tolist() == [0.5, 0.7, 0.7, 0.9]
    assert curve["seconds"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_analyse_names_clear_winner_beyond_noise():
    good = [[0.80, 0.95, 0.96]] * 2 + [[0.81, 0.94, 0.97]] * 2
    poor = [[0.60, 0.70, 0.75]] * 2 + [[0.61, 0.72, 0.74]] * 2
    comparison = analyse(synthetic_trials({"random": poor, "tpe": good}), target=0.9)
    assert comparison.summary["sampler"].tolist() == ["tpe", "random"]
    tpe = comparison.summary.iloc[0]
    assert tpe["trials to target (median)"] == 2
    assert tpe["reached target"] == "4 of 4"
    assert comparison.summary.iloc[1]["reached target"] == "0 of 4"
    assert comparison.verdict[0].startswith("Fastest to the target (val_auc >= 0.9000): tpe.")
    assert "The gap of the medians (0.2200) is larger than the spread across repeats (0.0100)." in comparison.verdict[2]
    assert comparison.verdict[3].endswith("the difference is beyond the noise of the repeats.")


def test_analyse_says_three_repeats_are_too_few():
    comparison = analyse(synthetic_trials({"random": [[0.7, 0.8]] * 3, "tpe": [[0.8, 0.9]] * 3}))
    assert comparison.target == pytest.approx(0.8)
    assert "the smallest possible p is 0.100): too few repeats to tell; use repeats=4 or more." in comparison.verdict[3]


@pytest.mark.ray
def test_compare_end_to_end(ray_local, workdir, capsys):
    assert main(["-q", "compare", "space=adam_medical", "samplers=random,tpe", "repeats=2", "budget=3", "max_epochs=2",
                 "pruner.grace_period=1"]) == 0
    out = capsys.readouterr().out
    folder = next((workdir / "results").glob("compare-adam_medical-*"))
    assert f"Report:   results/{folder.name}/report.html" in out
    assert "Fastest to the target (val_auc >= " in out

    with open(folder / "trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 3
    assert {(row["sampler"], row["repeat"]) for row in rows} == {("random", "1"), ("random", "2"), ("tpe", "1"), ("tpe", "2")}
    summaries = optuna.get_all_study_summaries("sqlite:///results/tuner.db")
    tags = sorted((s.user_attrs[COMPARISON_ATTR]["sampler"], s.user_attrs[COMPARISON_ATTR]["repeat"]) for s in summaries)
    assert tags == [("random", 1), ("random", 2), ("tpe", 1), ("tpe", 2)]
    assert {s.user_attrs[COMPARISON_ATTR]["name"] for s in summaries} == {folder.name}

    report = folder / "report.html"
    page = report.read_text(encoding="utf-8")
    assert script_sources(page) == []
    page_in_browser = render(find_chromium(), report, workdir, "comparison-report")
    assert page_in_browser.errors == []
    assert page_in_browser.figures == len(re.findall(r'id="figure-\d+"', page))
    assert page_in_browser.figures == 7
    assert page_in_browser.rendered == page_in_browser.figures

    assert main(["report", f"comparison={folder.name}", "out=again.html"]) == 0
    assert (workdir / "again.html").is_file()
