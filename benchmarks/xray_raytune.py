"""The adam_xray search space tuned by a plain Ray Tune script, as Ray Tune's PyTorch tutorial writes it.

A function trainable loads the data itself and feeds batches from a shuffled
DataLoader. Ray's stock OptunaSearch (TPE) and ASHAScheduler keep their
defaults apart from the metric and the epoch budget, and each trial gets one
CPU, the default. Only the storage path is set, so that Ray's files go to
the scratch folder instead of ~/ray_results.

    python benchmarks/xray_raytune.py --data DATA/pneumoniamnist.npz --workdir /tmp/x --events-out /tmp/x/raytune.json
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any

import torch
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch
from torch.utils.data import DataLoader, TensorDataset

from objectives.images import load_images
from objectives.training import evaluate_classifier

from xray_common import METRIC, EventLog, Training, read_space, side_parser


def ray_domain(spec: Mapping[str, Any]) -> Any:
    """Translate one param spec of the space file into a Ray Tune search space domain."""
    if spec["type"] == "float":
        return tune.loguniform(spec["low"], spec["high"]) if spec.get("log") else tune.uniform(spec["low"], spec["high"])
    if spec["type"] == "int":
        return tune.randint(spec["low"], spec["high"] + 1)  # Ray's upper bound is exclusive.
    return tune.choice(spec["choices"])


def train_xray(config: dict[str, Any], data_path: str, max_epochs: int) -> None:
    """Train a CNN from the config and report val_auc every epoch."""
    data = load_images({"path": data_path})
    training = Training(config, data.train, max_epochs)
    loader = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=config["batch_size"], shuffle=True)
    for epoch in range(1, max_epochs + 1):
        training.train_epoch(loader)
        value = evaluate_classifier(training.model, data.val)["auc"]
        tune.report({METRIC: value, "epoch": epoch, "torch_threads": torch.get_num_threads()})


class EventRecorder(tune.Callback):
    """Record every result as it reaches the driver."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.torch_threads: int | None = None  # torch.get_num_threads() inside the trials, as they report it.

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.log.record(trial.trial_id, result["epoch"], result[METRIC])
        self.torch_threads = result.get("torch_threads")


def main() -> None:
    args = side_parser(__doc__.splitlines()[0]).parse_args()
    started = time.monotonic()
    specs, constants = read_space()
    log = EventLog()
    recorder = EventRecorder(log)
    tuner = tune.Tuner(
        functools.partial(train_xray, data_path=str(args.data), max_epochs=args.max_epochs),
        param_space={**constants, **{name: ray_domain(spec) for name, spec in specs.items()}},
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            search_alg=OptunaSearch(seed=args.seed),
            scheduler=ASHAScheduler(max_t=args.max_epochs),
            num_samples=args.n_trials,
        ),
        run_config=tune.RunConfig(storage_path=str(args.workdir.resolve() / "ray_results"), callbacks=[recorder]),
    )
    results = tuner.fit()
    log.write(args.events_out, "raytune", recorder.torch_threads, wall_s=time.monotonic() - started,
              counts={"TERMINATED": sum(not result.error for result in results), "ERROR": results.num_errors})
    print(f"{METRIC} best {log.best():.4f} after {len(results)} trials")


if __name__ == "__main__":
    main()
