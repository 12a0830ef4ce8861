"""tuner: hyperparameter tuning for PyTorch models with Optuna samplers and Ray Tune trials."""

from tuner.context import TrialContext, TrialDiverged
from tuner.errors import TunerError

__all__ = ["TrialContext", "TrialDiverged", "TunerError"]
__version__ = "0.1.0"
