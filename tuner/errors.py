"""Error types that the CLI turns into one line per problem and an exit code."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class TunerError(Exception):
    """A mistake in the user's input: exit code 2, one line per problem.

    Raised before the study row is created, so a rejected run writes nothing.
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
    text = str(value)
    matches = difflib.get_close_matches(text, names, n=1, cutoff=0.75)
    if not matches and len(text) >= 3:
        # A prefix either way is a likely slip: "tabular" for "tabular_classifier", "integer" for "int".
        matches = [name for name in names if name.startswith(text) or text.startswith(name)][:1]
    return f" Did you mean '{matches[0]}'?" if matches else ""


def unknown_name(kind: str, value: object, allowed: Iterable[str]) -> str:
    """Format the message for a name that is not one of `allowed`."""
    names = sorted(allowed)
    return (
        f"unknown {kind} '{value}'.{did_you_mean(str(value), names)} "
        f"Allowed: {', '.join(names)}."
    )
