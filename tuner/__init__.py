"""tuner: hyperparameter tuning for PyTorch models with Optuna samplers and Ray Tune trials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tuner.errors import RunFailed, TunerError

if TYPE_CHECKING:
    import torch

    from tuner.context import TrialContext, TrialDiverged


def __getattr__(name: str) -> Any:
    # TrialContext imports torch (about 1 s); commands such as `tuner best` never need it.
    if name in ("TrialContext", "TrialDiverged"):
        from tuner import context

        return getattr(context, name)
    raise AttributeError(f"module 'tuner' has no attribute '{name}'")


def load_best(study: str | None = None, space: str | None = None, storage: str = "sqlite:///results/tuner.db") -> dict[str, Any]:
    """Return the best trial of a stored study with its provenance; see `tuner.best.load_best`."""
    from tuner.best import load_best as _load_best

    return _load_best(study=study, space=space, storage=storage)


def make_optimizer(model: torch.nn.Module, best: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Build the torch optimizer of a best config for `model`, as the trials built it.

    Args:
        model: The model whose parameters the optimizer updates.
        best: A record from `load_best` (its "config" is used) or a mapping of
            params such as {"optimizer": "adam", "lr": 1e-3, "beta1": 0.9}.

    Example:
        >>> optimizer = make_optimizer(model, load_best(space="adam_medical"))  # doctest: +SKIP
    """
    from objectives.training import make_optimizer as _make_optimizer

    params = best.get("config", best)
    if "lr" not in params:
        raise TunerError(f"make_optimizer: the config has no 'lr'; got keys {', '.join(sorted(params)) or '(none)'}. Pass a record from load_best or params with lr.")
    return _make_optimizer(model, params)


__all__ = ["RunFailed", "TrialContext", "TrialDiverged", "TunerError", "load_best", "make_optimizer"]
__version__ = "0.1.0"
