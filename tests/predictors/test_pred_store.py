"""Prediction store: schema round trip, load_signals alignment, bad stores raise DataError
naming the file and the column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from envs.data.synthetic import generate_synthetic_market
from envs.errors import DataError
from predictors.base import Prediction
from predictors.meta import OOFBlock
from predictors.store import PREDICTION_COLUMNS, PREDICTIONS, REGIMES_FILE, load_signals, read_predictions, write_store
from predictors.walk_forward import Fold, FoldResult

HORIZONS = (1, 4, 24)


def _results(n_bars: int, n_assets: int) -> list[FoldResult]:
    """Two hand-made folds: test blocks [100, 130) and [130, 160), every asset, with meta in fold 1."""
    rng = np.random.default_rng(0)
    out = []
    for k, (start, stop) in enumerate([(100, 130), (130, 160)]):
        t, a = (x.ravel() for x in np.meshgrid(np.arange(start, stop), np.arange(n_assets), indexing="ij"))
        n = t.size
        base = {
            f: Prediction(HORIZONS, rng.uniform(size=(n, 3)), rng.normal(size=(n, 3)) * 0.01)
            for f in ("xgboost", "lightgbm", "random_forest", "lstm", "transformer")
        }
        meta = Prediction(HORIZONS, rng.uniform(size=(n, 3)), rng.normal(size=(n, 3))) if k == 1 else None
        regime = rng.dirichlet(np.ones(4), size=n)
        block = OOFBlock(k, t, a, base, regime, np.zeros((n, 3)), np.zeros((n, 3)), meta, meta_label_end=start - 30)
        fold = Fold(k, start - 90, start - 40, start - 25, start, stop)
        out.append(FoldResult(fold, start - 25, block, {}, {}, regime_train_end=start - 25))
    return out


@pytest.fixture
def store(tmp_path: Path):
    market = generate_synthetic_market(assets=("BTC", "ETH", "SOL"), n_bars=200, seed=1)
    results = _results(market.n_bars, market.n_assets)
    write_store(results, market, tmp_path)
    return market, results, tmp_path


def test_schema_round_trip(store) -> None:
    market, results, path = store
    df = read_predictions(path)
    assert tuple(df.columns) == PREDICTION_COLUMNS
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]" == str(df["train_end"].dtype)
    assert df["horizon"].dtype == np.int64 and set(df["horizon"]) == set(HORIZONS)
    assert set(df["model"]) == {"xgboost", "lightgbm", "random_forest", "lstm", "transformer", "meta"}
    assert len(df) == 5 * 3 * 3 * 60 + 3 * 3 * 30  # families x horizons x assets x rows, + meta in fold 1
    row = df[(df["model"] == "lstm") & (df["horizon"] == 4) & (df["asset"] == "ETH")].iloc[0]
    b = results[0].oof
    i = int(np.nonzero((b.t_idx == 100) & (b.a_idx == 1))[0][0])
    assert row["timestamp"] == pd.Timestamp(int(market.timestamps[100]), unit="s", tz="UTC")
    assert row["p_up"] == b.base["lstm"].p_up[i, 1] and row["fold"] == 0
    assert row["train_end"] == pd.Timestamp(int(market.timestamps[75]), unit="s", tz="UTC")
    reg = pd.read_parquet(path / REGIMES_FILE)
    assert list(reg.columns[:6]) == ["timestamp", "asset", "p_trend", "p_range", "p_high_vol", "p_crash"]
    np.testing.assert_allclose(reg[["p_trend", "p_range", "p_high_vol", "p_crash"]].sum(axis=1), 1.0)


def test_load_signals_alignment(store) -> None:
    market, results, path = store
    signals, names = load_signals(path, market, models=("meta", "xgboost"), horizons=(1, 24))
    assert signals.shape == (200, 3, 2 * 2 * 2 + 4)
    assert names[:4] == ("meta_h1_p_up", "meta_h1_exp_return", "meta_h24_p_up", "meta_h24_exp_return")
    assert names[-4:] == ("regime_p_trend", "regime_p_range", "regime_p_high_vol", "regime_p_crash")
    b1 = results[1].oof
    i = int(np.nonzero((b1.t_idx == 140) & (b1.a_idx == 2))[0][0])
    assert signals[140, 2, 0] == b1.meta.p_up[i, 0]
    assert signals[140, 2, 3] == b1.meta.exp_return[i, 2]
    assert signals[140, 2, names.index("xgboost_h24_p_up")] == b1.base["xgboost"].p_up[i, 2]
    assert signals[140, 2, names.index("regime_p_crash")] == b1.regime[i, 3]
    assert np.isnan(signals[:130, :, 0]).all()  # meta only from fold 1 on
    assert np.isfinite(signals[100:160, :, names.index("xgboost_h1_p_up")]).all()
    assert np.isnan(signals[:100]).all() and np.isnan(signals[160:]).all()
    # a market that is a subset (fewer assets, later start) gets only its own rows
    sub = market.select(["SOL", "BTC"]).slice(120, 200)
    s2, _ = load_signals(path, sub, models=("meta",), horizons=(1,), include_regimes=False)
    assert s2.shape == (80, 2, 2)
    np.testing.assert_array_equal(s2[20, 0, 0], signals[140, 2, 0])


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda df: df.drop(columns=["exp_return"]), "missing column.*exp_return"),
        (lambda df: df.assign(timestamp=df["timestamp"].dt.tz_localize(None)), "column 'timestamp'"),
        (lambda df: df.assign(p_up=df["p_up"] + 1.5), "column 'p_up'"),
        (lambda df: df.assign(model="svm"), "column 'model'"),
        (lambda df: df.assign(horizon=df["horizon"].astype(float)), "column 'horizon'"),
        (lambda df: df.assign(train_end=df["timestamp"] - pd.Timedelta(hours=3)), "column 'train_end'"),
        (lambda df: pd.concat([df, df.iloc[:1]]), "unique keys"),
    ],
)
def test_bad_store_raises_naming_file_and_column(store, mutate, match) -> None:
    market, _, path = store
    f = path / PREDICTIONS
    mutate(pd.read_parquet(f)).to_parquet(f, index=False)
    with pytest.raises(DataError, match=match) as err:
        load_signals(path, market)
    assert PREDICTIONS in str(err.value)


def test_missing_file_and_unknown_request(store, tmp_path: Path) -> None:
    market, _, path = store
    with pytest.raises(DataError, match="not found"):
        load_signals(tmp_path / "nowhere", market)
    with pytest.raises(DataError, match="no rows for model 'meta' horizon 12"):
        load_signals(path, market, horizons=(12,))
    (path / REGIMES_FILE).unlink()
    with pytest.raises(DataError, match=r"regimes\.parquet"):
        load_signals(path, market)
