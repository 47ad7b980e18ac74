"""Observation layout and the per-asset feature panel, precomputed once per market.

The observation is a `Dict` (flattenable with `gymnasium.wrappers.FlattenObservation`):

- ``features``: ``(window, N, F)`` float32, the last ``window`` bars of ``FEATURES`` up to
  and including the decision bar t (causal: row t uses bars <= t only);
- ``signals`` (only when external signals are given): ``(N, K)`` float32, row t of a
  ``T × N × K`` array aligned with the market's timestamps (row t may use data <= t);
- ``portfolio``: ``(N + 3,)`` float32, ``PORTFOLIO_FIELDS``: N asset weights, the cash
  weight, drawdown from peak, hours since the last fill / ``trade_age_scale_hours``
  (saturating at 1).

All values are finite and clipped into their Box bounds; NaN (warm-up, before listing)
becomes 0, and the ``tradable`` feature tells the agent which zeros are missing data.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from envs.config import EnvConfig
from envs.data.indicators import log_returns, rolling_mean, rolling_std
from envs.data.market import MarketData
from envs.errors import DataError

FEATURES = ("log_return_z", "range_z", "log_volume_z", "close_vs_mean_z", "tradable")
PORTFOLIO_FIELDS = ("asset_weights[N]", "cash_weight", "drawdown", "hours_since_trade")
VOLUME_WINDOW = 168
MEAN_WINDOW = 24


def build_features(market: MarketData, config: EnvConfig) -> np.ndarray:
    """(T, N, F) float32 panel of causal, volatility-scaled features, clipped, read-only."""
    clip = config.feature_clip
    ret = log_returns(market.close)
    sigma = rolling_std(ret, config.vol_window, min_periods=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(sigma > 0, sigma, np.nan)
        rng = np.log(market.high / market.low) / scale
        logv = np.log1p(market.volume)
        vz = (logv - rolling_mean(logv, VOLUME_WINDOW, min_periods=2)) / rolling_std(
            logv, VOLUME_WINDOW, min_periods=2
        )
        cm = np.log(market.close / rolling_mean(market.close, MEAN_WINDOW, min_periods=1)) / scale
        cols = [ret / scale, rng, vz, cm, market.tradable.astype(np.float64)]
    panel = np.stack(cols, axis=-1)
    panel = np.clip(np.nan_to_num(panel, nan=0.0, posinf=clip, neginf=-clip), -clip, clip).astype(np.float32)
    panel.flags.writeable = False
    return panel


def prepare_signals(signals: np.ndarray | None, market: MarketData, config: EnvConfig) -> np.ndarray | None:
    """Validate a ``T × N × K`` signal array and make it a clipped, read-only ``T × N × (K+1)`` float32 copy.

    Missing values (NaN, e.g. bars before the first walk-forward fold) become 0, and the
    extra last channel ``signals_available`` is 1.0 where all K inputs were finite, 0.0
    otherwise, so a policy can tell "no prediction" from a prediction of 0 (contract 7).
    """
    if signals is None:
        return None
    arr = np.asarray(signals, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    expected = (market.n_bars, market.n_assets)
    if arr.ndim != 3 or arr.shape[:2] != expected or arr.shape[2] < 1:
        raise DataError(f"signals: expected shape {(*expected, 'K')} aligned with the market, got {arr.shape}")
    clip = config.signal_clip
    values = np.clip(np.nan_to_num(arr, nan=0.0, posinf=clip, neginf=-clip), -clip, clip)
    available = np.isfinite(arr).all(axis=2, keepdims=True)
    out = np.concatenate([values, available], axis=2).astype(np.float32)
    out.flags.writeable = False
    return out


def observation_space(config: EnvConfig, n_assets: int, n_signals: int) -> spaces.Dict:
    f, s = config.feature_clip, config.signal_clip
    parts: dict[str, spaces.Space] = {
        "features": spaces.Box(-f, f, (config.window, n_assets, len(FEATURES)), np.float32),
        "portfolio": spaces.Box(0.0, 1.0, (n_assets + 3,), np.float32),
    }
    if n_signals:
        parts["signals"] = spaces.Box(-s, s, (n_assets, n_signals), np.float32)
    return spaces.Dict(parts)


def portfolio_block(
    weights: np.ndarray, cash: np.ndarray, equity: np.ndarray, peak: np.ndarray, age: np.ndarray, scale: float
) -> np.ndarray:
    """(B, N + 3) float32 portfolio state, clipped to [0, 1]."""
    eq = np.where(equity > 0.0, equity, np.inf)
    cash_w = np.where(equity > 0.0, cash / eq, 1.0)
    dd = 1.0 - equity / peak  # peak >= initial cash > 0
    out = np.concatenate([weights, cash_w[:, None], dd[:, None], (age / scale)[:, None]], axis=1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
