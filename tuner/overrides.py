"""Hydra-style `key=value` overrides, typed by the YAML grammar.

Kept apart from tuner.settings, which imports Ray and torch, so that light
commands such as `tuner best` start fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tuner.errors import TunerError

# Keys whose override value is taken as typed: URLs and paths such as
# sqlite:///:memory: would otherwise be read as YAML mappings.
STRING_KEYS = {"storage", "study", "ray.address", "data.path", "data.dir", "data.loader", "data.time_format", "objective", "evaluate", "predict", "warm_start", "results_dir", "space"}


def parse_overrides(overrides: Sequence[str]) -> list[tuple[str, Any]]:
    """Parse Hydra-style `key=value` tokens; values are typed by the YAML grammar."""
    pairs = []
    for token in overrides:
        if "=" not in token or token.startswith("="):
            raise TunerError(f"invalid argument '{token}': expected key=value, such as n_trials=40 or params.lr.high=0.01.")
        key, raw = token.split("=", 1)
        if key in STRING_KEYS:
            pairs.append((key, raw))
            continue
        try:
            value = OmegaConf.select(OmegaConf.from_dotlist([token]), key)
        except (OmegaConfBaseException, yaml.YAMLError) as error:
            raise TunerError(f"invalid override '{token}': {str(error).splitlines()[0]}") from None
        value = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        if key == "data" and not isinstance(value, Mapping):
            key = "data.name"
        elif key in ("sampler", "pruner") and not isinstance(value, Mapping):
            # A new sampler or pruner name drops the file's settings for the old one.
            value = {"name": value}
        pairs.append((key, value))
    # Whole sampler or pruner replacements go first, so that their dotted settings apply on top.
    return sorted(pairs, key=lambda pair: pair[0] not in ("sampler", "pruner"))
