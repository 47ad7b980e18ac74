"""What every Hydra entry point in ``scripts/`` shares: checked instantiation, loud failures, the outputs line.

A `envs.errors.KrakenRLError` (bad data, bad config value, an overlapping evaluation
period) exits with status 2 and its message on stderr, without a traceback: it is the
user's input that is wrong, and the message names what. The last line on stdout is
``outputs: <folder>`` (ARCHITECTURE.md).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from envs.errors import ConfigError, KrakenRLError

T = TypeVar("T")


def build(node: Any, cls: type[T], key: str) -> T:
    """``hydra.utils.instantiate(node)``, checked to be a ``cls``; a ConfigError naming ``key`` otherwise."""
    from hydra.utils import instantiate

    obj = instantiate(node)
    if not isinstance(obj, cls):
        raise ConfigError(f"{key}: expected a config that builds {cls.__name__}, got {type(obj).__name__}")
    return obj


def run_job(job: Callable[[DictConfig, Path], Any], cfg: DictConfig) -> None:
    """Run ``job(cfg, out_dir)`` in the Hydra output folder; exit 2 naming a KrakenRLError."""
    logging.basicConfig(level=logging.WARNING)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        job(cfg, out_dir)
    except KrakenRLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"outputs: {out_dir}")


__all__ = ["build", "run_job"]
