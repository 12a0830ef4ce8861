"""The shared train/validate loop: in-memory tensors, one report per epoch."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from objectives.data import Split
from tuner.context import TrialContext

logger = logging.getLogger(__name__)

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}
# Share of a trial's GPU memory that its data set may fill. The rest is left
# for the model, its activations and the caching allocator.
DATA_MEMORY_SHARE = 0.5
_warned: set[str] = set()  # Fallback warnings already logged by this process.


class MixedPrecision:
    """torch.autocast on one device and, for float16, a gradient scaler.

    "bf16" and "fp16" run the forward pass and the loss under autocast with
    that dtype, and "none" runs in float32. float16 is for CUDA only, so on
    another device it falls back to float32 with a warning.

    NOTE: the tests run bf16 on CPUs only; the float16 gradient scaler has
    not run on a GPU yet.
    """

    def __init__(self, mode: str, device: torch.device) -> None:
        if mode not in AMP_DTYPES:
            raise ValueError(f"amp must be one of {', '.join(AMP_DTYPES)}; got {mode!r}.")
        dtype = AMP_DTYPES[mode]
        if dtype is torch.float16 and device.type != "cuda":
            _warn_once("fp16", "amp=fp16 needs a CUDA device, but this model trains on %s; training in float32 instead", device)
            dtype = None
        self.device_type = device.type
        self.dtype = dtype
        self.scaler = torch.amp.GradScaler("cuda") if dtype is torch.float16 else None

    def autocast(self) -> contextlib.AbstractContextManager:
        """Return the autocast context of the forward pass, or a no-op in float32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backpropagate `loss` and step the optimizer, scaling the loss for float16."""
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


def place_splits(splits: Sequence[Split], device: torch.device, gpu: float) -> tuple[list[Split], torch.device | None]:
    """Move the splits to `device` once if they fit there, or else leave them in host memory.

    Returns the splits and the device that each batch must be copied to,
    which is None when the splits are already on `device`.
    """
    if device.type != "cuda":
        return [split.to(device) for split in splits], None
    needed = sum(split.x.nbytes + split.y.nbytes for split in splits)
    free, total = torch.cuda.mem_get_info(device)
    if fits_on_gpu(needed, free, total, gpu):
        return [split.to(device) for split in splits], None
    _warn_once("host data", "The data set (%.0f MiB) does not fit in this trial's share of %s (%.0f MiB free); copying each batch to the GPU instead",
               needed / 2**20, device, free / 2**20)
    return list(splits), device


def fits_on_gpu(needed: int, free: int, total: int, gpu: float) -> bool:
    """Return whether `needed` bytes of data may stay on a GPU with `free` of `total` bytes free, for a trial that reserved `gpu` GPUs.

    NOTE: "fits" is an estimate. The data may fill DATA_MEMORY_SHARE of the
    smaller of the free memory and the trial's share of the GPU (`gpu` times
    its total memory, because Ray does not divide memory between trials that
    share a GPU). The model's weights and activations are not measured.
    """
    share = total * min(1.0, gpu) if gpu > 0 else total
    return needed <= DATA_MEMORY_SHARE * min(free, share)


def make_optimizer(model: nn.Module, params: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Build the optimizer named by `params["optimizer"]` (default Adam) from the params."""
    name = params.get("optimizer", "adam")
    weight_decay = params.get("weight_decay", 0.0)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        betas = (params.get("beta1", 0.9), params.get("beta2", 0.999))
        return cls(model.parameters(), lr=params["lr"], betas=betas, weight_decay=weight_decay)
    if name == "sgd":
        momentum = params.get("momentum", 0.0)
        nesterov = bool(params.get("nesterov", False)) and momentum > 0
        return torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be adam, adamw or sgd; got {name!r}.")


CLASS_WEIGHTS = ("none", "balanced")
SCHEDULES = ("constant", "cosine")


def make_schedule(optimizer: torch.optim.Optimizer, name: str, max_epochs: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Return the per-epoch learning-rate schedule: none for "constant", cosine decay to 0 over `max_epochs`."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {name!r}.")
    if name == "constant":
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)


