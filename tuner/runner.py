"""The only module that starts Ray and builds the Tuner; translates our words to Ray's."""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console

from objectives import DATA_LOADERS
from tuner.errors import TunerError
from tuner.export import BestResult, evaluate_best, write_best
from tuner.pruners import create_pruner
from tuner.samplers import create_sampler
from tuner.settings import Settings, load_callable
from tuner.storage import mask_url, new_study_name, open_storage, study_exists

logger = logging.getLogger(__name__)

# Ray reads these from the environment of the driver and of the workers it starts.
_RAY_ENV = {
    "RAY_CHDIR_TO_TRIAL_DIR": "0",  # Trials keep the working directory, so relative paths work.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # The study is the record; skip CSV/JSON/TensorBoard files.
    "TUNE_RESULT_BUFFER_LENGTH": "1",  # Every epoch reaches the pruner as soon as it is reported.
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_DEDUP_LOGS": "0",
}


@dataclass(frozen=True)
class RunResult:
    """Summary of a finished run: the study, its trial counts and the best trial."""

    study_name: str
    storage: str
    counts: dict[str, int]
    wall_s: float
    best: BestResult | None
    best_path: Path | None


def load_data(settings: Settings) -> Any:
    """Load the data set named in the space file, once, in the driver."""
    spec = dict(settings.data)
    if not spec:
        return None
    reference = spec.get("loader") or DATA_LOADERS[spec["name"]]
    return load_callable(reference, "data.loader")(spec)


def run(settings: Settings, console: Console | None = None) -> RunResult:
    """Tune the search space of `settings` and return the summary.

    Order matters for "nothing written on bad input": data is loaded and
    Ray is checked before the study row is created.
    """
    console = console or Console(stderr=True)
    started = time.monotonic()
    os.environ.update(_RAY_ENV)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Ray's result-grid loader warns about the per-trial files that
    # TUNE_DISABLE_AUTO_CALLBACK_LOGGERS turns off. The study contains the results.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    data = load_data(settings)
    storage = open_storage(settings.storage)
    if settings.study is not None and study_exists(storage, settings.study):
        raise TunerError(f"study: '{settings.study}' already exists in {mask_url(settings.storage)}. Pick a new name with study=NAME.")

    import ray

    started_ray = _start_ray(settings)
    try:
        concurrency = _concurrency(settings)
        name = settings.study or new_study_name(settings.space, storage)
        study = _create_study(settings, storage, name, data)
        if settings.sampler == "grid":
            logger.info("Grid of %d points: %d trials", len(settings.search_space.grid_points()), settings.n_trials)
        logger.info("Study %s started: %d trials, sampler %s, pruner %s, %d at a time, storage %s",
                    name, settings.n_trials, settings.sampler, settings.pruner, concurrency, mask_url(settings.storage))
        searcher = _fit(settings, study, data, concurrency, console)
    finally:
        if started_ray:
            ray.shutdown()

    best = evaluate_best(settings, study, data)
    best_path = write_best(settings, study, best) if best is not None else None
    counts = {state: searcher.counts[state] for state in ("COMPLETE", "PRUNED", "FAIL")}
    return RunResult(name, settings.storage, counts, time.monotonic() - started, best, best_path)


def _trial_dirname(trial) -> str:
    return f"trial-{trial.config['number']}"


def _start_ray(settings: Settings) -> bool:
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "log_to_driver": False,
        "configure_logging": True,
    }
    if settings.ray_address:
        kwargs["address"] = settings.ray_address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise TunerError(f"ray.address: cannot connect to '{settings.ray_address}': {error}. Check that the cluster is up, or drop ray.address to run locally.") from None
    return True


def _concurrency(settings: Settings) -> int:
    import ray

    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    if settings.gpu > 0 and gpus < settings.gpu:
        raise TunerError(f"resources.gpu: {settings.gpu:g} GPU per trial requested, but the Ray cluster has {gpus:g} GPUs. Set resources.gpu=0 or run on a cluster with GPUs.")
    if cpus < settings.cpu:
        raise TunerError(f"resources.cpu: {settings.cpu:g} CPUs per trial requested, but the Ray cluster has {cpus:g}. Lower resources.cpu.")
    fit = int(cpus // settings.cpu)
    if settings.gpu > 0:
        fit = min(fit, int(gpus // settings.gpu))
    return max(1, min(settings.max_concurrent or fit, settings.n_trials))


def _create_study(settings: Settings, storage: optuna.storages.BaseStorage, name: str, data: Any) -> optuna.Study:
    sampler = create_sampler(settings.sampler, settings.sampler_options, settings.seed)
    study = optuna.create_study(storage=storage, study_name=name, direction=settings.direction, sampler=sampler)
    study.set_user_attr("space", settings.space)
    study.set_user_attr("search_space", settings.search_space.describe())
    study.set_user_attr("space_fingerprint", settings.search_space.fingerprint())
    study.set_user_attr("data_fingerprint", getattr(data, "fingerprint", None))
    study.set_user_attr("sampler", {"name": settings.sampler, "seed": settings.seed, **settings.sampler_options})
    study.set_user_attr("pruner", {"name": settings.pruner, **settings.pruner_options})
    study.set_user_attr("metric", settings.metric)
    study.set_user_attr("objective", settings.objective)
    study.set_user_attr("seed", settings.seed)
    study.set_user_attr("n_trials", settings.n_trials)
    study.set_user_attr("max_epochs", settings.max_epochs)
    return study


def _fit(settings: Settings, study: optuna.Study, data: Any, concurrency: int, console: Console):
    from ray import tune

    from tuner.progress import FailureRecorder, ProgressDisplay
    from tuner.searcher import StudySearcher
    from tuner.trainable import run_trial, trial_payload

    scheduler = create_pruner(settings.pruner, settings.pruner_options, settings.metric, settings.direction, settings.max_epochs)
    grid = settings.search_space.grid_points() if settings.sampler == "grid" else None
    searcher = StudySearcher(
        study, settings.search_space, n_trials=settings.n_trials, max_epochs=settings.max_epochs,
        metric=settings.metric, stopped=scheduler.stopped, grid=grid,
    )
    trial_data = data.without_test() if hasattr(data, "without_test") else data
    payload = trial_payload(settings, import_paths=[os.getcwd(), *sys.path[:1]])
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, data=trial_data, payload=payload),
        {"cpu": settings.cpu, "gpu": settings.gpu},
    )
    display = ProgressDisplay(searcher, console, title=f"{study.study_name}")
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=settings.n_trials,
            max_concurrent_trials=concurrency,
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
            trial_name_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name="ray",
            storage_path=str((settings.results_dir / study.study_name).resolve()),
            verbose=0,
            callbacks=[FailureRecorder(searcher), display],
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )
    try:
        with display:
            tuner.fit()
    finally:
        closed = searcher.close_open_trials("interrupted")
        if closed:
            logger.warning("%d trials were still running and are recorded as FAIL (interrupted)", closed)
    return searcher
