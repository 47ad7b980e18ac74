"""Everything the execution step reads, precomputed once per market as (T, N) float64 arrays.

A step only gathers rows ``t`` (decision) and ``t + 1`` (execution) from these; nothing
here is recomputed in the loop. Cost inputs that a decision may see (spread estimate,
volatility) use bars ``<= t``; fill inputs (OHLC, volume) are those of bar ``t + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from envs.config import EnvConfig
from envs.data.indicators import log_returns, rolling_std
from envs.data.market import MarketData
from envs.execution.fills import limit_offsets, participation_capacity
from envs.execution.slippage import SlippageModel, make_slippage_model

DEFAULT_SIGMA = 0.01  # hourly volatility used before two returns are known


@dataclass(frozen=True, eq=False)
class ExecArrays:
    tradable: np.ndarray  # (T, N) bool: asset has a live price at bar t (may be decided on)
    price: np.ndarray  # (T, N) decision price: close where tradable, else 1.0
    mark: np.ndarray  # (T, N) last known close (0.0 before listing): marks the portfolio
    exec_ok: np.ndarray  # (T, N) bool: an order may fill inside bar t
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    half_spread: np.ndarray  # (T, N) relative half spread at bar t (`envs.data.spreads`, >= floor / 2)
    sigma: np.ndarray  # (T, N) trailing std of hourly log returns at bar t
    dollar_volume: np.ndarray  # (T, N) volume * close of bar t, 0 where unknown
    capacity: np.ndarray  # (T, N) base units a bar can fill (participation cap), inf if off
    limit_offset: np.ndarray  # (T, N) relative limit distance decided at bar t
    spread_source: tuple[str, ...] = ()  # per asset: column | table | abdi_ranaldo | corwin_schultz


def build_exec_arrays(market: MarketData, config: EnvConfig, slippage: SlippageModel | None = None) -> ExecArrays:
    """The arrays of ``market`` under ``config``; the half spread from ``slippage.spread`` (default: the config's)."""
    finite = np.isfinite(market.open) & np.isfinite(market.high) & np.isfinite(market.low)
    finite &= np.isfinite(market.close)
    tradable = market.tradable & finite
    mark = pd.DataFrame(market.close).ffill().fillna(0.0).to_numpy()
    slippage = make_slippage_model(config) if slippage is None else slippage
    half, spread_sources = slippage.spread.half_spread(market)
    sigma = rolling_std(log_returns(market.close), config.vol_window, min_periods=2)
    sigma = np.nan_to_num(sigma, nan=DEFAULT_SIGMA)
    dollar_volume = np.nan_to_num(market.volume * market.close, nan=0.0)
    arrays = ExecArrays(
        tradable=tradable,
        price=np.where(tradable, market.close, 1.0),
        mark=mark,
        exec_ok=tradable.copy(),
        open=market.open.astype(np.float64),
        high=market.high.astype(np.float64),
        low=market.low.astype(np.float64),
        close=market.close.astype(np.float64),
        half_spread=half,
        sigma=sigma,
        dollar_volume=dollar_volume,
        capacity=participation_capacity(market.volume.astype(np.float64), config.participation_cap),
        limit_offset=limit_offsets(half, config.limit_offset, config.limit_offset_unit),
        spread_source=spread_sources,
    )
    for name in ExecArrays.__dataclass_fields__:
        value = getattr(arrays, name)
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return arrays
