"""The comparison report: best-so-far curves, targets, pruning savings, importance and the verdict, in one offline page."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from tuner.compare import tagged_studies
from tuner.compare_stats import Comparison, best_so_far
from tuner.html import Page
from tuner.report import importance_evaluator
from tuner.storage import mask_url

logger = logging.getLogger(__name__)

TIME_POINTS = 200  # Points of the best-so-far curve against wall-clock time.
TOP_SHARE = 0.2  # Share of the COMPLETE trials drawn in the parallel coordinates.
COLORS = qualitative.Plotly


def write_comparison_report(name: str, trials: pd.DataFrame, comparison: Comparison, storage: str, path: Path) -> Path:
    """Write the comparison report of `trials` (from tuner.compare.comparison_trials) to `path`."""
    page = Page(f"Comparison {name}")
    samplers = list(dict.fromkeys(trials["sampler"]))
    colors = {sampler: COLORS[index % len(COLORS)] for index, sampler in enumerate(samplers)}
    metric = comparison.metric

    page.heading("Verdict")
    for line in comparison.verdict:
        page.text(line, "verdict")
    page.facts({
        "Space": _space(trials),
        "Samplers": ", ".join(samplers),
        "Repeats": int(trials["repeat"].max()),
        "Trials per run": int(trials.groupby("study").size().max()),
        "Metric": f"{metric} ({comparison.direction})",
        "Target": f"{comparison.target:.4f} ({comparison.target_source})",
        "Storage": mask_url(storage),
    })
    page.heading("Summary")
    page.table(comparison.summary)
    page.heading("Best so far")
    page.figure(_best_so_far_by_trials(trials, comparison, colors))
    page.figure(_best_so_far_by_time(trials, comparison, colors))
    page.heading("Final best value and its test score, per run")
    page.figure(_finals(comparison, colors))
    page.heading("Trials and time to reach the target")
    page.figure(_to_target(comparison, colors))
    page.heading("Epochs trained and pruning")
    page.figure(_epochs(comparison, colors))
    _importance(page, name, storage, samplers, colors)
    _parallel(page, trials, comparison, samplers)
    page.heading("Runs")
    page.table(comparison.runs)
    return page.write(path)


def _space(trials: pd.DataFrame) -> str:
    return str(trials["comparison"].iloc[0]).removeprefix("compare-").rsplit("-", 2)[0]


def _band(figure: go.Figure, x: np.ndarray, values: np.ndarray, sampler: str, color: str, runs: int) -> None:
    """Add the mean of `values` (runs x points) as a line, with a band from the lowest to the highest run."""
    # Points before a run's first COMPLETE trial are NaN in every run; numpy warns about those columns.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high, mean = np.nanmin(values, axis=0), np.nanmax(values, axis=0), np.nanmean(values, axis=0)
    figure.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([high, low[::-1]]), fill="toself",
                                fillcolor=color, opacity=0.2, line={"width": 0}, hoverinfo="skip", showlegend=False, legendgroup=sampler))
    figure.add_trace(go.Scatter(x=x, y=mean, mode="lines", name=f"{sampler} (mean of {runs})", line={"color": color}, legendgroup=sampler))


def _best_so_far_by_trials(trials: pd.DataFrame, comparison: Comparison, colors: dict[str, str]) -> go.Figure:
    figure = go.Figure()
    budget = int(trials.groupby("study").size().max())
    x = np.arange(1, budget + 1)
    for sampler, group in trials.groupby("sampler", sort=False):
        curves = []
        for _, run in group.groupby("repeat"):
            curve = best_so_far(run, comparison.direction)
            curves.append(pd.Series(curve["best"].to_numpy(), index=curve["trials"]).reindex(x).ffill().to_numpy(dtype=float))
        _band(figure, x, np.array(curves), sampler, colors[sampler], len(curves))
    figure.update_layout(title=f"Best {comparison.metric} so far against trials finished (band: lowest to highest run)",
                         xaxis_title="trials finished", yaxis_title=comparison.metric, template="plotly_white")
    return figure


def _best_so_far_by_time(trials: pd.DataFrame, comparison: Comparison, colors: dict[str, str]) -> go.Figure:
    figure = go.Figure()
    x = np.linspace(0, float(trials["finished_s"].max()), TIME_POINTS)
    for sampler, group in trials.groupby("sampler", sort=False):
        curves = []
        for _, run in group.groupby("repeat"):
            curve = best_so_far(run, comparison.direction)
            # The best known at time t is the best of the trials finished by t.
            index = np.searchsorted(curve["seconds"].to_numpy(), x, side="right") - 1
            best = curve["best"].to_numpy(dtype=float)
            curves.append(np.where(index >= 0, best[np.clip(index, 0, None)], np.nan))
        _band(figure, x, np.array(curves), sampler, colors[sampler], len(curves))
    figure.update_layout(title=f"Best {comparison.metric} so far against wall-clock time (band: lowest to highest run)",
                         xaxis_title="seconds since the run's first trial started", yaxis_title=comparison.metric, template="plotly_white")
    return figure


def _finals(comparison: Comparison, colors: dict[str, str]) -> go.Figure:
    figure = go.Figure()
    runs = comparison.runs
    for column, label in (("final_best", f"validation ({comparison.metric})"), ("test", "test split, retrained best")):
        for sampler, group in runs.groupby("sampler", sort=False):
            figure.add_trace(go.Box(
                x=[label] * len(group), y=group[column], name=sampler, boxpoints="all", pointpos=0, jitter=0.3,
                marker={"color": colors[sampler]}, legendgroup=sampler, showlegend=column == "final_best",
                text=[f"repeat {repeat}" for repeat in group["repeat"]],
            ))
    figure.update_layout(boxmode="group", title="Final best value per run, and the test metric of each run's best trial",
                         yaxis_title="metric", template="plotly_white")
    return figure


def _to_target(comparison: Comparison, colors: dict[str, str]) -> go.Figure:
    figure = go.Figure()
    runs = comparison.runs
    for column, label in (("trials_to_target", "trials finished"), ("seconds_to_target", "seconds")):
        for sampler, group in runs.groupby("sampler", sort=False):
            reached = group[group[column].notna()]
            figure.add_trace(go.Box(
                x=[f"{label}"] * len(reached), y=reached[column], name=f"{sampler} ({len(reached)} of {len(group)} reached)",
                boxpoints="all", pointpos=0, marker={"color": colors[sampler]}, legendgroup=sampler,
                showlegend=column == "trials_to_target", yaxis="y" if column == "trials_to_target" else "y2",
                offsetgroup=sampler,
            ))
    figure.update_layout(
        boxmode="group", template="plotly_white", title=f"Trials and seconds until the best reached {comparison.target:.4f}",
        yaxis={"title": "trials finished"}, yaxis2={"title": "seconds", "overlaying": "y", "side": "right"},
    )
    return figure


def _epochs(comparison: Comparison, colors: dict[str, str]) -> go.Figure:
    figure = go.Figure()
    for sampler, group in comparison.runs.groupby("sampler", sort=False):
        figure.add_trace(go.Bar(
            x=[f"repeat {repeat}" for repeat in group["repeat"]], y=group["epochs"], name=sampler, marker={"color": colors[sampler]},
            text=[f"{share:.0%} saved" for share in group["saved_share"]], textposition="outside",
        ))
    figure.update_layout(barmode="group", title="Epochs trained per run (label: share of the epoch budget saved by pruning and failures)",
                         yaxis_title="epochs", template="plotly_white")
    return figure


def _importance(page: Page, name: str, storage: str, samplers: list[str], colors: dict[str, str]) -> None:
    page.heading("Parameter importance per sampler")
    by_sampler: dict[str, list[dict[str, float]]] = {sampler: [] for sampler in samplers}
    skipped = []
    for tag, study in tagged_studies(name, storage):
        try:
            by_sampler[tag["sampler"]].append(optuna.importance.get_param_importances(study, evaluator=importance_evaluator()))
        except Exception as error:  # fANOVA needs 2+ COMPLETE trials with varied params; the page lists the runs that lacked them.
            skipped.append(f"{study.study_name} ({type(error).__name__}: {error})")
    figure = go.Figure()
    for sampler, importances in by_sampler.items():
        if importances:
            mean = pd.DataFrame(importances).fillna(0.0).mean().sort_values(ascending=False)
            figure.add_trace(go.Bar(x=mean.index, y=mean.to_numpy(), name=f"{sampler} (mean of {len(importances)} runs)", marker={"color": colors[sampler]}))
    if skipped:
        page.note("Importance could not be computed for: " + "; ".join(skipped) + ".")
    if not figure.data:
        page.note("No run has the COMPLETE trials that fANOVA importance needs.")
        return
    page.text("fANOVA importance of each run (a random forest fit of the metric on the params), averaged per sampler.")
    figure.update_layout(barmode="group", yaxis_title="importance", template="plotly_white", title="Parameter importance per sampler")
    page.figure(figure)


def _parallel(page: Page, trials: pd.DataFrame, comparison: Comparison, samplers: list[str]) -> None:
    page.heading("Parallel coordinates of the best trials")
    complete = trials[trials["state"] == "COMPLETE"]
    if complete.empty:
        page.note("No COMPLETE trial to draw.")
        return
    count = max(10, int(len(complete) * TOP_SHARE))
    top = complete.sort_values("value", ascending=comparison.direction != "maximize").head(count)
    dimensions = []
    for column in [c for c in top.columns if c.startswith("params.")]:
        values = top[column]
        if values.isna().all():
            continue
        if pd.api.types.is_numeric_dtype(values):
            dimensions.append({"label": column.removeprefix("params."), "values": values.astype(float)})
        else:
            codes, labels = pd.factorize(values.astype(str))
            dimensions.append({"label": column.removeprefix("params."), "values": codes,
                               "tickvals": list(range(len(labels))), "ticktext": list(labels)})
    dimensions.append({"label": comparison.metric, "values": top["value"]})
    dimensions.append({"label": "sampler", "values": [samplers.index(s) for s in top["sampler"]],
                       "tickvals": list(range(len(samplers))), "ticktext": samplers})
    scale = [[index / max(1, len(samplers) - 1), COLORS[index % len(COLORS)]] for index in range(len(samplers))]
    figure = go.Figure(go.Parcoords(
        dimensions=dimensions,
        line={"color": [samplers.index(s) for s in top["sampler"]], "colorscale": scale if len(samplers) > 1 else [[0, COLORS[0]], [1, COLORS[0]]],
              "cmin": 0, "cmax": max(1, len(samplers) - 1)},
    ))
    figure.update_layout(title=f"The best {len(top)} COMPLETE trials of all runs, colored by sampler", template="plotly_white")
    page.figure(figure)
