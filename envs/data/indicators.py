"""Causal per-asset indicators shared by the execution model, features and risk layer.

Each function returns a ``(T, N)`` float64 array whose row t uses bars ``<= t`` only,
with NaN during warm-up (never a made-up value). Computed once per market, never in
the step loop.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from envs.data.market import MarketData

_CS_K = 3.0 - 2.0 * np.sqrt(2.0)


def log_returns(close: np.ndarray) -> np.ndarray:
    """Close-to-close log return of bar t over bar t-1; NaN for t=0 and around NaNs."""
    out = np.full_like(close, np.nan, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[1:] = np.log(close[1:] / close[:-1])
    return out


def rolling_mean(x: np.ndarray, window: int, min_periods: int | None = None) -> np.ndarray:
    """Trailing mean over ``window`` bars (NaN-skipping), column by column."""
    frame = pd.DataFrame(x)
    return frame.rolling(window, min_periods=min_periods or window).mean().to_numpy()


def rolling_std(x: np.ndarray, window: int, min_periods: int | None = None) -> np.ndarray:
    """Trailing sample standard deviation over ``window`` bars."""
    frame = pd.DataFrame(x)
    return frame.rolling(window, min_periods=min_periods or window).std().to_numpy()


def true_range(market: MarketData) -> np.ndarray:
    """max(high, prev close) - min(low, prev close); bar 0 uses high - low."""
    prev = np.vstack([market.close[:1], market.close[:-1]])
    hi = np.fmax(market.high, prev)
    lo = np.fmin(market.low, prev)
    return hi - lo


def atr(market: MarketData, window: int = 14) -> np.ndarray:
    """Average true range (simple trailing mean of ``true_range``), in quote currency."""
    return rolling_mean(true_range(market), window)


def corwin_schultz_spread(market: MarketData, window: int = 24) -> np.ndarray:
    """Corwin & Schultz (2012) high-low relative spread estimate, trailing mean over ``window``.

    Bar pair (t-1, t) gives one estimate; negative estimates are set to 0 as the paper
    does. The result is a fraction of price (0.001 = 10 bp) and uses bars <= t only.
    """
    h, lo = market.high, market.low
    with np.errstate(invalid="ignore", divide="ignore"):
        hl2 = np.log(h / lo) ** 2
        beta = np.full_like(h, np.nan)
        beta[1:] = hl2[1:] + hl2[:-1]
        gamma = np.full_like(h, np.nan)
        gamma[1:] = np.log(np.fmax(h[1:], h[:-1]) / np.fmin(lo[1:], lo[:-1])) ** 2
        alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / _CS_K - np.sqrt(gamma / _CS_K)
        s = 2.0 * (np.exp(alpha) - 1.0) / (1.0 + np.exp(alpha))
    s = np.where(np.isnan(s), np.nan, np.maximum(s, 0.0))
    return rolling_mean(s, window, min_periods=max(2, window // 2))


def relative_spread(market: MarketData, window: int = 24, floor: float = 0.0) -> np.ndarray:
    """The market's spread column when it has one, else the Corwin-Schultz estimate; >= floor.

    Warm-up rows (no estimate yet) take ``floor`` so execution always has a number;
    callers that must know about warm-up use ``corwin_schultz_spread`` directly.
    """
    est = market.spread if market.spread is not None else corwin_schultz_spread(market, window)
    return np.fmax(np.nan_to_num(est, nan=floor), floor)
