"""Medical image classification: a CNN trained with the shared loop, with light augmentation."""

from __future__ import annotations

import torch
from torch import nn

from objectives.data import Dataset, Split
from objectives.models import cnn
from objectives.training import MixedPrecision, evaluate_classifier, fit_classifier, place_splits
from tuner.context import TrialContext

AUGMENTATIONS = ("none", "shift", "flip_shift")
MAX_SHIFT = 2  # Pixels; a 28-pixel X-ray tolerates small shifts without losing the lungs.


def train(ctx: TrialContext) -> nn.Module:
    """Build a CNN from the params and train it on the image train split, in channels-last memory format if `ctx.channels_last`."""
    data: Dataset = ctx.data
    params = ctx.params
    channels, side = data.train.x.shape[1], data.train.x.shape[-1]
    model = cnn(
        in_channels=channels,
        n_outputs=data.n_classes,
        depth=int(params.get("depth", 3)),
        width=int(params.get("width", 32)),
        dropout=float(params.get("dropout", 0.0)),
        image_size=side,
    )
    augment = str(params.get("augment", "none"))
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}; got {augment!r}.")
    transform = None if augment == "none" else _augmentation(augment == "flip_shift")
    train_split, val_split = data.train, data.val
    if ctx.channels_last:
        model = model.to(memory_format=torch.channels_last)
        train_split, val_split = _channels_last(train_split), _channels_last(val_split)
    return fit_classifier(ctx, model, train_split, val_split, transform=transform)


def evaluate(model: nn.Module, split: Split, ctx: TrialContext) -> dict[str, float]:
    """Return AUC, accuracy (most probable class) and loss of a trained CNN on one split, in the trial's precision."""
    if ctx.channels_last:
        split = _channels_last(split)
    (split,), batch_device = place_splits([split], ctx.device, ctx.gpu)
    return evaluate_classifier(model.to(ctx.device), split, precision=MixedPrecision(ctx.amp, ctx.device), device=batch_device)


def _augmentation(flip: bool):
    def transform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return augment_batch(images, generator, flip=flip)

    return transform


def augment_batch(images: torch.Tensor, generator: torch.Generator, flip: bool, max_shift: int = MAX_SHIFT) -> torch.Tensor:
    """Shift the whole batch by up to `max_shift` pixels (zero padded) and, if `flip`, mirror half of it.

    One shift per batch keeps this to two tensor operations, so augmentation
    costs little next to the forward pass.
    """
    dx, dy = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=generator))
    shifted = _shift(images, dx, dy, max_shift)
    if not flip:
        return shifted
    mirror = (torch.rand(len(images), generator=generator) < 0.5).to(images.device)
    return torch.where(mirror[:, None, None, None], shifted.flip(-1), shifted)


def _channels_last(split: Split) -> Split:
    return Split(split.x.contiguous(memory_format=torch.channels_last), split.y)


def _shift(images: torch.Tensor, dx: int, dy: int, pad: int) -> torch.Tensor:
    if dx == 0 and dy == 0:
        return images
    padded = nn.functional.pad(images, (pad, pad, pad, pad))
    height, width = images.shape[-2:]
    top, left = pad + dy, pad + dx
    return padded[..., top:top + height, left:left + width]
