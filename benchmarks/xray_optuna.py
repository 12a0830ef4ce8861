"""The adam_xray search space tuned by a plain Optuna script, as Optuna's PyTorch tutorial writes it.

One process, TPE, MedianPruner with its defaults, batches from a shuffled
DataLoader, torch with its default thread count. The study is in memory.

    python benchmarks/xray_optuna.py --data DATA/pneumoniamnist.npz --workdir /tmp/x --events-out /tmp/x/optuna.json
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import optuna
import torch
from torch.utils.data import DataLoader, TensorDataset

from objectives.data import Dataset
from objectives.images import load_images
from objectives.training import evaluate_classifier

from xray_common import METRIC, EventLog, Training, read_space, side_parser


def suggest(trial: optuna.Trial, specs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Suggest every param of the space file on `trial`."""
    params: dict[str, Any] = {}
    for name, spec in specs.items():
        if spec["type"] == "float":
            params[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
        elif spec["type"] == "int":
            params[name] = trial.suggest_int(name, spec["low"], spec["high"], log=spec.get("log", False))
        else:
            params[name] = trial.suggest_categorical(name, spec["choices"])
    return params


def make_objective(data: Dataset, max_epochs: int, log: EventLog) -> Callable[[optuna.Trial], float]:
    """Return the objective: train a CNN from the suggested params, reporting val_auc every epoch."""
    specs, constants = read_space()

    def objective(trial: optuna.Trial) -> float:
        params = {**constants, **suggest(trial, specs)}
        training = Training(params, data.train, max_epochs)
        loader = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=params["batch_size"], shuffle=True)
        for epoch in range(1, max_epochs + 1):
            training.train_epoch(loader)
            value = evaluate_classifier(training.model, data.val)["auc"]
            log.record(trial.number, epoch, value)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    return objective


def main() -> None:
    args = side_parser(__doc__.splitlines()[0]).parse_args()
    started = time.monotonic()
    torch.manual_seed(args.seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_images({"path": str(args.data)})
    log = EventLog()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed),
                                pruner=optuna.pruners.MedianPruner())
    study.optimize(make_objective(data, args.max_epochs, log), n_trials=args.n_trials)
    states = [trial.state.name for trial in study.trials]
    log.write(args.events_out, "optuna", torch.get_num_threads(), wall_s=time.monotonic() - started,
              counts={state: states.count(state) for state in ("COMPLETE", "PRUNED", "FAIL")})
    print(f"{METRIC} best {log.best():.4f} after {len(study.trials)} trials")


if __name__ == "__main__":
    main()