def class_weights(labels: torch.Tensor, mode: str) -> torch.Tensor | None:
    """Return per-class loss weights: None for "none", n / (k * count) for "balanced" (as scikit-learn)."""
    if mode not in CLASS_WEIGHTS:
        raise ValueError(f"class_weight must be one of {', '.join(CLASS_WEIGHTS)}; got {mode!r}.")
    if mode == "none":
        return None
    counts = torch.bincount(labels).float().clamp_min(1)
    return (len(labels) / (len(counts) * counts)).to(labels.device)


def fit_classifier(ctx: TrialContext, model: nn.Module, train: Split, val: Split, transform: Transform | None = None) -> nn.Module:
    """Train `model` for up to `ctx.max_epochs` epochs, reporting validation metrics each epoch.

    Batches are slices of a shuffled index over tensors moved to the device
    once (see `place_splits`), which avoids the per-sample cost of a
    DataLoader. Training runs under `ctx.amp` mixed precision.
    """
    model.to(ctx.device)
    (train, val), batch_device = place_splits([train, val], ctx.device, ctx.gpu)
    precision = MixedPrecision(ctx.amp, ctx.device)
    optimizer = make_optimizer(model, ctx.params)
    weight = class_weights(train.y, ctx.params.get("class_weight", "none"))
    loss_fn = nn.CrossEntropyLoss(
        weight=None if weight is None else weight.to(ctx.device),
        label_smoothing=float(ctx.params.get("label_smoothing", 0.0)),
    )
    batch_size = int(ctx.params.get("batch_size", 64))
    generator = torch.Generator(device="cpu").manual_seed(ctx.seed)
    scheduler = make_schedule(optimizer, ctx.params.get("schedule", "constant"), ctx.max_epochs)

    for epoch in range(1, ctx.max_epochs + 1):
        train_loss = train_epoch(model, optimizer, loss_fn, train, batch_size, generator, transform, precision=precision, device=batch_device)
        if scheduler is not None:
            scheduler.step()
        ctx.report(epoch=epoch, train_loss=train_loss, **evaluate_classifier(model, val, prefix="val_", precision=precision, device=batch_device))
    return model


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    data: Split,
    batch_size: int,
    generator: torch.Generator,
    transform: Transform | None = None,
    precision: MixedPrecision | None = None,
    device: torch.device | None = None,
) -> float:
    """Run one epoch of minibatch training; return the mean training loss.

    `transform(x, generator)` augments each batch on its device, if given.
    With `device`, the data stays where it is and each batch is copied to
    `device`; without it, the data must be on the model's device already.
    """
    model.train()
    order = torch.randperm(len(data), generator=generator)
    if device is None:
        order = order.to(data.x.device)
    total = torch.zeros((), device=device or data.x.device)
    for rows in order.split(batch_size):
        inputs, labels = _batch(data, rows, device)
        if transform is not None:
            inputs = transform(inputs, generator)
        optimizer.zero_grad(set_to_none=True)
        with _autocast(precision):
            loss = loss_fn(model(inputs), labels)
        if precision is None:
            loss.backward()
            optimizer.step()
        else:
            precision.backward_step(loss, optimizer)
        total += loss.detach().float() * len(rows)
    return float(total) / len(data)


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module, data: Split, prefix: str = "", precision: MixedPrecision | None = None, device: torch.device | None = None,
) -> dict[str, float]:
    """Return AUC (one-vs-rest when multi-class), accuracy and cross-entropy loss.

    Accuracy takes the most probable class as the prediction. With `device`,
    the data stays where it is and is copied to `device` in batches.
    """
    model.eval()
    with _autocast(precision):
        logits = model(data.x) if device is None else predict(model, data.x, device=device)
    logits = logits.float()
    loss = nn.functional.cross_entropy(logits, data.y.to(logits.device)).item()
    probabilities = torch.softmax(logits, dim=1).cpu().numpy()
    labels = data.y.cpu().numpy()
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    return {f"{prefix}auc": _auc(probabilities, labels), f"{prefix}acc": accuracy, f"{prefix}loss": loss}


