"""Feature panel: specs, honest warm-up, hand-checked values, masking, speed.

Causality itself (LEAK-1/2/5) is in test_pred_leak_canaries.py.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import rankdata

from envs.data.market import MarketData
from envs.errors import ConfigError
from predictors.features import FeatureConfig, FeaturePanel, compute_features, feature_names, ols_slope

MONDAY = 1_609_718_400  # 2021-01-04 00:00 UTC, a Monday
UNIVERSE = ("BTC", "ETH", "SOL", "ADA", "XRP", "DOT", "LINK", "LTC", "BCH", "ATOM", "AVAX", "XLM")


def market_from_close(close: np.ndarray, assets: tuple[str, ...] | None = None, seed: int = 0) -> MarketData:
    """OHLCV around a given close matrix: open = previous close, wicks of random size."""
    rng = np.random.default_rng(seed)
    T, N = close.shape
    opn = np.vstack([close[:1], close[:-1]])
    high = np.fmax(opn, close) * np.exp(np.abs(rng.normal(0, 0.002, (T, N))))
    low = np.fmin(opn, close) * np.exp(-np.abs(rng.normal(0, 0.002, (T, N))))
    return MarketData(
        assets=assets or tuple(UNIVERSE[:N]),
        timestamps=MONDAY + 3600 * np.arange(T, dtype=np.int64),
        open=opn,
        high=high,
        low=low,
        close=close,
        volume=np.where(np.isnan(close), np.nan, rng.lognormal(0, 1, (T, N))),
        tradable=np.isfinite(close),
        filled=np.zeros((T, N), dtype=bool),
    )


def random_market(T: int, N: int, seed: int = 0) -> MarketData:
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 0.006, (T, 1))
    r = common * rng.uniform(0.5, 1.5, (1, N)) + rng.normal(0, 0.008, (T, N))
    return market_from_close(100.0 * np.exp(np.cumsum(r, axis=0)), seed=seed)


SMALL = FeatureConfig(
    vol_pct_window=60,
    vol_pct_min_periods=20,
    beta_windows=(30, 50),
    volume_window=10,
    spread_median_window=12,
    breadth_window=10,
)


def test_specs_names_units_and_config_validation() -> None:
    panel = compute_features(random_market(300, 3), SMALL)
    assert panel.names == feature_names(SMALL)
    assert len(set(panel.names)) == len(panel.names)
    for s in panel.specs:
        assert s.doc and s.unit and s.warmup >= 0, s
    assert panel.values.shape == (300, 3, len(panel.specs)) and panel.values.dtype == np.float64
    expected = {
        "ret_1h",
        "ret_4h",
        "ret_24h",
        "mom_slope_24",
        "atr_14",
        "vol_24",
        "vol_168",
        "vol_pct",
        "vol_high",
        "vol_low",
        "volume_surge",
        "spread_widening",
        "breakout_24",
        "zscore_48",
        "beta_ref_168",
        "corr_ref_168",
        "beta_ref_720",
        "corr_ref_720",
        "breadth_above_mean",
        "breadth_pos_24h",
        "hour_sin",
        "hour_cos",
        "dow_sin",
        "dow_cos",
    }
    assert set(feature_names()) == expected
    with pytest.raises(ConfigError, match="vol_pct_min_periods"):
        FeatureConfig(vol_pct_window=100, vol_pct_min_periods=200)
    with pytest.raises(ConfigError, match="vol_windows"):
        FeatureConfig(vol_windows=(24, 24))
    with pytest.raises(ConfigError, match="unknown feature 'nope'"):
        panel.feature("nope")


@pytest.mark.parametrize("config", [SMALL, FeatureConfig()], ids=["small", "default"])
def test_warmup_is_exact_and_marked(config: FeatureConfig) -> None:
    """Each feature is NaN for exactly spec.warmup bars of an asset's history, then always defined."""
    market = random_market(900, 3)
    close = market.close.copy()
    close[:100, 2] = np.nan  # the third asset lists at bar 100
    market = market_from_close(close)
    panel = compute_features(market, config)
    first = np.array([0, 0, 100])
    for j, spec in enumerate(panel.specs):
        for i in range(3):
            col = panel.values[:, i, j]
            start = first[i] + spec.warmup
            if spec.name.startswith("breadth_"):  # market-wide: warm-up counts from the market's first bar
                start = max(first[i], spec.warmup)
            if start >= 900:
                assert np.isnan(col).all(), spec.name
                continue
            assert np.isnan(col[:start]).all(), (spec.name, i)
            assert np.isfinite(col[start:]).all(), (spec.name, i, np.argwhere(np.isnan(col[start:]))[:3])
    max_warm = max(s.warmup for s in panel.specs)
    t = np.arange(900)[:, None]
    np.testing.assert_array_equal(panel.warmup, t < first[None, :] + max_warm)
    assert not (panel.valid() & panel.warmup).any()
    np.testing.assert_array_equal(panel.valid(), ~panel.warmup)  # complete data: valid iff warm


def test_untradable_rows_are_nan_and_values_finite_elsewhere() -> None:
    market = random_market(400, 3, seed=2)
    tradable = market.tradable.copy()
    tradable[250:253, 1] = False
    panel = compute_features(replace(market, tradable=tradable), SMALL)
    assert np.isnan(panel.values[250:253, 1]).all()
    assert np.isfinite(panel.values[250:253, 0]).all()
    assert np.isfinite(panel.values[253:, 1]).all()  # carried-forward prices keep the windows going


