"""The only module that starts Ray and builds the Tuner; translates our words to Ray's."""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console

from objectives import DATASETS, OBJECTIVES
from tuner.cluster import address_source, check_address, check_local_resources, concurrency, ray_address, runtime_env
from tuner.errors import TunerError
from tuner.export import BestResult, evaluate_best, package_versions, write_best
from tuner.pruners import create_pruner
from tuner.pruners import effective_options as pruner_settings
from tuner.samplers import create_sampler
from tuner.samplers import effective_options as sampler_settings
from tuner.settings import Settings, load_callable
from tuner.resume import check_matches, done_params, latest_study, reconcile_stale
from tuner.stopping import INTERRUPTED, RunStopper, catch_signals
from tuner.warmstart import warm_start_params
from tuner.storage import mask_url, new_study_name, open_storage, study_exists

logger = logging.getLogger(__name__)

# Ray reads these from the environment of the driver and of the workers it starts.
_RAY_ENV = {
    "RAY_CHDIR_TO_TRIAL_DIR": "0",  # Trials keep the working directory, so relative paths work.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # The study is the record; skip CSV/JSON/TensorBoard files.
    "TUNE_RESULT_BUFFER_LENGTH": "1",  # Every epoch reaches the pruner as soon as it is reported.
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_DEDUP_LOGS": "0",
    "TUNE_PRINT_ALL_TRIAL_ERRORS": "0",  # One WARNING line per failed trial; the traceback is in the study.
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
    # A trial that never reports the metric is recorded as FAIL ("no report") by
    # the searcher; Ray's strict check would end the whole run instead.
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # tuner's own handler records the trials and exits 130.
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
    stop_reason: str | None = None
    signal: int | None = None
    errors: dict[str, int] = field(default_factory=dict)
    first_failed: dict[str, int] = field(default_factory=dict)
    report_path: Path | None = None


def load_data(settings: Settings) -> Any:
    """Load the data set named in the space file, once, in the driver.

    The loader is `data.loader` if given, else the named data set's, else
    the built-in objective's default loader (which reads `data.path`).
    """
    spec = dict(settings.data)
    if not spec:
        return None
    source = DATASETS.get(spec.get("name"))
    if source is not None:
        spec = {**source.defaults, **spec}
    reference = spec.get("loader") or (source.loader if source else None) or OBJECTIVES[settings.objective].loader
    return load_callable(reference, "data.loader")(spec)


def run(settings: Settings, console: Console | None = None, report: bool = True) -> RunResult:
    """Tune the search space of `settings` and return the summary; with `report`, write the study report.

    Order matters for "nothing written on bad input": data is loaded, and
    Ray's address and resources are checked, before the storage is opened.
    """
    console = console or Console(stderr=True)
    started = time.monotonic()
    os.environ.update(_RAY_ENV)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Ray's result-grid loader warns about the per-trial files that
    # TUNE_DISABLE_AUTO_CALLBACK_LOGGERS turns off. The study contains the results.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    data = load_data(settings)
    _check_before_ray(settings)
    # Before the storage opens, because open_storage creates a missing SQLite file.
    warm_start = warm_start_params(settings) if settings.warm_start else None

    import ray

    started_ray = _start_ray(settings)
    try:
        # Resources are checked before the storage opens, so that a request
        # the cluster cannot meet creates no database file.
        concurrency = _concurrency(settings)
        storage = open_storage(settings.storage)
        resumed = _study_to_resume(settings, storage, data) if settings.resume else None
        if not settings.resume and settings.study is not None and study_exists(storage, settings.study):
            raise TunerError(f"study: '{settings.study}' already exists in {mask_url(settings.storage)}. Pick a new name with study=NAME, or add resume=true to continue it.")
        stopper = RunStopper(settings.time_budget_s)
        if resumed is None:
            study = _create_study(settings, storage, settings.study or new_study_name(settings.space, storage), data)
            plan = _Plan(settings.n_trials, _shuffled_grid(settings) if settings.sampler == "grid" else None)
            if warm_start is not None:
                study.enqueue_trial(warm_start)
                study.set_user_attr("warm_start", {"source": settings.warm_start, "params": warm_start})
                logger.info("Warm start: trial 0 tries %s from %s", warm_start, settings.warm_start)
        else:
            study, plan = _reopen_study(settings, storage, resumed)
        if settings.sampler == "grid":
            logger.info("Grid of %d points: %d trials to run", len(settings.search_space.grid_points()), plan.n_trials)
        logger.info("Study %s started: %d trials, sampler %s, pruner %s, %d at a time, storage %s",
                    study.study_name, plan.n_trials, settings.sampler, settings.pruner, concurrency, mask_url(settings.storage))
        searcher = _fit(settings, study, data, concurrency, console, stopper, plan)
    finally:
        if started_ray:
            ray.shutdown()

    best = evaluate_best(settings, study, data, refit=stopper.reason != INTERRUPTED)
    best_path = write_best(settings, study, best) if best is not None else None
    report_file = _write_report(settings, study) if report else None
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state.name == state for t in trials) for state in ("COMPLETE", "PRUNED", "FAIL")}
    return RunResult(
        study.study_name, settings.storage, counts, time.monotonic() - started, best, best_path,
        stop_reason=stopper.reason, signal=stopper.signal, errors=dict(searcher.errors), first_failed=dict(searcher.first_failed),
        report_path=report_file,
    )


