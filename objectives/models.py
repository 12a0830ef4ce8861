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
