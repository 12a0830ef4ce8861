"""Plotly figures that Optuna's visualization module does not draw: learning curves by state, ROC, confusion, forecasts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState

STATE_COLORS = {"COMPLETE": "#1f77b4", "PRUNED": "#ff7f0e", "FAIL": "#d62728", "RUNNING": "#7f7f7f"}


def learning_curves(trials: Sequence[FrozenTrial], metric: str) -> go.Figure:
    """Plot every trial's intermediate values per epoch, one trace per state.

    One trace per state, with gaps between trials, keeps the page light for
    thousands of trials, where one trace per trial would not be.
    """
    figure = go.Figure()
    for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING):
        x: list[Any] = []
        y: list[Any] = []
        text: list[Any] = []
        chosen = [trial for trial in trials if trial.state == state and trial.intermediate_values]
        for trial in chosen:
            steps = sorted(trial.intermediate_values)
            x += [*steps, None]
            y += [*(trial.intermediate_values[step] for step in steps), None]
            text += [f"trial {trial.number}"] * len(steps) + [None]
        if chosen:
            figure.add_trace(go.Scatter(
                x=x, y=y, text=text, mode="lines+markers", name=f"{state.name} ({len(chosen)})",
                line={"color": STATE_COLORS[state.name], "width": 1}, marker={"size": 3},
                hovertemplate="%{text}<br>epoch %{x}<br>" + metric + " %{y:.4g}<extra></extra>",
            ))
    figure.update_layout(title=f"Learning curves: {metric} per epoch", xaxis_title="epoch", yaxis_title=metric, template="plotly_white")
    return figure


def best_trial_figures(summary: Mapping[str, Any], split: str) -> list[go.Figure]:
    """Return the figures of a stored prediction summary (tuner.diagnostics) for one split."""
    if summary.get("kind") == "classification":
        return [_roc(summary, split), _confusion(summary, split)]
    if summary.get("kind") == "forecast":
        return [_forecast(summary["whole"], f"Forecast against actual, whole {split} split"),
                _forecast(summary["last"], f"Forecast against actual, last {len(summary['last']['time'])} hours of the {split} split")]
    return []


def _roc(summary: Mapping[str, Any], split: str) -> go.Figure:
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "#999"}))
    for curve in summary["roc"]:
        figure.add_trace(go.Scatter(x=curve["fpr"], y=curve["tpr"], mode="lines", name=f"{curve['class']} (AUC {curve['auc']:.3f})"))
    figure.update_layout(
        title=f"ROC curve, {split} split ({summary['rows']} rows)", xaxis_title="false positive rate",
        yaxis_title="true positive rate", template="plotly_white", width=560, height=480,
    )
    return figure


def _confusion(summary: Mapping[str, Any], split: str) -> go.Figure:
    classes = list(summary["classes"])
    matrix = summary["confusion"]
    figure = go.Figure(go.Heatmap(
        z=matrix, x=classes, y=classes, colorscale="Blues", showscale=False,
        text=[[str(count) for count in row] for row in matrix], texttemplate="%{text}",
        hovertemplate="actual %{y}<br>predicted %{x}<br>%{z} rows<extra></extra>",
    ))
    figure.update_layout(
        title=f"Confusion matrix, {split} split (most probable class)", xaxis_title="predicted", yaxis_title="actual",
        yaxis_autorange="reversed", template="plotly_white", width=480, height=440,
    )
    return figure


def _forecast(series: Mapping[str, list], title: str) -> go.Figure:
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=series["time"], y=series["actual"], mode="lines", name="actual", line={"width": 1}))
    figure.add_trace(go.Scatter(x=series["time"], y=series["predicted"], mode="lines", name="forecast", line={"width": 1}))
    figure.update_layout(title=title, xaxis_title="time", yaxis_title="target", template="plotly_white")
    return figure
