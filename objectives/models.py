"""Model families built from a trial's params."""

from __future__ import annotations

from torch import nn


def mlp(n_features: int, n_outputs: int, depth: int, width: int, dropout: float) -> nn.Sequential:
    """Build an MLP of `depth` hidden blocks (Linear, ReLU, Dropout) and a linear head."""
    layers: list[nn.Module] = []
    size = n_features
    for _ in range(depth):
        layers += [nn.Linear(size, width), nn.ReLU(), nn.Dropout(dropout)]
        size = width
    layers.append(nn.Linear(size, n_outputs))
    return nn.Sequential(*layers)


def cnn(in_channels: int, n_outputs: int, depth: int, width: int, dropout: float, image_size: int) -> nn.Sequential:
    """Build a CNN of `depth` conv blocks (Conv 3x3, BatchNorm, ReLU, 2x2 max-pool) and a linear head.

    Channels double from `width` at each block; pooling stops once the
    feature map is 2 pixels wide. Global average pooling and dropout come
    before the head.
    """
    layers: list[nn.Module] = []
    channels, side = in_channels, image_size
    for block in range(depth):
        out = width * 2 ** block
        layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
        if side >= 4:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        channels = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, n_outputs)]
    return nn.Sequential(*layers)
