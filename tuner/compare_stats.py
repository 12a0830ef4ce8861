"""Numbers behind a strategy comparison: best-so-far curves, time to target, and the verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

SIGNIFICANCE = 0.05  # Level of the two-sided rank tests in the verdict.


@dataclass(frozen=True)
class Comparison:
    """A comparison's runs (one row each), per-sampler summary, target and verdict."""

    metric: str
    direction: str
    target: float
    target_source: str
    runs: pd.DataFrame
    summary: pd.DataFrame
    verdict: list[str]


def best_so_far(run: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Return the run's finished trials in completion order with the best COMPLETE value so far."""
    finished = run[run["finished_order"].notna()].sort_values("finished_order")
    values = finished["value"].where(finished["state"] == "COMPLETE")
    best = values.cummax() if direction == "maximize" else values.cummin()
    return pd.DataFrame({"trials": finished["finished_order"].astype(int).to_numpy(),
                         "seconds": finished["finished_s"].to_numpy(), "best": best.to_numpy()})


def analyse(trials: pd.DataFrame, target: float | None = None) -> Comparison:
    """Summarize every run, pick the target (given, or the one most runs reached) and write the verdict."""
    metric, direction = str(trials["metric"].iloc[0]), str(trials["direction"].iloc[0])
    runs = pd.DataFrame([_run_row(run, metric, direction) for _, run in trials.groupby(["sampler", "repeat"], sort=False)])
    finals = runs["final_best"].dropna()
    if target is None:
        # The value that three quarters of the runs reached, so the time to it is defined for most runs.
        target_source = "reached by three quarters of the runs: the quartile of their final best values"
        quantile = 0.25 if direction == "maximize" else 0.75
        target = float(finals.quantile(quantile)) if len(finals) else math.nan
    else:
        target_source = "given"
    reached = [_to_target(run, direction, target) for _, run in trials.groupby(["sampler", "repeat"], sort=False)]
    runs["trials_to_target"] = [trials_needed for trials_needed, _ in reached]
    runs["seconds_to_target"] = [seconds for _, seconds in reached]
    summary = _summary(runs, direction)
    verdict = _verdict(runs, summary, metric, direction, target)
    return Comparison(metric, direction, target, target_source, runs, summary, verdict)


def _run_row(run: pd.DataFrame, metric: str, direction: str) -> dict:
    curve = best_so_far(run, direction)
    complete = run[run["state"] == "COMPLETE"]
    max_epochs = run["max_epochs"].iloc[0]
    budget_epochs = len(run) * max_epochs if isinstance(max_epochs, (int, np.integer)) else math.nan
    test_column = "test_" + metric.removeprefix("val_")
    final = curve["best"].dropna()
    return {
        "sampler": run["sampler"].iloc[0],
        "repeat": int(run["repeat"].iloc[0]),
        "study": run["study"].iloc[0],
        "trials": len(run),
        "complete": len(complete),
        "final_best": float(final.iloc[-1]) if len(final) else math.nan,
        "test": float(run[test_column].iloc[0]) if test_column in run and pd.notna(run[test_column].iloc[0]) else math.nan,
        "epochs": int(run["epochs"].sum()),
        "saved_share": 1 - run["epochs"].sum() / budget_epochs if budget_epochs else math.nan,
        "wall_s": float(run["finished_s"].max()),
    }


def _to_target(run: pd.DataFrame, direction: str, target: float) -> tuple[float, float]:
    """Return (trials finished, seconds) when the run's best first reached `target`, or (nan, nan)."""
    curve = best_so_far(run, direction)
    hit = curve["best"] >= target if direction == "maximize" else curve["best"] <= target
    if math.isnan(target) or not hit.any():
        return math.nan, math.nan
    first = curve[hit].iloc[0]
    return float(first["trials"]), float(first["seconds"])


def _summary(runs: pd.DataFrame, direction: str) -> pd.DataFrame:
    rows = []
    for sampler, group in runs.groupby("sampler", sort=False):
        rows.append({
            "sampler": sampler,
            "runs": len(group),
            "final best (median)": group["final_best"].median(),
            "final best (min)": group["final_best"].min(),
            "final best (max)": group["final_best"].max(),
            "test (median)": group["test"].median(),
            "reached target": f"{int(group['trials_to_target'].notna().sum())} of {len(group)}",
            "trials to target (median)": _median_or_nan(group["trials_to_target"]),
            "seconds to target (median)": _median_or_nan(group["seconds_to_target"]),
            "epochs trained (mean)": group["epochs"].mean(),
            "saved by pruning": group["saved_share"].mean(),
            "run time s (median)": group["wall_s"].median(),
        })
    ascending = direction != "maximize"
    return pd.DataFrame(rows).sort_values("final best (median)", ascending=ascending, kind="stable").reset_index(drop=True)


def _median_or_nan(values: pd.Series) -> float:
    """Median over all runs, counting a run that missed the target as slowest; NaN when that median is a miss."""
    median = float(values.fillna(np.inf).median())
    return median if math.isfinite(median) else math.nan


def _verdict(runs: pd.DataFrame, summary: pd.DataFrame, metric: str, direction: str, target: float) -> list[str]:
    lines = []
    # Not reaching the target ranks behind every time that did.
    seconds = runs.assign(key=runs["seconds_to_target"].fillna(np.inf))
    order = seconds.groupby("sampler", sort=False)["key"].median().sort_values(kind="stable")
    fastest, second = order.index[0], order.index[1]
    comparison = ">=" if direction == "maximize" else "<="
    speed = "; ".join(_speed_text(summary, sampler) for sampler in order.index)
    if math.isfinite(order.iloc[0]):
        lines.append(f"Fastest to the target ({metric} {comparison} {target:.4f}): {fastest}. Per sampler: {speed}.")
    else:
        lines.append(f"No sampler reached the target ({metric} {comparison} {target:.4f}) in most of its runs. Per sampler: {speed}.")
    lines.append(_test_text(seconds, fastest, second, "key", "time to target"))

    best, runner_up = summary["sampler"].iloc[0], summary["sampler"].iloc[1]
    finals = {name: runs.loc[runs["sampler"] == name, "final_best"].dropna() for name in (best, runner_up)}
    gap = abs(finals[best].median() - finals[runner_up].median())
    spread = max(finals[best].max() - finals[best].min(), finals[runner_up].max() - finals[runner_up].min())
    if gap == 0 and spread == 0:
        ties = ", ".join(name for name in summary["sampler"] if runs.loc[runs["sampler"] == name, "final_best"].eq(finals[best].iloc[0]).all())
        lines.append(f"The final {metric} does not separate the samplers: every run of {ties} ended at {finals[best].iloc[0]:.4f}, "
                     "so the time to the target is the difference that counts.")
        return lines
    lines.append(
        f"Best final {metric}: {best}, median {finals[best].median():.4f} (runs {_values(finals[best])}) against "
        f"{runner_up} {finals[runner_up].median():.4f} (runs {_values(finals[runner_up])}). The gap of the medians "
        f"({gap:.4f}) is {'larger' if gap > spread else 'not larger'} than the spread across repeats ({spread:.4f})."
    )
    key = "final_best" if direction == "minimize" else "negated"
    ranked = runs.assign(negated=-runs["final_best"])
    lines.append(_test_text(ranked, best, runner_up, key, f"final {metric}"))
    return lines


def _speed_text(summary: pd.DataFrame, sampler: str) -> str:
    row = summary[summary["sampler"] == sampler].iloc[0]
    if math.isnan(row["seconds to target (median)"]):
        return f"{sampler} reached it in {row['reached target']} runs, too few for a median"
    return (f"{sampler} median {row['trials to target (median)']:.0f} trials and "
            f"{row['seconds to target (median)']:.1f} s ({row['reached target']} runs reached it)")


def _test_text(runs: pd.DataFrame, first: str, second: str, column: str, quantity: str) -> str:
    """Run a two-sided Mann-Whitney U test of `column` (lower is better) between two samplers; return the sentence that reports it."""
    a = runs.loc[runs["sampler"] == first, column].to_numpy(dtype=float)
    b = runs.loc[runs["sampler"] == second, column].to_numpy(dtype=float)
    # The smallest two-sided p an exact rank test can give with n1 and n2 runs (no ties).
    smallest_p = 2 / math.comb(len(a) + len(b), len(a))
    if np.array_equal(np.sort(a), np.sort(b)):
        return f"On {quantity}, {first} and {second} have identical runs, so there is no difference to test."
    p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    text = f"On {quantity}, a two-sided Mann-Whitney U test of {first} against {second} gives p = {p:.3f}"
    if smallest_p > SIGNIFICANCE:
        return (f"{text}, but with {len(a)} and {len(b)} runs no outcome can reach p < {SIGNIFICANCE} "
                f"(the smallest possible p is {smallest_p:.3f}): too few repeats to tell; use repeats=4 or more.")
    if p < SIGNIFICANCE and np.median(a) < np.median(b):
        return f"{text}: the difference is beyond the noise of the repeats."
    return f"{text}: the difference is within the noise of the repeats."


def _values(values: pd.Series) -> str:
    return ", ".join(f"{value:.4f}" for value in values)
