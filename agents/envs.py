"""Envs for training and evaluation, built from one market, its signals, the env config and the risk limits.

Training: `training_vec_env` (a `KrakenSpotVectorEnv` with ``autoreset_mode="disabled"`` in
`risk.RiskVectorWrapper`, the episode range limited to the training period). Evaluation:
`evaluation_env` (one `KrakenSpotEnv` in `risk.RiskWrapper`, one episode from the first to
the last bar of the period, started at a fixed bar). Both always have the risk layer
outermost (contract 4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.pipeline import Period
from envs.config import EnvConfig
from envs.data.market import MarketData
from envs.kraken_spot import KrakenSpotEnv
from envs.vector import KrakenSpotVectorEnv
from risk import RiskVectorWrapper, RiskWrapper
from risk.limits import RiskLimits


def _with(config: EnvConfig, **changes: Any) -> EnvConfig:
    """``config`` with ``changes``; a key `EnvConfig` does not have is a ValueError naming it."""
    names = {f.name for f in dataclasses.fields(config)}
    missing = sorted(set(changes) - names)
    if missing:
        raise ValueError(f"EnvConfig has no field(s) {missing}")
    return dataclasses.replace(config, **changes)


def training_vec_env(
    market: MarketData,
    signals: np.ndarray | None,
    names: Sequence[str] | None,
    config: EnvConfig,
    limits: RiskLimits,
    period: Period,
    n_envs: int,
    episode_hours: int,
    action_mode: str = "weights",
) -> RiskVectorWrapper:
    """``n_envs`` accounts starting at random bars inside ``period`` (seeded by the caller's reset)."""
    cfg = _with(config, start=period.start_iso, end=period.end_iso, episode_hours=episode_hours, start_mode="random",
                action_mode=action_mode)
    env = KrakenSpotVectorEnv(n_envs, market=market, config=cfg, signals=signals, signal_names=names,
                              autoreset_mode="disabled")
    return RiskVectorWrapper(env, limits)


def evaluation_env(
    market: MarketData,
    signals: np.ndarray | None,
    names: Sequence[str] | None,
    config: EnvConfig,
    limits: RiskLimits,
    period: Period,
    action_mode: str = "weights",
    record_history: bool = False,
) -> RiskWrapper:
    """One account over the whole ``period``: starts at its first bar, ends at its last."""
    cfg = _with(config, start=period.start_iso, end=period.end_iso, episode_hours=max(period.end - period.start, 1),
                start_mode="fixed", record_history=record_history, action_mode=action_mode)
    return RiskWrapper(KrakenSpotEnv(market=market, config=cfg, signals=signals, signal_names=names), limits)


__all__ = ["evaluation_env", "training_vec_env"]
