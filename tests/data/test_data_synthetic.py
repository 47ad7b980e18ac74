"""The synthetic market: determinism, bar realism, regimes that differ, a findable edge.

Statistical margins used below (each stated where asserted):
- regimes: over 3 years of bars, BTC hourly vol in high_vol and crash is >= 1.5x the vol in
  trend and range; the mean hourly return is > 0 in trend and < 0 in crash with |t| > 2.
- edge: a logistic fit of next-hour up/down on the documented 4-hour momentum signal, fit on
  the first half of a year and scored on the second half (12 assets pooled, ~52k rows,
  AUC standard error ~0.003): edge_strength=1 gives AUC in [0.55, 0.60] and accuracy > 2
  points above always guessing the majority class; the null market gives
  |AUC - 0.5| < 0.015 (5 standard errors) and accuracy < 1 point above the majority class.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from envs.data.indicators import log_returns
from envs.data.pairs import load_pairs
from envs.data.synthetic import (
    DEFAULT_UNIVERSE,
    MOMENTUM_BARS,
    REGIME_NAMES,
    _plant_edge,
    generate_synthetic_market,
)
from envs.errors import ConfigError

YEAR = 8760
TREND, RANGE, HIGH_VOL, CRASH = range(4)


@pytest.fixture(scope="module")
def year_null():
    return generate_synthetic_market(seed=7, n_bars=YEAR)


@pytest.fixture(scope="module")
def year_edge():
    return generate_synthetic_market(seed=7, n_bars=YEAR, edge_strength=1.0)


def test_same_seed_is_bit_for_bit_and_other_seed_differs() -> None:
    a = generate_synthetic_market(seed=3, n_bars=2000, edge_strength=0.7, edge_horizon=3)
    b = generate_synthetic_market(seed=3, n_bars=2000, edge_strength=0.7, edge_horizon=3)
    c = generate_synthetic_market(seed=4, n_bars=2000, edge_strength=0.7, edge_horizon=3)
    assert a.equals(b)
    assert not a.equals(c)
    assert not np.array_equal(a.close, c.close)


def test_edge_uses_the_same_draws_as_the_null_market() -> None:
    """edge_strength changes the planted term only: same regimes, same shocks at bar 1."""
    null = generate_synthetic_market(seed=5, n_bars=500)
    edge = generate_synthetic_market(seed=5, n_bars=500, edge_strength=1.0)
    assert np.array_equal(null.regimes, edge.regimes)
    # Before any signal exists (first MOMENTUM_BARS bars) the paths are identical.
    assert np.array_equal(null.close[: MOMENTUM_BARS + 1], edge.close[: MOMENTUM_BARS + 1])
    assert not np.array_equal(null.close, edge.close)


@pytest.mark.parametrize("horizon", [1, 3])
def test_planted_term_uses_only_past_closes(horizon: int) -> None:
    """Bar t's planted term = coef * sigma_t * mean of z over the last H momenta, where
    momentum at bar u is the realised sum of returns u-3..u (i.e. log close_u / close_u-4)."""
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 0.01, size=(300, 3))
    sigma = rng.uniform(0.005, 0.02, size=(300, 3))
    v = np.array([0.01, 0.02, 0.005])
    r = _plant_edge(base, sigma, v, coef=0.5, horizon=horizon)
    z = np.zeros_like(r)
    for u in range(MOMENTUM_BARS, 300):
        z[u] = np.clip(r[u - MOMENTUM_BARS + 1 : u + 1].sum(axis=0) / (2.0 * v), -3.0, 3.0)
    for t in range(1, 300):
        past = z[max(0, t - horizon) : t]
        expected = 0.5 * sigma[t] * past.sum(axis=0) / horizon
        np.testing.assert_allclose(r[t] - base[t], expected, rtol=1e-9, atol=1e-15)


def test_shapes_dtypes_and_metadata(year_null) -> None:
    m = year_null
    n, k = YEAR, len(DEFAULT_UNIVERSE)
    assert m.assets == DEFAULT_UNIVERSE
    assert m.timestamps.dtype == np.int64 and m.timestamps.shape == (n,)
    assert m.timestamps[0] == 1_640_995_200  # 2022-01-01T00:00:00Z
    assert np.all(np.diff(m.timestamps) == 3600)
    for name in ("open", "high", "low", "close", "volume", "trades", "spread"):
        arr = getattr(m, name)
        assert arr.dtype == np.float64 and arr.shape == (n, k), name
        assert np.all(np.isfinite(arr)), name
    assert m.tradable.all() and not m.filled.any()
    assert m.regimes is not None and m.regimes.dtype == np.int8
    assert set(np.unique(m.regimes)) == set(range(len(REGIME_NAMES)))
    assert np.all(m.trades >= 1) and np.array_equal(m.trades, np.round(m.trades))
    assert m.pairs == {a: load_pairs()[a] for a in DEFAULT_UNIVERSE}
    # realistic starting levels
    assert m.open[0, m.index_of("BTC")] == pytest.approx(40_000, rel=0.01)
    assert m.open[0, m.index_of("XLM")] == pytest.approx(0.2, rel=0.01)


def test_start_as_unix_seconds_and_unknown_asset() -> None:
    m = generate_synthetic_market(assets=["BTC", "FOO"], n_bars=48, start=1_700_000_000 // 3600 * 3600)
    assert m.timestamps[0] == 1_700_000_000 // 3600 * 3600
    assert set(m.pairs) == {"BTC"}  # FOO has no Kraken metadata, still generated
    assert np.all(m.close > 0)


def test_ohlc_consistent_and_positive(year_edge) -> None:
    m = year_edge
    assert np.all(m.low > 0)
    assert np.all(m.high >= np.maximum(m.open, m.close))
    assert np.all(m.low <= np.minimum(m.open, m.close))
    gap = np.abs(np.log(m.open[1:] / m.close[:-1]))
    assert gap.max() < 0.01 and np.median(gap) < 1e-4  # open = previous close up to a tiny gap
    assert np.all(m.volume > 0) and np.all(m.spread > 0)


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_regimes_differ_in_volatility_and_drift(seed: int) -> None:
    m = generate_synthetic_market(assets=["BTC", "ETH"], seed=seed, n_bars=3 * YEAR)
    r = log_returns(m.close)[1:, 0]
    reg = m.regimes[1:]
    vol = {s: r[reg == s].std() for s in range(4)}
    assert min(vol[HIGH_VOL], vol[CRASH]) >= 1.5 * max(vol[TREND], vol[RANGE]), vol

    def t_stat(s: int) -> float:
        x = r[reg == s]
        return float(x.mean() / x.std(ddof=1) * np.sqrt(x.size))

    assert t_stat(TREND) > 2.0, t_stat(TREND)
    assert t_stat(CRASH) < -2.0, t_stat(CRASH)
    # crash is short-lived: its mean spell is under a quarter of a trend spell
    change = np.flatnonzero(np.diff(m.regimes.astype(int)) != 0) + 1
    starts = np.r_[0, change]
    lengths = np.diff(np.r_[starts, m.regimes.size])
    labels = m.regimes[starts]
    spell = {s: lengths[labels == s].mean() for s in range(4)}
    assert spell[CRASH] < 0.25 * spell[TREND], spell


def test_volume_tracks_absolute_return(year_null) -> None:
    m = year_null
    r = np.abs(log_returns(m.close)[1:])
    dollars = (m.close * m.volume)[1:]
    for i, asset in enumerate(m.assets):
        rank_r = np.argsort(np.argsort(r[:, i]))
        rank_v = np.argsort(np.argsort(dollars[:, i]))
        rho = np.corrcoef(rank_r, rank_v)[0, 1]
        assert rho > 0.2, (asset, rho)


def test_spread_wider_in_volatile_regimes(year_null) -> None:
    m = year_null
    for i, asset in enumerate(m.assets):
        calm = m.spread[np.isin(m.regimes, [TREND, RANGE]), i].mean()
        wild = m.spread[np.isin(m.regimes, [HIGH_VOL, CRASH]), i].mean()
        assert wild > 1.3 * calm, (asset, calm, wild)


def _momentum_auc(m) -> tuple[float, float]:
    """Out-of-sample AUC, and accuracy minus the majority-class rate, of
    logistic(next-hour up ~ 4h momentum), 12 assets pooled."""
    lc = np.log(m.close)
    mom = np.full_like(lc, np.nan)
    mom[MOMENTUM_BARS:] = lc[MOMENTUM_BARS:] - lc[:-MOMENTUM_BARS]  # known at bar t's close
    nxt = np.full_like(lc, np.nan)
    nxt[:-1] = lc[1:] - lc[:-1]
    half = lc.shape[0] // 2
    mom = mom / np.nanstd(mom[:half], axis=0)  # per-asset scale from the training half only

    def rows(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = mom[a:b].ravel(), nxt[a:b].ravel()
        ok = np.isfinite(x) & np.isfinite(y) & (y != 0)
        return x[ok, None], (y[ok] > 0).astype(int)

    x_tr, y_tr = rows(0, half)
    x_te, y_te = rows(half, lc.shape[0])
    model = LogisticRegression().fit(x_tr, y_tr)
    auc = roc_auc_score(y_te, model.predict_proba(x_te)[:, 1])
    acc = float((model.predict(x_te) == y_te).mean())
    majority = max(y_te.mean(), 1.0 - y_te.mean())
    return float(auc), acc - majority


def test_planted_edge_is_found_out_of_sample(year_edge) -> None:
    auc, excess = _momentum_auc(year_edge)
    print(f"edge_strength=1: OOS AUC {auc:.4f}, accuracy - majority rate {excess:+.4f}")
    assert 0.55 <= auc <= 0.60
    assert excess > 0.02


def test_null_market_has_no_momentum_edge(year_null) -> None:
    auc, excess = _momentum_auc(year_null)
    print(f"edge_strength=0: OOS AUC {auc:.4f}, accuracy - majority rate {excess:+.4f}")
    assert abs(auc - 0.5) < 0.015
    assert excess < 0.01


def test_edge_horizon_spreads_the_signal() -> None:
    m = generate_synthetic_market(seed=11, n_bars=YEAR, edge_strength=1.0, edge_horizon=4)
    auc, _ = _momentum_auc(m)
    assert auc > 0.53


def test_generation_time_one_year_twelve_assets() -> None:
    t0 = time.perf_counter()
    m = generate_synthetic_market(n_bars=YEAR, edge_strength=1.0)
    elapsed = time.perf_counter() - t0
    print(f"synthetic market 12 assets x {YEAR} bars (edge on): {elapsed:.3f} s")
    assert m.n_bars == YEAR
    assert elapsed < 5.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_bars": 1}, "n_bars"),
        ({"start": "2022-01-01T00:30:00Z"}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"assets": ["BTC", "BTC"]}, "assets"),
        ({"assets": []}, "assets"),
        ({"garch_alpha": 0.2, "garch_beta": 0.85}, "garch_alpha"),
        ({"tail_dof": 2.0}, "tail_dof"),
        ({"edge_horizon": 0}, "edge_horizon"),
        ({"regime_persistence": 0.0}, "regime_persistence"),
        ({"edge_strength": float("nan")}, "edge_strength"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        generate_synthetic_market(**{"n_bars": 10, **kwargs})


def test_market_slices_and_selects_cleanly(year_null) -> None:
    sub = year_null.select(["ETH", "BTC"]).slice(10, 20)
    assert sub.close.shape == (10, 2) and sub.regimes is not None and sub.regimes.shape == (10,)
    assert dataclasses.replace(sub).equals(sub)


def test_a_market_cut_at_end_is_the_prefix_of_the_uncut_one() -> None:
    """Training (data.end) and a later evaluation (a later end) see the same history."""
    from envs.data.synthetic import generate_synthetic_market as gen

    full = gen(n_bars=2000, seed=5, edge_strength=1.0)
    cut = gen(n_bars=2000, seed=5, edge_strength=1.0, end="2022-02-10T00:00:00Z")
    assert cut.n_bars == 40 * 24 + 1
    for name in ("open", "high", "low", "close", "volume", "spread"):
        np.testing.assert_array_equal(getattr(cut, name), getattr(full, name)[: cut.n_bars])


def test_drift_scale_one_is_the_default_market_and_zero_removes_the_drift() -> None:
    from envs.data.synthetic import generate_synthetic_market as gen

    np.testing.assert_array_equal(gen(n_bars=500).close, gen(n_bars=500, drift_scale=1.0).close)
    assert not np.array_equal(gen(n_bars=500).close, gen(n_bars=500, drift_scale=0.0).close)
    with pytest.raises(ConfigError, match="drift_scale"):
        gen(n_bars=50, drift_scale=-1.0)
