"""scripts/train_predictors.py end to end on a tiny synthetic market with predictor=fast:
the store, metrics, plots and the MLflow run (params, metrics, registered models)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

from envs.data.synthetic import generate_synthetic_market
from predictors.store import load_signals

ROOT = Path(__file__).resolve().parents[2]
OVERRIDES = [
    "predictor=fast",
    "data.n_bars=1000",
    "data.assets=[BTC,ETH,SOL]",
    "data.edge_strength=1.0",
    "walk_forward.min_train_bars=300",
    "walk_forward.train_bars=400",
    "walk_forward.retrain_every=150",
    "walk_forward.max_folds=4",
    "predictor.meta.min_rows=100",
    "+features.vol_windows=[24,72]",
    "+features.vol_pct_window=720",
    "+features.vol_pct_min_periods=168",
    "+features.beta_windows=[72,168]",
    "+regime_rule.vol_lookback=168",
    "+regime_rule.trend_window=72",
    "+regime_rule.crash_sigma_window=72",
    "progress=false",
]


def _script():
    spec = importlib.util.spec_from_file_location("train_predictors", ROOT / "scripts" / "train_predictors.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_predictors_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train_predictors", overrides=OVERRIDES)
    summary = _script().run(cfg, tmp_path)
    for name in ("predictions.parquet", "regimes.parquet", "metrics.json", "auc_per_fold.png",
                 "feature_importance.png", "feature_importance.csv", "mlflow.db"):  # fmt: skip
        assert (tmp_path / name).is_file(), name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["overall"]) == {"xgboost", "lightgbm", "random_forest", "lstm", "transformer", "meta"}
    assert 0.0 <= metrics["overall"]["meta"]["1"]["auc"] <= 1.0
    assert len(metrics["folds_meta"]) == 4 and metrics["timing_s"]["walk_forward"] > 0
    assert "horizon" in capsys.readouterr().out  # the printed table

    market = generate_synthetic_market(assets=("BTC", "ETH", "SOL"), n_bars=1000, edge_strength=1.0)
    signals, names = load_signals(tmp_path, market, models=("meta", "lightgbm"))
    assert names[0] == "meta_h1_p_up"
    assert signals.shape == (1000, 3, 2 * 2 * 3 + 4) and np.isfinite(signals).any()
    pred = pd.read_parquet(tmp_path / "predictions.parquet")
    assert ((pred["timestamp"] - pred["train_end"]).dt.total_seconds() / 3600 > 24).all()

    import mlflow.pyfunc
    from mlflow.tracking import MlflowClient

    uri = summary["mlflow"]["tracking_uri"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(summary["mlflow"]["run_id"])
    assert run.data.params["predictor.models.lstm.hidden"] == "8"
    assert run.data.params["data.n_bars"] == "1000"
    assert "meta.h1.auc" in run.data.metrics and "xgboost.h24.ic" in run.data.metrics
    history = client.get_metric_history(run.info.run_id, "fold.lightgbm.h1.auc")
    assert sorted(m.step for m in history) == [0, 1, 2, 3]
    registered = {m.name for m in client.search_registered_models()}
    assert {"krakenrl-meta", "krakenrl-lightgbm", "krakenrl-lstm", "krakenrl-regime"} <= registered
    # the registered LightGBM model serves the same p_up as the stored last-fold rows
    old = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        model = mlflow.pyfunc.load_model("models:/krakenrl-lightgbm/1")
    finally:
        mlflow.set_tracking_uri(old)
        mlflow.set_registry_uri(old)
    from predictors.features import FeatureConfig, compute_features

    panel = compute_features(market, FeatureConfig(vol_windows=(24, 72), vol_pct_window=720,
                                                   vol_pct_min_periods=168, beta_windows=(72, 168)))  # fmt: skip
    last = pred[(pred["model"] == "lightgbm") & (pred["fold"] == 3) & (pred["horizon"] == 1)].iloc[:5]
    t = [market.bar_index(int(ts.timestamp())) for ts in last["timestamp"]]
    a = [market.index_of(x) for x in last["asset"]]
    served = model.predict(panel.values[t, a])
    np.testing.assert_allclose(served[:, 0], last["p_up"].to_numpy())

    # the store plugs into the env's observation: row t of the signal block is the prediction for bar t
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    import envs  # noqa: F401  (registers KrakenSpot-v0)

    env = gym.make("KrakenSpot-v0", market=market, signals=signals, signal_names=names, episode_hours=50,
                   start_mode="fixed", start=str(last["timestamp"].iloc[0]))  # fmt: skip
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        t_now = env.unwrapped.snapshot().t
        expected = np.clip(np.nan_to_num(signals[t_now], nan=0.0), -10.0, 10.0).astype(np.float32)
        np.testing.assert_array_equal(obs["signals"][:, :-1], expected)
        np.testing.assert_array_equal(obs["signals"][:, -1], np.ones(3, np.float32))  # availability flag
        assert np.isfinite(signals[t_now]).all()  # inside the predicted period every channel is present
        obs, *_ = env.step(env.action_space.sample())
