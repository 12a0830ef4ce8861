"""The best trial out: held-out test evaluation and `best.json`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from tuner.diagnostics import summarize
from tuner.settings import Settings, load_callable
from tuner.storage import mask_url
from tuner.trainable import make_context, trial_payload

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BestResult:
    """The best trial of a study and its scores on the validation and test splits."""

    number: int
    value: float
    params: dict[str, Any]
    config: dict[str, Any]
    test_metrics: dict[str, float] | None
    refit_value: float | None
    note: str = ""
    val_metrics: dict[str, float] = field(default_factory=dict)
    # Per split ("val", "test"): summaries of the model's predictions (tuner.diagnostics), or why there are none.
    diagnostics: dict[str, Any] = field(default_factory=dict)


def evaluate_best(settings: Settings, study: optuna.Study, data: Any, refit: bool = True) -> BestResult | None:
    """Retrain the best trial's params on the train split and score the test split.

    Retraining in the driver with the trial's seed and thread count
    reproduces the trial's model, so no trial ever touches the test split
    and no model checkpoint has to travel back from the workers.
    """
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        return None
    best = study.best_trial
    config = settings.search_space.config(best.params)
    base = BestResult(best.number, float(best.value), dict(best.params), config, None, None, val_metrics=_last_metrics(best))
    test = getattr(data, "test", None)
    if test is None or settings.evaluate_ref is None or not refit:
        if not refit:
            note = "the run was interrupted, so the test split was not evaluated"
        elif test is None:
            note = "no test split in the data"
        else:
            note = "the objective names no evaluate function"
        return BestResult(**{**base.__dict__, "note": note})

    logger.debug("Retraining trial %d in the driver to score the test split", best.number)
    payload = trial_payload(settings, import_paths=[])
    ctx = make_context(config, data.without_test(), best.number, payload)
    try:
        model = load_callable(settings.train_ref, "objective")(ctx)
        metrics = load_callable(settings.evaluate_ref, "evaluate")(model, test, ctx)
        test_metrics = {f"test_{name}": float(value) for name, value in metrics.items()}
    except Exception as error:  # User code: any failure here must not lose the finished study.
        logger.warning("Test evaluation of trial %d failed: %s: %s", best.number, type(error).__name__, error)
        return BestResult(**{**base.__dict__, "note": f"test evaluation failed: {type(error).__name__}: {error}"})
    refit_value = ctx.history[-1][settings.metric] if ctx.history else None
    diagnostics = _diagnose(settings, model, data, ctx)
    logger.info("Best trial %d on the test split: %s", best.number, ", ".join(f"{k}={v:.4f}" for k, v in test_metrics.items()))
    return BestResult(**{**base.__dict__, "test_metrics": test_metrics, "refit_value": refit_value, "diagnostics": diagnostics})


def _diagnose(settings: Settings, model: Any, data: Any, ctx: Any) -> dict[str, Any]:
    """Summarize the retrained model's predictions on the validation and test splits, for the report."""
    if settings.predict_ref is None:
        return {"note": "the objective names no predict function"}
    result: dict[str, Any] = {}
    splits = {"val": data.val, "test": data.test}
    if settings.cv:
        del splits["val"]
        result["val_note"] = "with cross-validation the validation rows are in the training folds, so only the test split is shown"
    predict = load_callable(settings.predict_ref, "predict")
    for name, split in splits.items():
        try:
            result[name] = summarize(predict(model, split, ctx))
        except Exception as error:  # User code: a failed diagnostic must not lose the finished study.
            logger.warning("Predictions of the best trial on the %s split failed: %s: %s", name, type(error).__name__, error)
            result[f"{name}_note"] = f"predictions failed: {type(error).__name__}: {error}"
    return result


def write_best(settings: Settings, study: optuna.Study, best: BestResult) -> Path:
    """Write `results/<study>/best.json` and return its path."""
    folder = settings.results_dir / study.study_name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "best.json"
    record = {
        "study": study.study_name,
        "storage": mask_url(settings.storage),
        "space": settings.space,
        "trial": best.number,
        "metric": settings.metric,
        "direction": settings.direction,
        "value": best.value,
        "params": best.params,
        "config": best.config,
        "val_metrics": best.val_metrics,
        "test_metrics": best.test_metrics,
        "refit_value": best.refit_value,
        "seed": settings.seed,
        "trial_seed": settings.seed + best.number,
        "max_epochs": settings.max_epochs,
    }
    if best.note:
        record["note"] = best.note
    study.set_user_attr("best_test_metrics", best.test_metrics)
    study.set_user_attr("best_trial", best.number)
    study.set_user_attr("best_diagnostics", _plain(best.diagnostics))
    study.set_user_attr("best_note", best.note)
    path.write_text(json.dumps(_plain(record), indent=2) + "\n", encoding="utf-8")
    return path


def package_versions() -> dict[str, str]:
    """Return the versions of the packages that decide a study's results."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("tuner", "torch", "optuna", "ray", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _last_metrics(trial: optuna.trial.FrozenTrial) -> dict[str, float]:
    metrics = trial.user_attrs.get("last_metrics")
    return dict(metrics) if isinstance(metrics, dict) else {}


def _plain(value: Any) -> Any:
    """Convert numpy scalars and tuples to plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value