def _write_report(settings: Settings, study: optuna.Study) -> Path | None:
    """Write the study report; a report that fails is logged, because the study itself is safe in the storage."""
    from tuner.report import report_path, write_study_report

    try:
        return write_study_report(study, report_path(settings.results_dir, study.study_name), settings.storage)
    except Exception as error:  # The finished study must not be lost to a plotting error.
        logger.warning("The study report could not be written: %s: %s. Rebuild it with: tuner report study=%s",
                       type(error).__name__, error, study.study_name)
        return None


@dataclass(frozen=True)
class _Plan:
    """Trials this run adds: how many, and the grid points left (grid sampler only)."""

    n_trials: int
    grid: list[dict[str, Any]] | None


def _shuffled_grid(settings: Settings) -> list[dict[str, Any]]:
    """Return the grid points in a seeded random order, so a partial grid samples the whole grid (as Optuna's GridSampler)."""
    points = settings.search_space.grid_points()
    random.Random(settings.seed).shuffle(points)
    return points


def _study_to_resume(settings: Settings, storage: optuna.storages.BaseStorage, data: Any) -> optuna.Study:
    """Find the study to resume and check it matches the space and data, before anything is written."""
    name = settings.study or latest_study(storage, settings)
    if not study_exists(storage, name):
        raise TunerError(f"resume: study '{name}' not found in {mask_url(settings.storage)}. Check the name, or drop resume=true to start it.")
    study = optuna.load_study(study_name=name, storage=storage)
    check_matches(study, settings, data)
    return study


def _reopen_study(settings: Settings, storage: optuna.storages.BaseStorage, study: optuna.Study) -> tuple[optuna.Study, _Plan]:
    """Reconcile stale trials and reload the study with a sampler that will not replay its sequence."""
    reconcile_stale(study)
    done = done_params(study)
    # A sampler seeded as in the first run would propose the same sequence again.
    sampler = create_sampler(settings.sampler, settings.sampler_options, settings.seed + len(study.get_trials(deepcopy=False)))
    study = optuna.load_study(study_name=study.study_name, storage=storage, sampler=sampler)
    grid = None
    if settings.sampler == "grid":
        tried = [sorted(params.items()) for params in done]
        grid = [point for point in _shuffled_grid(settings) if sorted(point.items()) not in tried]
    n_trials = max(0, settings.n_trials - len(done))
    if grid is not None:
        n_trials = min(n_trials, len(grid))
    logger.info("Resuming study %s: %d of %d trials done, %d to run", study.study_name, len(done), settings.n_trials, n_trials)
    return study, _Plan(n_trials, grid)


def _trial_dirname(trial) -> str:
    return f"trial-{trial.config['number']}"


def _check_before_ray(settings: Settings) -> None:
    """Catch resource requests this machine cannot meet, and unusable or unreachable clusters, before anything starts."""
    address = ray_address(settings)
    if address is None:
        check_local_resources(settings)
    else:
        check_address(address, address_source(settings))


