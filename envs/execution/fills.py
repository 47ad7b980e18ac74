"""Fill rules of bar t+1 for orders decided at the close of bar t (contract 1).

- A limit buy rests at ``close_t · (1 − offset)`` (a sell at ``close_t · (1 + offset)``) and
  fills at its limit price, as maker, only if bar t+1 trades through it: ``low < limit``
  for a buy, ``high > limit`` for a sell (touching is not enough).
- A market order fills at the open of t+1 (a fallback market order at the close of t+1)
  plus slippage, as taker.
- The participation cap bounds what one bar can absorb: ``cap × volume`` base units.
"""

from __future__ import annotations

import numpy as np


def limit_offsets(half_spread_t: np.ndarray, offset: float, unit: str) -> np.ndarray:
    """Relative distance of the limit from the decision close (bps, or units of the spread)."""
    if unit == "bps":
        return np.full_like(half_spread_t, offset * 1e-4)
    return offset * 2.0 * half_spread_t


def limit_prices(close_t: np.ndarray, is_buy: np.ndarray, rel_offset: np.ndarray) -> np.ndarray:
    return close_t * np.where(is_buy, 1.0 - rel_offset, 1.0 + rel_offset)


def traded_through(is_buy: np.ndarray, limit: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """True where bar t+1 trades through the resting limit (NaN bars never fill)."""
    return np.where(is_buy, low < limit, high > limit)


def participation_capacity(volume: np.ndarray, cap: float | None) -> np.ndarray:
    """Base units one bar can fill per order; unlimited without a cap."""
    if cap is None:
        return np.full_like(volume, np.inf)
    return cap * np.nan_to_num(volume, nan=0.0)
