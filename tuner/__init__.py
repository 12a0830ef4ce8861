"""tuner: hyperparameter tuning for PyTorch models with Optuna samplers and Ray Tune trials."""

from tuner.context import TrialContext, TrialDiverged
from tuner.errors import TunerError


def load_best(study: str | None = None, space: str | None = None, storage: str = "sqlite:///results/tuner.db") -> dict:
    """Return the best params of a stored study; see `tuner.best.load_best`."""
    from tuner.best import load_best as _load_best

    return _load_best(study=study, space=space, storage=storage)


__all__ = ["TrialContext", "TrialDiverged", "TunerError", "load_best"]
__version__ = "0.1.0"