def test_hand_checked_values() -> None:
    market = random_market(400, 3, seed=1)
    p = compute_features(market, SMALL)
    c, h, lo, v = market.close, market.high, market.low, market.volume
    lp = np.log(c)
    r = np.diff(lp, axis=0, prepend=np.nan)
    t, i = 333, 1

    def f(name: str) -> float:
        return float(p.feature(name)[t, i])

    assert f("ret_4h") == pytest.approx(np.log(c[t, i] / c[t - 4, i]), rel=1e-12)
    assert f("mom_slope_24") == pytest.approx(np.polyfit(np.arange(24), lp[t - 23 : t + 1, i], 1)[0], rel=1e-9)
    prev = c[t - 14 : t, i]
    tr = np.maximum(h[t - 13 : t + 1, i], prev) - np.minimum(lo[t - 13 : t + 1, i], prev)
    assert f("atr_14") == pytest.approx(tr.mean() / c[t, i], rel=1e-12)
    assert f("vol_24") == pytest.approx(np.std(r[t - 23 : t + 1, i], ddof=1), rel=1e-9)
    assert f("volume_surge") == pytest.approx(v[t, i] / np.median(v[t - 10 : t, i]), rel=1e-12)
    win = lp[t - 47 : t + 1, i]
    assert f("zscore_48") == pytest.approx((lp[t, i] - win.mean()) / win.std(ddof=1), rel=1e-9)
    x, y = r[t - 29 : t + 1, i], r[t - 29 : t + 1, 0]
    cov = np.cov(x, y, ddof=0)
    assert f("beta_ref_30") == pytest.approx(cov[0, 1] / cov[1, 1], rel=1e-8)
    assert f("corr_ref_30") == pytest.approx(np.corrcoef(x, y)[0, 1], rel=1e-8)
    assert (p.feature("beta_ref_30")[100:, 0] == 1.0).all() and (p.feature("corr_ref_50")[100:, 0] == 1.0).all()
    rv = p.feature("vol_24")[:, i]
    window = rv[t - 59 : t + 1]
    assert f("vol_pct") == pytest.approx(rankdata(window)[-1] / 60, rel=1e-12)
    assert f("vol_high") == float(f("vol_pct") >= 0.8) and f("vol_low") == float(f("vol_pct") <= 0.2)
    above = c[t] > c[t - 9 : t + 1].mean(axis=0)
    assert (p.feature("breadth_above_mean")[t] == above.mean()).all()
    assert (p.feature("breadth_pos_24h")[t] == (c[t] > c[t - 24]).mean()).all()
    # calendar: bar t starts at MONDAY + t hours -> hour t % 24, day (t // 24) % 7 (Monday = 0)
    assert f("hour_sin") == pytest.approx(np.sin(2 * np.pi * (t % 24) / 24), abs=1e-12)
    assert f("dow_cos") == pytest.approx(np.cos(2 * np.pi * ((t // 24) % 7) / 7), abs=1e-12)
    assert p.feature("dow_sin")[0, 0] == 0.0 and p.feature("hour_cos")[6, 0] == pytest.approx(0.0, abs=1e-12)


def test_breakout_channel_excludes_current_bar_and_spread_column() -> None:
    close = np.full((60, 2), 100.0)
    close[40, :] = [100.6, 99.4]  # beyond the previous bars' 100.5 / 99.5 channel
    high = np.full_like(close, 100.5)
    low = np.full_like(close, 99.5)
    high[40, 0], low[40, 1] = 101.0, 99.0  # the current bar's own extremes must not widen the channel
    m = replace(market_from_close(close), high=high, low=low)
    b = compute_features(m, SMALL).feature("breakout_24")
    assert b[40].tolist() == [1.0, -1.0] and b[39].tolist() == [0.0, 0.0] and b[41].tolist() == [0.0, 0.0]
    assert np.isnan(b[23]).all() and np.isfinite(b[24]).all()
    spread = np.full((60, 2), 1e-3)
    spread[50, 0] = 3e-3
    s = compute_features(replace(m, spread=spread), SMALL).feature("spread_widening")
    assert s[50, 0] == pytest.approx((3e-3 + 1e-4) / (1e-3 + 1e-4), rel=1e-12)
    assert s[50, 1] == pytest.approx(1.0, rel=1e-12)


def test_reference_asset_fallback_is_first_asset() -> None:
    m = random_market(200, 3).select(["ETH", "SOL", "BTC"])
    m = replace(m, assets=("ETH", "SOL", "ADA"))
    p = compute_features(m, SMALL)
    assert (p.feature("beta_ref_30")[60:, 0] == 1.0).all()
    assert not (p.feature("beta_ref_30")[60:, 1] == 1.0).all()


def test_ols_slope_matches_polyfit_on_a_line() -> None:
    y = np.column_stack([0.5 * np.arange(50.0) + 3.0, np.sin(np.arange(50.0))])
    s = ols_slope(y, 10)
    assert np.isnan(s[:9]).all()
    np.testing.assert_allclose(s[9:, 0], 0.5, rtol=1e-12)
    np.testing.assert_allclose(s[20, 1], np.polyfit(np.arange(10), y[11:21, 1], 1)[0], rtol=1e-9)


def test_one_year_twelve_assets_is_fast() -> None:
    market = random_market(8760, 12, seed=4)
    compute_features(market)  # warm caches / imports
    t0 = time.perf_counter()
    panel: FeaturePanel = compute_features(market)
    elapsed = time.perf_counter() - t0
    print(f"compute_features 8760 x 12: {elapsed:.3f} s, {panel.values.shape}")
    assert elapsed < 3.0
    assert panel.valid()[743:].all()
