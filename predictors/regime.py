"""Market regimes: a deterministic trailing labelling rule and a probabilistic classifier.

The rule turns trailing prices into one of four regimes per asset and hour; it is the
training target on real data, where no true regime is known. The classifier (LightGBM
multiclass on causal features) turns the same information into probabilities, which is
what the env observes. On the synthetic market both are checked against the true regimes.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
import pandas as pd

from envs.config_mapping import MappingConfig
from envs.data.indicators import log_returns
from envs.data.market import MarketData
from envs.errors import ConfigError, DataError
from predictors.features.panel import FeaturePanel

log = logging.getLogger(__name__)

REGIMES: tuple[str, ...] = ("trend", "range", "high_vol", "crash")
TREND, RANGE, HIGH_VOL, CRASH = 0, 1, 2, 3
WARMUP = -1


@dataclass(frozen=True)
class RegimeRuleConfig(MappingConfig):
    """Windows (hourly bars) and thresholds of ``label_regimes``."""

    config_section: ClassVar[str] = "regime_rule"

    crash_window: int = 24  # trailing return horizon of the crash test
    crash_sigma_window: int = 168  # hourly vol measured before the crash window
    crash_k: float = 3.0  # crash when the 24h return < -k * sigma * sqrt(24)
    drawdown_window: int = 72  # trailing high of the drawdown test
    drawdown_threshold: float = 0.15  # crash when close < (1 - x) * trailing high
    vol_window: int = 24  # realised vol of the high-vol test
    vol_lookback: int = 720  # trailing bars whose quantile the current vol is compared to
    vol_quantile: float = 0.8
    vol_min_ratio: float = 1.5  # and at least this multiple of the trailing median vol
    trend_window: int = 168  # window of the momentum t-statistic
    trend_t: float = 1.5  # trend when |t| >= this

    def __post_init__(self) -> None:
        for name in (
            "crash_window",
            "crash_sigma_window",
            "drawdown_window",
            "vol_window",
            "vol_lookback",
            "trend_window",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 2:
                raise ConfigError(f"RegimeRuleConfig.{name}: expected an int >= 2, got {v!r}")
        checks = {
            "crash_k": self.crash_k > 0,
            "drawdown_threshold": 0 < self.drawdown_threshold < 1,
            "vol_quantile": 0 < self.vol_quantile < 1,
            "vol_min_ratio": self.vol_min_ratio >= 0,
            "trend_t": self.trend_t > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"RegimeRuleConfig.{name}: out of range, got {getattr(self, name)!r}")

    @property
    def warmup(self) -> int:
        """Bars of an asset's history needed before the rule gives a label."""
        return max(
            self.crash_window + self.crash_sigma_window,
            self.drawdown_window - 1,
            self.vol_window + self.vol_lookback,
            self.trend_window,
        )


def _roll(x: np.ndarray, window: int, min_periods: int | None = None):  # type: ignore[no-untyped-def]
    return pd.DataFrame(x).rolling(window, min_periods=window if min_periods is None else min_periods)


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full_like(x, np.nan, dtype=np.float64)
    if k < x.shape[0]:
        out[k:] = x[:-k]
    return out


def label_regimes(market: MarketData, config: RegimeRuleConfig = RegimeRuleConfig()) -> np.ndarray:
    """Rule-based regime per bar and asset, ``(T, N)`` int8 in 0..3, -1 during warm-up.

    With r the hourly log returns and every window ending at bar t (bars <= t only):

    - crash (3): the trailing ``crash_window`` log return is below
      ``-crash_k * sigma * sqrt(crash_window)``, sigma being the std of r over the
      ``crash_sigma_window`` bars *before* that window; or close_t is more than
      ``drawdown_threshold`` below the highest close of the last ``drawdown_window`` bars;
    - high_vol (2): the std of r over the last ``vol_window`` bars is above the
      ``vol_quantile`` quantile of that same realised vol over the previous
      ``vol_lookback`` bars and at least ``vol_min_ratio`` times their median;
    - trend (0): the t-statistic of the mean of r over the last
      ``trend_window`` bars, ``mean / (std / sqrt(n))``, has ``|t| >= trend_t``;
    - range (1): none of the above.

    Precedence crash > high_vol > trend > range. -1 until every test has its full window
    (``config.warmup`` bars of the asset's history) and wherever the close is missing.
    """
    c = config
    close = market.close
    r = log_returns(close)
    with np.errstate(invalid="ignore", divide="ignore"):
        logp = np.log(close)
        ret_c = logp - _lag(logp, c.crash_window)
        sigma = _lag(_roll(r, c.crash_sigma_window).std().to_numpy(), c.crash_window)
        crash_ret = ret_c < -c.crash_k * sigma * np.sqrt(c.crash_window)
        high = _roll(close, c.drawdown_window).max().to_numpy()
        crash_dd = close < (1.0 - c.drawdown_threshold) * high
        rv = _roll(r, c.vol_window).std().to_numpy()
        past = _lag(rv, 1)
        q = _roll(past, c.vol_lookback).quantile(c.vol_quantile).to_numpy()
        med = _roll(past, c.vol_lookback).median().to_numpy()
        high_vol = (rv > q) & (rv >= c.vol_min_ratio * med)
        mean = _roll(r, c.trend_window).mean().to_numpy()
        std = _roll(r, c.trend_window).std().to_numpy()
        tstat = mean / (std / np.sqrt(c.trend_window))
        trend = np.abs(tstat) >= c.trend_t
    defined = np.isfinite(ret_c) & np.isfinite(sigma) & np.isfinite(high) & np.isfinite(q) & np.isfinite(mean)
    defined &= np.isfinite(std) & np.isfinite(close)
    out = np.full(close.shape, RANGE, dtype=np.int8)
    out[trend] = TREND
    out[high_vol] = HIGH_VOL
    out[crash_ret | crash_dd] = CRASH
    out[~defined] = WARMUP
    return out