def evaluate_models(model: nn.Module | Sequence[nn.Module], data: Split, prefix: str = "") -> dict[str, float]:
    """Return the metrics of `evaluate_classifier` for one model, or for the ensemble of a list of models.

    An ensemble predicts the mean of its members' probabilities, and its loss is the log loss of that mean.
    """
    if isinstance(model, nn.Module):
        return evaluate_classifier(model, data, prefix)
    return probability_metrics(predict_probabilities(model, data.x), data.y, prefix)


def move_models(model: nn.Module | Sequence[nn.Module], device: torch.device) -> nn.Module | list[nn.Module]:
    """Move one model, or each model of a list, to `device`."""
    if isinstance(model, nn.Module):
        return model.to(device)
    return [member.to(device) for member in model]


@torch.no_grad()
def predict_probabilities(model: nn.Module | Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Return the class probabilities of one model, or the mean probabilities of a list of models (an ensemble)."""
    models = [model] if isinstance(model, nn.Module) else list(model)
    probabilities = []
    for member in models:
        member.eval()
        probabilities.append(torch.softmax(member(x).float(), dim=1))
    return torch.stack(probabilities).mean(dim=0)


def probability_metrics(probabilities: torch.Tensor, labels: torch.Tensor, prefix: str = "") -> dict[str, float]:
    """Return AUC, accuracy and log loss of predicted class probabilities, keyed as evaluate_classifier keys them."""
    # Clamping keeps the log loss finite when a probability underflows to 0.
    log_probabilities = torch.log(probabilities.clamp(min=torch.finfo(probabilities.dtype).tiny))
    loss = nn.functional.nll_loss(log_probabilities, labels).item()
    probabilities_np = probabilities.cpu().numpy()
    labels_np = labels.cpu().numpy()
    accuracy = float(np.mean(probabilities_np.argmax(axis=1) == labels_np))
    return {f"{prefix}auc": _auc(probabilities_np, labels_np), f"{prefix}acc": accuracy, f"{prefix}loss": loss}


def decision_cost(positive_probabilities: torch.Tensor, labels: torch.Tensor, cost_fn: float, cost_fp: float) -> float:
    """Return the mean cost per row of binary decisions taken at the cost-minimising threshold.

    A false negative costs `cost_fn` and a false positive `cost_fp`, so predicting positive
    is cheaper exactly when P(positive) > cost_fp / (cost_fp + cost_fn).
    """
    threshold = cost_fp / (cost_fp + cost_fn)
    predicted = positive_probabilities > threshold
    actual = labels.bool()
    false_negatives = int((actual & ~predicted).sum())
    false_positives = int((~actual & predicted).sum())
    return (false_negatives * cost_fn + false_positives * cost_fp) / len(labels)


def _auc(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Return the ROC AUC, one-vs-rest when multi-class, or NaN when a probability is not finite."""
    if not np.all(np.isfinite(probabilities)):
        return float("nan")
    if probabilities.shape[1] == 2:
        return float(roc_auc_score(labels, probabilities[:, 1]))
    return float(roc_auc_score(labels, probabilities, multi_class="ovr", labels=list(range(probabilities.shape[1]))))


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 4096, device: torch.device | None = None) -> torch.Tensor:
    """Run `model` in eval mode over `x` in batches and concatenate the outputs.

    Batching bounds the memory of wide models on large splits. With
    `device`, each batch is copied there first.
    """
    model.eval()
    return torch.cat([model(batch if device is None else batch.to(device)) for batch in x.split(batch_size)])


def _batch(data: Split, rows: torch.Tensor, device: torch.device | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the inputs and labels of `rows`, copied to `device` if given."""
    if device is None:
        return data.x[rows], data.y[rows]
    return data.x[rows].to(device, non_blocking=True), data.y[rows].to(device, non_blocking=True)


def _autocast(precision: MixedPrecision | None) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext() if precision is None else precision.autocast()


def _warn_once(key: str, message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)
