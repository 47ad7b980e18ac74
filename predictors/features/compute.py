"""Causal feature computations: every column at row t uses bars <= t only.

Exactness matters as much as causality: the truncation tests compare a feature computed
on data cut at t with the one computed on the full history at rtol 1e-12. Every rolling
statistic here is therefore either a pandas rolling pass (a sequential add/remove
recurrence, so row t depends on the prefix 0..t only and is bit-identical under
truncation) or an explicit fixed-order sum over the window (the OLS slope).
"""

from __future__ import annotations

import logging
from typing import cast

import numpy as np
import pandas as pd

from envs.data.indicators import atr, corwin_schultz_spread, log_returns, rolling_mean, rolling_std
from envs.data.market import MarketData
from predictors.features.panel import FeatureConfig, FeaturePanel, FeatureSpec

log = logging.getLogger(__name__)

_HOURS_PER_DAY = 24
_DAYS_PER_WEEK = 7


def _rolling(x: np.ndarray, window: int, min_periods: int | None = None):  # type: ignore[no-untyped-def]
    return pd.DataFrame(x).rolling(window, min_periods=window if min_periods is None else min_periods)


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """x[t - k] at row t (k >= 1), NaN for the first k rows: a causal lag."""
    out = np.full_like(x, np.nan, dtype=np.float64)
    if k < x.shape[0]:
        out[k:] = x[:-k]
    return out


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 or either side is NaN (no inf leaks out)."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    ok = np.isfinite(num) & np.isfinite(den) & (den != 0.0)
    np.divide(num, den, out=out, where=ok)
    return out


def ols_slope(y: np.ndarray, window: int) -> np.ndarray:
    """OLS slope of y against bar index over the trailing ``window`` bars (y per bar).

    slope_t = sum_k w_k * (y[t-window+1+k] - y[t]) with w_k = (k - kbar) / sum (k - kbar)^2.
    The weights sum to zero, so subtracting y[t] leaves the slope unchanged and avoids
    cancellation on log prices ~10; the fixed-order loop over k (not over t) keeps row
    t independent of every other row. NaN if any bar in the window is NaN.
    """
    k = np.arange(window, dtype=np.float64)
    w = (k - k.mean()) / np.sum((k - k.mean()) ** 2)
    out = np.zeros_like(y, dtype=np.float64)
    for j in range(window - 1):  # the j = window-1 term is w_j * (y_t - y_t) = 0
        out += w[j] * (_shift(y, window - 1 - j) - y)
    out[: window - 1] = np.nan
    return out


def _ratio_to_trailing_median(x: np.ndarray, window: int, floor: float = 0.0) -> np.ndarray:
    """(x_t + floor) / (median of x over bars t-window..t-1 + floor): today vs the recent past."""
    med = _rolling(_shift(x, 1), window).median().to_numpy()
    return _divide(x + floor, med + floor)


def _breakout(market: MarketData, window: int) -> np.ndarray:
    """+1 if close_t > max(high) of bars t-N..t-1, -1 if close_t < min(low) of them, else 0."""
    hi = _rolling(_shift(market.high, 1), window).max().to_numpy()
    lo = _rolling(_shift(market.low, 1), window).min().to_numpy()
    c = market.close
    out = np.where(c > hi, 1.0, np.where(c < lo, -1.0, 0.0))
    out[np.isnan(hi) | np.isnan(lo) | np.isnan(c)] = np.nan
    return out


def _zscore(logp: np.ndarray, window: int) -> np.ndarray:
    """(log close - trailing mean) / trailing std over ``window`` bars incl. t; 0 on a flat window."""
    roll = _rolling(logp, window)
    mean, std = roll.mean().to_numpy(), roll.std().to_numpy()
    z = _divide(logp - mean, std)
    flat = (std == 0.0) & np.isfinite(logp)
    z[flat] = 0.0
    return z


