"""Helpers shared by the benchmark scripts: paths, machine facts, medians, tables and JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCHMARKS_DIR.parent
RESULTS_DIR = Path("results/benchmarks")
DEFAULT_DATA_DIR = Path(os.environ.get("TUNER_DATA_DIR", REPO_DIR.parent / "shared" / "data"))


def machine() -> dict[str, Any]:
    """Return the CPU count, load averages, platform and the versions of Python and the libraries under test.

    The load averages (1, 5 and 15 minutes) are read when the results are
    written. Other jobs on a shared machine raise them and slow every side.
    """
    import optuna
    import ray
    import torch

    return {
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "optuna": optuna.__version__,
        "cuda": torch.cuda.is_available(),
    }


def median(values: Iterable[float | None]) -> float | None:
    """Return the median of the values that are not None, or None when there are none."""
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def rotated(items: Sequence[Any], shift: int) -> list[Any]:
    """Return the items rotated left by `shift`, so that each repeat starts with a different side."""
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows under right-aligned headers; floats get 3 significant decimals and None prints as '-'."""
    text_rows = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(header)), *(len(row[i]) for row in text_rows)) if text_rows else len(str(header))
              for i, header in enumerate(headers)]
    print("  ".join(str(header).rjust(width) for header, width in zip(headers, widths)))
    for row in text_rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write the record, with the machine facts added, as indented JSON; create the folder first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), "command": " ".join(sys.argv), **record}, indent=2) + "\n")
    print(f"Wrote {path}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
