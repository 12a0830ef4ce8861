"""Command line: parse, call one function, map errors to exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from tuner.errors import RunFailed, TunerError
from tuner.storage import mask_url

logger = logging.getLogger("tuner")

_COMMANDS = {
    "run": "tune a search space: tuner run space=NAME [key=value ...]",
    "show": "print the resolved settings of a space: tuner show space=NAME [key=value ...]",
    "spaces": "list the available search spaces",
    "best": "print the best params of a study: tuner best space=NAME|study=NAME [storage=URL] [format=json|yaml|env|overrides]",
    "compare": "compare samplers on one space: tuner compare space=NAME [samplers=grid,random,tpe] [repeats=3] [budget=N] [target=X] [key=value ...]",
    "report": "write the HTML report of a stored study or comparison: tuner report study=NAME|space=NAME|comparison=NAME [storage=URL] [out=PATH]",
    "dashboard": "open the Optuna dashboard on a storage: tuner dashboard [storage=URL] [port=8080]",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `tuner` command; return its exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose - args.quiet)
    # Like `python -m`, make modules in the working directory importable, so
    # that a space file can name `my_module:my_objective`.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    stderr = Console(stderr=True)
    try:
        return _COMMAND_FUNCTIONS[args.command](args.overrides, stderr)
    except TunerError as error:
        for line in error.problems:
            print(f"error: {line}", file=sys.stderr)
        return error.exit_code
    except RunFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _run(overrides: Sequence[str], stderr: Console) -> int:
    from tuner.runner import run
    from tuner.settings import load_settings

    from tuner.stopping import TOO_MANY_FAILURES

    settings = load_settings(overrides)
    result = run(settings, console=stderr)
    _print_summary(settings, result)
    if result.signal is not None:
        return 128 + result.signal
    nothing_finished = result.counts["COMPLETE"] + result.counts["PRUNED"] == 0 and result.counts["FAIL"] > 0
    if result.stop_reason == TOO_MANY_FAILURES or nothing_finished:
        _print_failures(settings, result)
        return RunFailed.exit_code
    return 0


def _print_failures(settings, result) -> None:
    """Print identical trial errors grouped with counts, and where the first traceback is stored."""
    if result.stop_reason:
        cause = f"{settings.max_consecutive_failures} trials failed in a row"
    else:
        cause = "every trial failed"
    print(f"error: the run stopped because {cause}. Errors, grouped:", file=sys.stderr)
    for error, count in sorted(result.errors.items(), key=lambda item: -item[1]):
        print(f"error:   {count} x {error} (first in trial {result.first_failed[error]})", file=sys.stderr)
    if result.first_failed:
        first = min(result.first_failed.values())
        print(f"error: the traceback of trial {first} is in its user attribute 'traceback'; "
              f"optuna-dashboard {_absolute_sqlite(mask_url(settings.storage))} shows it.", file=sys.stderr)


def _show(overrides: Sequence[str], stderr: Console) -> int:
    import yaml

    from tuner.settings import load_settings

    settings = load_settings(overrides)
    resolved = dict(settings.resolved)
    resolved["storage"] = mask_url(settings.storage)
    resolved["n_trials"] = settings.n_trials
    print(f"# {settings.source}")
    print(yaml.safe_dump(resolved, sort_keys=False).rstrip())
    space = settings.search_space
    print("# distributions:")
    for param in space.tuned:
        print(f"#   {param.name}: {param.distribution}")
    print("# active params:")
    for condition, names in space.active_sets().items():
        print(f"#   {condition}: {', '.join(names) or '(none)'}")
    finite = all(p.grid for p in space.tuned)
    print(f"# grid size: {len(space.grid_points()) if finite else 'not finite, because a float parameter has no grid values'}")
    return 0


def _spaces(overrides: Sequence[str], stderr: Console) -> int:
    import yaml

    from tuner.catalog import available_spaces

    if overrides:
        raise TunerError(f"'tuner spaces' takes no arguments; got {' '.join(overrides)}.")
    for name, path in available_spaces().items():
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        print(f"{name:24} {raw.get('objective', '?'):22} {raw.get('metric', '?'):10} {raw.get('description', '')}")
    return 0


def _dashboard(overrides: Sequence[str], stderr: Console) -> int:
    from optuna_dashboard import run_server

    from tuner.overrides import parse_overrides
    from tuner.storage import DEFAULT_STORAGE, existing_sqlite, open_storage

    options = dict(parse_overrides(overrides))
    unknown = set(options) - {"storage", "port", "host"}
    if unknown:
        raise TunerError(f"'tuner dashboard' accepts storage, port and host; got {', '.join(sorted(unknown))}.")
    url, host, port = str(options.get("storage", DEFAULT_STORAGE)), str(options.get("host", "127.0.0.1")), options.get("port", 8080)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise TunerError(f"port: must be an integer in 1..65535; got {port!r}.")
    if not existing_sqlite(url):
        raise TunerError(f"storage: the SQLite file of '{mask_url(url)}' does not exist. Run a study first, or give the storage=URL of an existing one.")
    storage = open_storage(url)
    print(f"Optuna dashboard for {mask_url(url)} at http://{host}:{port}/", file=sys.stderr)
    try:
        run_server(storage, host=host, port=port)
    except OSError as error:
        raise TunerError(f"port: cannot serve on {host}:{port} ({error.strerror}). Pick a free port with port=N.") from None
    return 0


def _best(overrides: Sequence[str], stderr: Console) -> int:
    from tuner.best import best_record, format_best
    from tuner.overrides import parse_overrides
    from tuner.storage import DEFAULT_STORAGE

    options = dict(parse_overrides(overrides))
    unknown = set(options) - {"study", "space", "storage", "format"}
    if unknown:
        raise TunerError(f"'tuner best' accepts study, space, storage and format; got {', '.join(sorted(unknown))}.")
    record = best_record(study=_text(options, "study"), space=_text(options, "space"), storage=str(options.get("storage", DEFAULT_STORAGE)))
    print(format_best(record, str(options.get("format", "json"))))
    return 0


def _report(overrides: Sequence[str], stderr: Console) -> int:
    from tuner.best import load_named_study
    from tuner.overrides import parse_overrides
    from tuner.report import report_path, write_study_report
    from tuner.storage import DEFAULT_STORAGE

    options = dict(parse_overrides(overrides))
    unknown = set(options) - {"study", "space", "comparison", "storage", "out", "results_dir"}
    if unknown:
        raise TunerError(f"'tuner report' accepts study, space, comparison, storage, out and results_dir; got {', '.join(sorted(unknown))}.")
    storage = str(options.get("storage", DEFAULT_STORAGE))
    results_dir = Path(str(options.get("results_dir", "results")))
    if "comparison" in options:
        from tuner.compare import comparison_trials

        name = str(options["comparison"])
        trials = comparison_trials(name, storage)
        print(_write_comparison(name, trials, None, storage, _out_path(options, results_dir / name / "report.html")))
        return 0
    study = load_named_study(study=_text(options, "study"), space=_text(options, "space"), storage=storage)
    print(write_study_report(study, _out_path(options, report_path(results_dir, study.study_name)), storage))
    return 0


def _text(options: dict, key: str) -> str | None:
    """Return an option as text (a study named 2024 is the string '2024'), or None when it is absent."""
    return None if options.get(key) is None else str(options[key])


def _out_path(options: dict, default: Path) -> Path:
    out = Path(str(options["out"])) if "out" in options else default
    if out.is_dir():
        raise TunerError(f"out: '{out}' is a folder; give the path of the HTML file to write, such as out={out / 'report.html'}.")
    return out


def _compare(overrides: Sequence[str], stderr: Console) -> int:
    from tuner.compare import plan_comparison, run_comparison, write_trials_csv

    plan = plan_comparison(overrides)
    first = plan.runs[0][2]
    print(f"Comparison {plan.name}: samplers {', '.join(plan.samplers)}, {plan.repeats} repeats, "
          f"{plan.budget} trials per run, {len(plan.runs)} runs", file=sys.stderr)
    trials = run_comparison(plan, console=stderr)
    folder = first.results_dir
    csv = write_trials_csv(trials, folder)
    report = _write_comparison(plan.name, trials, plan.target, first.storage, folder / "report.html")
    print(f"Trials:   {csv}")
    print(f"Report:   {report}")
    return 0


def _write_comparison(name: str, trials, target: float | None, storage: str, path: Path) -> Path:
    """Analyse a comparison's trials, print the summary and verdict, and write its report."""
    import pandas as pd

    from tuner.compare_report import write_comparison_report
    from tuner.compare_stats import analyse

    comparison = analyse(trials, target)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        print(comparison.summary.to_string(index=False))
    for line in comparison.verdict:
        print(line)
    path.parent.mkdir(parents=True, exist_ok=True)
    comparison.runs.to_csv(path.parent / "runs.csv", index=False)
    return write_comparison_report(name, trials, comparison, storage, path)