def _start_ray(settings: Settings) -> bool:
    """Join the cluster of `ray.address` (or $RAY_ADDRESS), else start a private local Ray instance.

    Returns whether this call started Ray, which the caller then shuts down.

    Raises:
        TunerError: The cluster rejected the connection or could not be joined.
    """
    import ray
    from ray.exceptions import AuthenticationError

    if ray.is_initialized():
        return False
    address = ray_address(settings)
    kwargs: dict[str, Any] = {
        # "local" keeps a cluster started with `ray start` on this machine out of a local run.
        "address": address or "local",
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "log_to_driver": False,
        "configure_logging": True,
    }
    if address is not None:
        kwargs["runtime_env"] = runtime_env(settings)
    source = address_source(settings)
    try:
        ray.init(**kwargs)
    except AuthenticationError:
        raise TunerError(
            f"{source}: the Ray cluster at '{address}' requires its authentication token. Set RAY_AUTH_MODE=token, "
            "and put the head node's token (`ray get-auth-token` there) in ~/.ray/auth_token or in RAY_AUTH_TOKEN."
        ) from None
    except (ConnectionError, RuntimeError, ValueError) as error:
        if address is None:
            raise TunerError(f"cannot start a local Ray instance: {error}") from None
        hint = "" if os.environ.get("RAY_AUTH_MODE", "").lower() == "token" else (
            " If the cluster uses token authentication, set RAY_AUTH_MODE=token and give its token in ~/.ray/auth_token or RAY_AUTH_TOKEN."
        )
        raise TunerError(f"{source}: cannot join the Ray cluster at '{address}': {error}. Check that the cluster is up, or drop {source} to run locally.{hint}") from None
    return True


def _concurrency(settings: Settings) -> int:
    """Return how many trials run at once, from the resources of the live Ray nodes."""
    import ray

    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    address = ray_address(settings)
    where = "the local Ray instance" if address is None else f"the Ray cluster at '{address}'"
    return concurrency(settings, nodes, where)


def _create_study(settings: Settings, storage: optuna.storages.BaseStorage, name: str, data: Any) -> optuna.Study:
    sampler = create_sampler(settings.sampler, settings.sampler_options, settings.seed)
    study = optuna.create_study(storage=storage, study_name=name, direction=settings.direction, sampler=sampler)
    study.set_user_attr("space", settings.space)
    study.set_user_attr("search_space", settings.search_space.describe())
    study.set_user_attr("space_fingerprint", settings.search_space.fingerprint())
    study.set_user_attr("data_fingerprint", getattr(data, "fingerprint", None))
    study.set_user_attr("sampler", {"name": settings.sampler, "seed": settings.seed, **sampler_settings(settings.sampler, settings.sampler_options)})
    study.set_user_attr("pruner", {"name": settings.pruner, **pruner_settings(settings.pruner, settings.pruner_options, settings.max_epochs)})
    study.set_user_attr("metric", settings.metric)
    study.set_user_attr("objective", settings.objective)
    study.set_user_attr("seed", settings.seed)
    study.set_user_attr("n_trials", settings.n_trials)
    study.set_user_attr("max_epochs", settings.max_epochs)
    study.set_user_attr("versions", package_versions())
    return study


def _fit(settings: Settings, study: optuna.Study, data: Any, concurrency: int, console: Console, stopper: RunStopper, plan: _Plan):
    from ray import tune

    from tuner.progress import FailureRecorder, ProgressDisplay
    from tuner.searcher import StudySearcher
    from tuner.trainable import run_trial, trial_payload

    scheduler = create_pruner(settings.pruner, settings.pruner_options, settings.metric, settings.direction, settings.max_epochs)
    searcher = StudySearcher(
        study, settings.search_space, n_trials=plan.n_trials, max_epochs=settings.max_epochs,
        metric=settings.metric, stopped=scheduler.stopped, grid=plan.grid,
        stopper=stopper, max_consecutive_failures=settings.max_consecutive_failures,
    )
    if plan.n_trials == 0:
        return searcher
    trial_data = data.without_test() if hasattr(data, "without_test") else data
    # The working directory and the folder of the running script, where a user's objective module sits.
    # sys.path[0] is not that folder once Ray has been imported, because Ray puts its own folder first.
    script_folder = str(Path(sys.argv[0]).resolve().parent) if sys.argv and sys.argv[0] else os.getcwd()
    payload = trial_payload(settings, import_paths=[os.getcwd(), script_folder])
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
            num_samples=plan.n_trials,
            max_concurrent_trials=concurrency,
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
            trial_name_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name="ray",
            # Only the driver writes here. Trials save no checkpoints or
            # artifacts, so Ray 2.60 needs no storage shared with the nodes.
            storage_path=str((settings.results_dir / study.study_name).resolve()),
            verbose=0,
            stop=stopper,
            callbacks=[FailureRecorder(searcher), display],
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )
    try:
        with display, catch_signals(stopper):
            tuner.fit()
    finally:
        reason = stopper.reason or INTERRUPTED
        closed = searcher.close_open_trials(reason)
        if closed:
            logger.warning("%d trials were still open when the run ended; recorded as cut short (%s)", closed, reason)
    return searcher