def _beta_corr(r: np.ndarray, ref: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Rolling beta and correlation of each column's returns to column ``ref``.

    Pairwise-complete: the reference's return is masked wherever the asset's is NaN so
    both moments use the same bars; a full window of such pairs is required. A flat
    window (zero variance) gives beta 0 and correlation 0 rather than a division by 0.
    The reference asset itself gets exactly 1 / 1 where defined.
    """
    x = r
    y = np.where(np.isnan(r), np.nan, r[:, [ref]])
    mx = _rolling(x, window).mean().to_numpy()
    my = _rolling(y, window).mean().to_numpy()
    mxy = _rolling(x * y, window).mean().to_numpy()
    mxx = _rolling(x * x, window).mean().to_numpy()
    myy = _rolling(y * y, window).mean().to_numpy()
    cov = mxy - mx * my
    vx = np.maximum(mxx - mx * mx, 0.0)
    vy = np.maximum(myy - my * my, 0.0)
    beta = _divide(cov, vy)
    corr = np.clip(_divide(cov, np.sqrt(vx * vy)), -1.0, 1.0)
    defined = np.isfinite(cov)
    beta[defined & (vy == 0.0)] = 0.0
    corr[defined & ((vx == 0.0) | (vy == 0.0))] = 0.0
    beta[defined[:, ref], ref] = 1.0
    corr[defined[:, ref], ref] = 1.0
    return beta, corr


def _breadth(flags: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Share of usable assets whose flag is 1 at each t, broadcast to every column."""
    ok = usable & ~np.isnan(flags)
    n = ok.sum(axis=1)
    share = _divide(np.where(ok, flags, 0.0).sum(axis=1), n.astype(np.float64))
    return np.repeat(share[:, None], flags.shape[1], axis=1)


def _reference_index(market: MarketData, config: FeatureConfig) -> int:
    if config.reference_asset in market.assets:
        return market.index_of(config.reference_asset)
    log.info(
        "reference asset %r not in %s: beta/corr use the first asset %r",
        config.reference_asset,
        list(market.assets),
        market.assets[0],
    )
    return 0


def _specs_and_columns(market: MarketData | None, config: FeatureConfig):  # type: ignore[no-untyped-def]
    """Yield (spec, thunk) pairs; thunk() computes the (T, N) column (None market: specs only)."""
    c = config
    m = cast(MarketData, market)  # thunks run only when a market is given
    cache: dict[str, np.ndarray] = {}

    def logp() -> np.ndarray:
        if "logp" not in cache:
            with np.errstate(invalid="ignore", divide="ignore"):
                cache["logp"] = np.log(m.close)
        return cache["logp"]

    def ret1() -> np.ndarray:
        if "ret1" not in cache:
            cache["ret1"] = log_returns(m.close)
        return cache["ret1"]

    def ret(h: int) -> np.ndarray:
        return logp() - _shift(logp(), h)

    def vol(w: int) -> np.ndarray:
        key = f"vol{w}"
        if key not in cache:
            cache[key] = rolling_std(ret1(), w)
        return cache[key]

    def vol_pct() -> np.ndarray:
        if "vol_pct" not in cache:
            roll = _rolling(vol(c.vol_pct_source_window), c.vol_pct_window, c.vol_pct_min_periods)
            cache["vol_pct"] = roll.rank(pct=True).to_numpy()
        return cache["vol_pct"]

    def flag(cond: np.ndarray, source: np.ndarray) -> np.ndarray:
        """1.0 / 0.0 where ``source`` is defined, NaN where it is not."""
        return np.where(np.isnan(source), np.nan, cond.astype(np.float64))

    def spread() -> np.ndarray:
        if m.spread is not None:
            return np.asarray(m.spread, dtype=np.float64)
        return corwin_schultz_spread(m, c.spread_estimator_window)

    def volume() -> np.ndarray:
        return np.where(np.isnan(m.close), np.nan, m.volume)

    def beta_corr(w: int) -> tuple[np.ndarray, np.ndarray]:
        key = f"bc{w}"
        if key not in cache:
            cache[key + "b"], cache[key + "c"] = _beta_corr(ret1(), _reference_index(m, c), w)
        return cache[key + "b"], cache[key + "c"]

    def calendar(period: str, fn) -> np.ndarray:  # type: ignore[no-untyped-def]
        ts = m.timestamps.astype(np.int64)
        if period == "hour":
            phase = (ts // 3600) % _HOURS_PER_DAY / _HOURS_PER_DAY
        else:  # 1970-01-01 was a Thursday: shift so Monday = 0
            phase = ((ts // 86400) + 3) % _DAYS_PER_WEEK / _DAYS_PER_WEEK
        col = fn(2.0 * np.pi * phase.astype(np.float64))
        return np.repeat(col[:, None], m.n_assets, axis=1)

    def usable() -> np.ndarray:
        return m.tradable & np.isfinite(m.close)

    for h in c.momentum_horizons:
        yield (
            FeatureSpec(
                f"ret_{h}h",
                f"log return over the last {h} bar(s): log(close_t / close_t-{h})",
                "log return",
                h,
            ),
            lambda h=h: ret(h),
        )
    yield (
        FeatureSpec(
            f"mom_slope_{c.slope_window}",
            f"OLS slope of log close on bar index over {c.slope_window} bars",
            "log price per hour",
            c.slope_window - 1,
        ),
        lambda: ols_slope(logp(), c.slope_window),
    )
    yield (
        FeatureSpec(
            f"atr_{c.atr_window}",
            f"ATR({c.atr_window}) (simple mean of true range) / close",
            "fraction of price",
            c.atr_window - 1,
        ),
        lambda: atr(m, c.atr_window) / m.close,
    )
    for w in c.vol_windows:
        yield (
            FeatureSpec(f"vol_{w}", f"sample std of hourly log returns over {w} bars", "log return per hour", w),
            lambda w=w: vol(w),
        )
    pct_warm = c.vol_pct_source_window + c.vol_pct_min_periods - 1
    yield (
        FeatureSpec(
            "vol_pct",
            f"percentile rank of vol_{c.vol_pct_source_window} in its trailing "
            f"{c.vol_pct_window} bars (>= {c.vol_pct_min_periods} values), ties averaged",
            "fraction in (0, 1]",
            pct_warm,
        ),
        vol_pct,
    )
    yield (
        FeatureSpec("vol_high", f"1 when vol_pct >= {c.vol_flag_high} else 0", "flag 0/1", pct_warm),
        lambda: flag(vol_pct() >= c.vol_flag_high, vol_pct()),
    )
    yield (
        FeatureSpec("vol_low", f"1 when vol_pct <= {c.vol_flag_low} else 0", "flag 0/1", pct_warm),
        lambda: flag(vol_pct() <= c.vol_flag_low, vol_pct()),
    )
    yield (
        FeatureSpec(
            "volume_surge",
            f"volume_t / median volume of the previous {c.volume_window} bars (NaN when that median is 0)",
            "ratio",
            c.volume_window,
        ),
        lambda: _ratio_to_trailing_median(volume(), c.volume_window),
    )
    cs_warm = max(2, c.spread_estimator_window // 2) + c.spread_median_window
    yield (
        FeatureSpec(
            "spread_widening",
            f"(spread_t + floor) / (median spread of the previous "
            f"{c.spread_median_window} bars + floor), floor {c.spread_floor}; spread column if "
            f"present else Corwin-Schultz over {c.spread_estimator_window} bars (warm-up "
            f"{c.spread_median_window} with a spread column)",
            "ratio",
            cs_warm,
        ),
        lambda: _ratio_to_trailing_median(spread(), c.spread_median_window, c.spread_floor),
    )
    yield (
        FeatureSpec(
            f"breakout_{c.channel_window}",
            f"+1 close above the previous {c.channel_window} bars' highest high, -1 below their lowest low, else 0",
            "signal -1/0/+1",
            c.channel_window,
        ),
        lambda: _breakout(m, c.channel_window),
    )
    yield (
        FeatureSpec(
            f"zscore_{c.zscore_window}",
            f"(log close - its {c.zscore_window}-bar mean) / its {c.zscore_window}-bar std (0 on a flat window)",
            "standard deviations",
            c.zscore_window - 1,
        ),
        lambda: _zscore(logp(), c.zscore_window),
    )
    for w in c.beta_windows:
        yield (
            FeatureSpec(
                f"beta_ref_{w}",
                f"rolling OLS beta of hourly log returns to the reference "
                f"asset ({c.reference_asset}) over {w} bars; 1 for the reference",
                "dimensionless",
                w,
            ),
            lambda w=w: beta_corr(w)[0],
        )
        yield (
            FeatureSpec(
                f"corr_ref_{w}",
                f"rolling correlation of hourly log returns with "
                f"{c.reference_asset} over {w} bars; 1 for the reference",
                "correlation [-1, 1]",
                w,
            ),
            lambda w=w: beta_corr(w)[1],
        )
    yield (
        FeatureSpec(
            "breadth_above_mean",
            f"share of tradable assets whose close is above its {c.breadth_window}-bar mean "
            "(same for every asset; warm-up counted from the market's first bar)",
            "fraction [0, 1]",
            c.breadth_window - 1,
        ),
        lambda: _breadth(flag(m.close > (mean := rolling_mean(m.close, c.breadth_window)), mean), usable()),
    )
    rw = c.breadth_return_window
    yield (
        FeatureSpec(
            f"breadth_pos_{rw}h",
            f"share of tradable assets with a positive {rw}h log return "
            "(same for every asset; warm-up counted from the market's first bar)",
            "fraction [0, 1]",
            rw,
        ),
        lambda: _breadth(flag((r := ret(rw)) > 0.0, r), usable()),
    )
    yield (
        FeatureSpec("hour_sin", "sin(2 pi hour/24), hour of the bar start in UTC", "[-1, 1]", 0),
        lambda: calendar("hour", np.sin),
    )
    yield (
        FeatureSpec("hour_cos", "cos(2 pi hour/24), hour of the bar start in UTC", "[-1, 1]", 0),
        lambda: calendar("hour", np.cos),
    )
    yield (
        FeatureSpec("dow_sin", "sin(2 pi day/7), UTC day of week of the bar start, Monday = 0", "[-1, 1]", 0),
        lambda: calendar("dow", np.sin),
    )
    yield (
        FeatureSpec("dow_cos", "cos(2 pi day/7), UTC day of week of the bar start, Monday = 0", "[-1, 1]", 0),
        lambda: calendar("dow", np.cos),
    )


def feature_specs(config: FeatureConfig = FeatureConfig()) -> tuple[FeatureSpec, ...]:  # noqa: B008
    """Specs of every column ``compute_features`` returns, in column order."""
    return tuple(spec for spec, _ in _specs_and_columns(None, config))


def feature_names(config: FeatureConfig = FeatureConfig()) -> tuple[str, ...]:  # noqa: B008
    """Names of every column ``compute_features`` returns, in column order."""
    return tuple(s.name for s in feature_specs(config))


def _first_bar(close: np.ndarray) -> np.ndarray:
    """Index of each asset's first priced bar (T when it never has one)."""
    has = np.isfinite(close)
    return np.where(has.any(axis=0), has.argmax(axis=0), close.shape[0])


def compute_features(market: MarketData, config: FeatureConfig = FeatureConfig()) -> FeaturePanel:  # noqa: B008
    """The causal feature panel of ``market``: ``values[t, i, f]`` from bars <= t only.

    Rolling windows run over the market's bars as given (gap-filled bars included, at
    their carried-forward prices); rows where the asset is not tradable are then set to
    NaN, as are warm-up rows, so no made-up value ever reaches a model.
    """
    T, N = market.n_bars, market.n_assets
    specs: list[FeatureSpec] = []
    cols: list[np.ndarray] = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for spec, thunk in _specs_and_columns(market, config):
            specs.append(spec)
            cols.append(np.asarray(thunk(), dtype=np.float64))
    values = np.stack(cols, axis=2) if cols else np.empty((T, N, 0))
    values[~(market.tradable & np.isfinite(market.close))] = np.nan
    max_warm = max((s.warmup for s in specs), default=0)
    since_first = np.arange(T)[:, None] - _first_bar(market.close)[None, :]
    warmup = since_first < max_warm
    return FeaturePanel(
        values=values, specs=tuple(specs), timestamps=market.timestamps, assets=market.assets, warmup=warmup
    )