_COMMAND_FUNCTIONS = {"run": _run, "show": _show, "spaces": _spaces, "best": _best, "compare": _compare, "report": _report, "dashboard": _dashboard}


def _print_summary(settings, result) -> None:
    counts = result.counts
    print(f"Study:    {result.study_name}")
    print(f"Trials:   {sum(counts.values())} ({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed)")
    print(f"Time:     {result.wall_s:.1f} s")
    if result.stop_reason:
        print(f"Stopped:  {result.stop_reason}")
    if result.best is None:
        print("Best:     no trial completed")
    else:
        best = result.best
        print(f"Best:     trial {best.number}, {settings.metric} = {best.value:.4f}")
        print(f"Params:   {json.dumps(best.params)}")
        if best.test_metrics:
            print("Test:     " + ", ".join(f"{k} = {v:.4f}" for k, v in best.test_metrics.items()))
        else:
            print(f"Test:     not evaluated ({best.note})")
        print(f"Saved:    {result.best_path}")
    if result.report_path is not None:
        print(f"Report:   {result.report_path}")
    print(f"Storage:  {mask_url(settings.storage)}")
    if settings.storage.startswith("sqlite"):
        print(f"Dashboard: optuna-dashboard {_absolute_sqlite(mask_url(settings.storage))}")
    else:
        # The masked URL cannot connect; the user adds the password, or libpq reads it from PGPASSWORD or ~/.pgpass.
        print(f"Dashboard: tuner dashboard storage={mask_url(settings.storage)}")


def _absolute_sqlite(url: str) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(Path(url[len(prefix):]).resolve())
    return url


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuner",
        description="Hyperparameter tuning for PyTorch models with Optuna samplers and Ray Tune trials.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (repeat for debug)")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less log output")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in _COMMANDS.items():
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("overrides", nargs="*", metavar="key=value", help="settings, such as space=adam_medical n_trials=40")
    return parser


def _configure_logging(level: int) -> None:
    levels = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}
    console = Console(stderr=True)
    if console.is_terminal:
        handler: logging.Handler = RichHandler(console=console, show_path=False, show_time=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger.handlers[:] = [handler]
    logger.setLevel(levels[max(-1, min(1, level))])
    logger.propagate = False
    logging.getLogger("objectives").handlers[:] = [handler]
    logging.getLogger("objectives").setLevel(logger.level)
    logging.getLogger("objectives").propagate = False
    if level < 1:
        # Ray's notice that a local cluster uses token authentication (it stays on); -v shows it.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