def regime_features(panel: FeaturePanel) -> np.ndarray:
    """``(T, N, F')`` classifier inputs: trend/vol/drawdown-ish features plus market means.

    Own columns (when present in the panel) plus, for a handful of them, the
    cross-asset mean at the same bar (regimes are largely market-wide), and the ratio
    of short to long realised vol. All derived from causal features, so still causal.
    """
    own = [n for n in panel.names if not n.startswith(("hour_", "dow_", "volume_surge", "spread_"))]
    x = panel.values[:, :, [panel.index_of(n) for n in own]]
    extra = []
    vols = sorted((n for n in panel.names if n.startswith("vol_") and n[4:].isdigit()), key=lambda n: int(n[4:]))
    if len(vols) >= 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            extra.append(panel.feature(vols[0]) / panel.feature(vols[-1]))
    cols = [*[panel.feature(n) for n in own], *extra]
    with warnings.catch_warnings():  # all-NaN rows: "mean of empty slice", and NaN is right
        warnings.simplefilter("ignore", RuntimeWarning)
        market_mean = [np.nanmean(col, axis=1, keepdims=True).repeat(col.shape[1], axis=1) for col in cols]
    return np.concatenate([x, *(e[:, :, None] for e in extra), *(m[:, :, None] for m in market_mean)], axis=2)


class RegimeClassifier:
    """LightGBM multiclass over causal features -> p(trend, range, high_vol, crash).

    Always four probability columns in ``REGIMES`` order, even when a class is absent
    from training (``num_class`` is fixed at 4). Rows with a NaN label are dropped;
    NaN features are fine (LightGBM routes them). Deterministic for a given seed.
    """

    DEFAULTS: dict[str, Any] = {  # noqa: RUF012
        "objective": "multiclass",
        "num_class": len(REGIMES),
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 50,
        "feature_fraction": 0.8,
        "lambda_l2": 1.0,
        "num_threads": 1,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }

    def __init__(self, seed: int = 0, num_boost_round: int = 200, balanced: bool = True, **params: Any):
        self.seed = int(seed)
        self.num_boost_round = int(num_boost_round)
        self.balanced = bool(balanced)
        self.params = {**self.DEFAULTS, **params, "seed": self.seed}
        self.booster: lgb.Booster | None = None
        self.n_features: int | None = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> RegimeClassifier:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if X.ndim != 2 or y.shape != (X.shape[0],):
            raise DataError(f"RegimeClassifier.fit: expected X (n, F) and y (n,), got {X.shape} and {y.shape}")
        keep = np.isfinite(y.astype(np.float64)) & (y >= 0)
        if np.any(y[keep] > len(REGIMES) - 1):
            raise DataError(f"RegimeClassifier.fit: expected labels in 0..3, got max {y[keep].max()}")
        X, y = X[keep], y[keep].astype(np.int64)
        if X.shape[0] == 0:
            raise DataError("RegimeClassifier.fit: no labelled rows (all labels are warm-up/NaN)")
        weight = None
        if self.balanced:
            counts = np.bincount(y, minlength=len(REGIMES)).astype(np.float64)
            present = counts > 0
            w_class = np.zeros_like(counts)
            w_class[present] = y.size / (present.sum() * counts[present])
            weight = w_class[y]
        data = lgb.Dataset(X, label=y, weight=weight, free_raw_data=True)
        self.booster = lgb.train(self.params, data, num_boost_round=self.num_boost_round)
        self.n_features = X.shape[1]
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.booster is None:
            raise ConfigError("RegimeClassifier.predict_proba: call fit first")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise DataError(f"RegimeClassifier.predict_proba: expected X (n, {self.n_features}), got {X.shape}")
        p = np.asarray(self.booster.predict(X), dtype=np.float64).reshape(X.shape[0], len(REGIMES))
        return p

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most likely regime index per row."""
        return self.predict_proba(X).argmax(axis=1)
