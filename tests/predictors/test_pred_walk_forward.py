"""Walk-forward folds (WF-1 property), and the driver: every stored row is out of sample,
and a fold's models are bit-identical when every bar after its training end is garbage."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.data.market import MarketData
from envs.data.synthetic import generate_synthetic_market
from envs.errors import ConfigError
from predictors.features import FeatureConfig
from predictors.meta import MetaConfig
from predictors.regime import RegimeRuleConfig
from predictors.store import prediction_frame, regime_frame
from predictors.walk_forward import (
    ModelSpec,
    WalkForward,
    WalkForwardConfig,
    dataset_from_market,
    inputs,
    label_usable,
    make_folds,
)

HORIZONS = (1, 4, 24)
FEATURES = FeatureConfig(
    vol_windows=(24, 72), vol_pct_window=720, vol_pct_min_periods=168, volume_window=72,
    spread_median_window=72, beta_windows=(72, 168), breadth_window=72,
)  # fmt: skip
RULE = RegimeRuleConfig(crash_sigma_window=72, vol_lookback=168, trend_window=72)
TINY = {
    "xgboost": {"n_estimators": 15, "max_depth": 3},
    "lightgbm": {"n_estimators": 15, "num_leaves": 7},
    "random_forest": {"n_estimators": 5, "max_depth": 4},
    "lstm": {"window": 4, "hidden": 4, "epochs": 1},
    "transformer": {"window": 4, "d_model": 4, "heads": 1, "epochs": 1},
}
SPEC = ModelSpec(tuple(TINY), TINY, MetaConfig(min_rows=100), {"num_boost_round": 5}, seed=3)
WF = WalkForwardConfig(train_bars=400, min_train_bars=300, retrain_every=150, embargo=24, val_fraction=0.15)


# ----------------------------------------------------------------- WF-1 property
@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    n_bars=st.integers(200, 3000),
    first_bar=st.integers(0, 300),
    train_bars=st.integers(30, 1500),
    min_train=st.integers(49, 1000),
    every=st.integers(1, 800),
    extra=st.integers(0, 48),
    val_fraction=st.sampled_from([0.0, 0.1, 0.15, 0.3]),
    scheme=st.sampled_from(["rolling", "expanding"]),
)
def test_folds_purge_embargo_monotone_disjoint(
    n_bars: int, first_bar: int, train_bars: int, min_train: int, every: int, extra: int, val_fraction: float,
    scheme: str,
) -> None:  # fmt: skip
    embargo = max(HORIZONS) + extra
    cfg = WalkForwardConfig(scheme, train_bars, min_train, every, embargo, val_fraction)
    folds = make_folds(n_bars, cfg, HORIZONS, first_bar)
    t = np.arange(n_bars)
    prev_stop = None
    for f in folds:
        assert first_bar <= f.train_start <= f.val_start <= f.label_cutoff + 1 <= f.test_start < f.test_stop <= n_bars
        if prev_stop is not None:  # monotone, disjoint, contiguous test blocks
            assert f.test_start == prev_stop
        prev_stop = f.test_stop
        for h in HORIZONS:
            for part in ("fit", "val"):
                used = t[label_usable(t, h, f, part)]
                # every training label end precedes every test bar by more than the embargo
                assert np.all(used + h < f.test_start - embargo)
                assert np.all(used >= f.train_start)
            fit = t[label_usable(t, h, f, "fit")]
            assert np.all(fit + h < f.val_start)  # purge between fit rows and the validation slice


def test_bad_fold_configs_raise() -> None:
    with pytest.raises(ConfigError, match="embargo"):
        make_folds(1000, WalkForwardConfig(embargo=4), HORIZONS)
    with pytest.raises(ConfigError, match="scheme"):
        make_folds(1000, WalkForwardConfig(scheme="anchored"), HORIZONS)
    with pytest.raises(ConfigError, match="val_fraction"):
        make_folds(1000, WalkForwardConfig(val_fraction=0.7), HORIZONS)


# ------------------------------------------------------------------ driver runs
def _garbage_after(market: MarketData, cutoff: int, seed: int = 99) -> MarketData:
    """Every bar after ``cutoff`` replaced by an unrelated random walk (volumes too)."""
    rng = np.random.default_rng(seed)
    T, N = market.n_bars, market.n_assets
    n = T - cutoff - 1
    close = market.close.copy()
    close[cutoff + 1 :] = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.05, size=(n, N)), axis=0))
    open_ = market.open.copy()
    open_[cutoff + 1 :] = close[cutoff:-1]
    high, low = market.high.copy(), market.low.copy()
    high[cutoff + 1 :] = np.maximum(open_, close)[cutoff + 1 :] * 1.03
    low[cutoff + 1 :] = np.minimum(open_, close)[cutoff + 1 :] * 0.97
    vol = market.volume.copy()
    vol[cutoff + 1 :] = rng.uniform(1, 1e6, size=(n, N))
    spread = None if market.spread is None else market.spread.copy()
    if spread is not None:
        spread[cutoff + 1 :] = rng.uniform(1e-4, 1e-2, size=(n, N))
    return replace(market, open=open_, high=high, low=low, close=close, volume=vol, spread=spread, trades=None
                   if market.trades is None else market.trades.copy())  # fmt: skip


@pytest.fixture(scope="module")
def clean_run():
    torch.set_num_threads(1)
    market = generate_synthetic_market(assets=("BTC", "ETH", "SOL"), n_bars=1150, seed=5, edge_strength=1.0)
    ds, _, _ = dataset_from_market(market, HORIZONS, 0.008, FEATURES, RULE)
    folds = make_folds(market.n_bars, WF, HORIZONS, int(ds.t_idx.min()))
    results = WalkForward(ds, SPEC, keep_models=True).run(folds)
    return market, ds, folds, results


def test_every_stored_row_is_out_of_sample(clean_run) -> None:
    """Contract 2: the producing fold's train_end + embargo < the row's bar, for every row."""
    market, _, folds, results = clean_run
    assert len(folds) >= 4
    pred = prediction_frame(results, market.timestamps, market.assets)
    reg = regime_frame(results, market.timestamps, market.assets)
    for df in (pred, reg):
        gap_h = (df["timestamp"] - df["train_end"]).dt.total_seconds() / 3600
        assert len(df) > 0 and (gap_h > WF.embargo).all()
        assert (df["train_start"] <= df["train_end"]).all()
    assert set(pred["model"]) == {*TINY, "meta"}
    assert "meta" not in set(pred.loc[pred["fold"] == 0, "model"])  # no out-of-fold history yet
    assert "meta" in set(pred.loc[pred["fold"] == len(folds) - 1, "model"])
    for r in results:
        ts = r.oof.t_idx
        assert r.train_end + WF.embargo < ts.min() and r.train_end <= r.fold.label_cutoff
        assert r.oof.meta_label_end + WF.embargo < ts.min()


def test_fold_models_ignore_everything_after_train_end(clean_run) -> None:
    """Truncation: rerun folds 0..k on a market whose bars after fold k's label cutoff are
    garbage; fold k's fitted models (families, regime classifier, meta-learner) give
    bit-identical predictions on the same inputs, and earlier rows of the store are equal."""
    market, ds, folds, results = clean_run
    k = 3
    cutoff = folds[k].label_cutoff
    bad = _garbage_after(market, cutoff)
    ds_bad, _, _ = dataset_from_market(bad, HORIZONS, 0.008, FEATURES, RULE)
    assert not np.allclose(ds_bad.values[cutoff + 30], ds.values[cutoff + 30], equal_nan=True)  # really garbage
    folds_bad = make_folds(bad.n_bars, WF, HORIZONS, int(ds_bad.t_idx.min()))
    assert folds_bad[: k + 1] == folds[: k + 1]
    res_bad = WalkForward(ds_bad, SPEC, keep_models=True).run(folds_bad[: k + 1])
    assert res_bad[k].train_end == results[k].train_end
    test_rows = np.nonzero((ds.t_idx >= folds[k].test_start) & (ds.t_idx < folds[k].test_stop))[0]
    clean_models, bad_models = results[k].models, res_bad[k].models
    assert clean_models is not None and bad_models is not None
    base = {}
    for fam in TINY:
        X = inputs(ds, test_rows, clean_models[fam].window)
        a, b = clean_models[fam].predict(X), bad_models[fam].predict(X)
        np.testing.assert_array_equal(a.p_up, b.p_up)
        np.testing.assert_array_equal(a.exp_return, b.exp_return)
        base[fam] = a
    Xr = ds.regime_values[ds.t_idx[test_rows], ds.a_idx[test_rows]]
    np.testing.assert_array_equal(clean_models["regime"].predict_proba(Xr), bad_models["regime"].predict_proba(Xr))
    regime = clean_models["regime"].predict_proba(Xr)
    assert clean_models["meta"].fitted
    ma, mb = clean_models["meta"].predict(base, regime), bad_models["meta"].predict(base, regime)
    np.testing.assert_array_equal(ma.p_up, mb.p_up)
    np.testing.assert_array_equal(ma.exp_return, mb.exp_return)
    # stored out-of-fold rows up to the cutoff are unchanged as well
    a = prediction_frame(results[:k], market.timestamps, market.assets)
    b = prediction_frame(res_bad[:k], market.timestamps, market.assets)
    cut = np.datetime64(int(market.timestamps[cutoff]), "s")
    a, b = a[a["timestamp"].dt.tz_localize(None) <= cut], b[b["timestamp"].dt.tz_localize(None) <= cut]
    assert len(a) > 0 and len(a) == len(b)
    np.testing.assert_array_equal(a[["p_up", "exp_return"]].to_numpy(), b[["p_up", "exp_return"]].to_numpy())
