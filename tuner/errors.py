"""Error types that the CLI turns into one line per problem and an exit code."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class TunerError(Exception):
    """A mistake in the user's input: exit code 2, one line per problem.

    Raised before Ray starts or a study row is written, so nothing is lost.
    """

    exit_code = 2

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class RunFailed(Exception):
    """A run that started but could not finish its work: exit code 1."""

    exit_code = 1


def did_you_mean(value: str, allowed: Iterable[str]) -> str:
    """Return " Did you mean 'x'?" for the nearest allowed name, or ""."""
    names = list(allowed)
    matches = difflib.get_close_matches(str(value), names, n=1, cutoff=0.6)
    if not matches:
        matches = [name for name in names if len(str(value)) >= 3 and name.startswith(str(value))][:1]
    return f" Did you mean '{matches[0]}'?" if matches else ""


def unknown_name(kind: str, value: object, allowed: Iterable[str]) -> str:
    """Format the message for a name that is not one of `allowed`."""
    names = sorted(allowed)
    return (
        f"unknown {kind} '{value}'.{did_you_mean(str(value), names)} "
        f"Allowed: {', '.join(names)}."
    )
