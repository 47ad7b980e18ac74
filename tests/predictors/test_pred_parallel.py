"""The walk-forward through the executor: the prediction store of a 12-asset, one-year market
with all five families is the same, byte for byte, under serial, joblib (2 workers) and Ray
(2 workers); a failing (fold, model) task stops the run naming it, and the rerun fits only the
tasks that had not finished, ending with the same store."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import pytest

import predictors.walk_forward as wf_module
from envs.data.synthetic import DEFAULT_UNIVERSE, generate_synthetic_market
from envs.errors import ConfigError
from krakenrl.parallel import TaskError
from predictors.pipeline import run_walk_forward
from predictors.store import prediction_frame, regime_frame

TINY = {
    "xgboost": {"n_estimators": 10, "max_depth": 3, "n_jobs": 1},
    "lightgbm": {"n_estimators": 10, "num_leaves": 7, "n_jobs": 1},
    "random_forest": {"n_estimators": 4, "max_depth": 4, "n_jobs": 1},
    "lstm": {"window": 4, "hidden": 4, "epochs": 1, "threads": 1},
    "transformer": {"window": 4, "d_model": 4, "heads": 1, "epochs": 1, "threads": 1},
}
CFG: dict[str, Any] = {
    "horizons": [1, 4, 24], "round_trip_fee": 0.008, "features": {}, "regime_rule": {},
    # 4 folds over the year: 1-month training windows, test blocks of ~3 months
    "walk_forward": {"train_bars": 720, "min_train_bars": 720, "retrain_every": 2200, "embargo": 24},
    "predictor": {"families": list(TINY), "models": TINY, "meta": {"min_rows": 300},
                  "regime": {"num_boost_round": 5}, "seed": 0},
}


@pytest.fixture(scope="module")
def market():
    assets = tuple(DEFAULT_UNIVERSE)[:12]
    assert len(assets) == 12
    return generate_synthetic_market(assets=assets, n_bars=8760, seed=7, edge_strength=1.0)


def _store_bytes(results: list[Any], market: Any) -> tuple[str, str]:
    """SHA-256 of the prediction and regime tables after a stable sort: every column's bytes."""
    out = []
    for frame in (prediction_frame(results, market.timestamps, market.assets),
                  regime_frame(results, market.timestamps, market.assets)):
        keys = [c for c in ("timestamp", "asset", "horizon", "model") if c in frame.columns]
        frame = frame.sort_values(keys, kind="stable").reset_index(drop=True)
        h = hashlib.sha256(repr([(c, str(t)) for c, t in frame.dtypes.items()]).encode())
        for col in frame.columns:
            series = frame[col]
            values = (series.astype("int64") if isinstance(series.dtype, pd.DatetimeTZDtype) else series).to_numpy()
            h.update("\0".join(values).encode() if values.dtype == object else values.tobytes())
        out.append(h.hexdigest())
    return out[0], out[1]


@pytest.fixture(scope="module")
def serial_run(market):
    run = run_walk_forward(market, CFG)
    assert len(run.folds) == 4 and run.tasks is not None and run.tasks.tasks == 4 * 6
    assert {"meta", *TINY} == set(prediction_frame(run.results, market.timestamps, market.assets)["model"])
    digest = _store_bytes(run.results, market)
    assert _store_bytes(run.results[:-1], market) != digest  # the digest sees the rows
    return run, digest


@pytest.mark.parametrize("name", ["joblib", "ray"])
def test_store_is_byte_identical_under_every_executor(name, market, serial_run, request) -> None:
    if name == "ray":
        request.getfixturevalue("local_ray")
    run = run_walk_forward(market, {**CFG, "executor": {"name": name, "workers": 2}})
    assert run.tasks is not None and (run.tasks.executor, run.tasks.workers, run.tasks.computed) == (name, 2, 24)
    assert _store_bytes(run.results, market) == serial_run[1]
    last = run.results[-1].models  # the last fold's fitted models come back from the workers
    assert last is not None and set(last) == {*TINY, "regime", "meta"}


def test_a_failing_task_is_named_and_the_rerun_fits_only_the_rest(market, serial_run, tmp_path, monkeypatch) -> None:
    real = wf_module.fit_family
    calls: list[tuple[int, str]] = []

    def broken(ds, task):
        calls.append((task.fold.index, task.name))
        if (task.fold.index, task.name) == (1, "lstm"):
            raise RuntimeError("out of memory (simulated)")
        return real(ds, task)

    monkeypatch.setattr(wf_module, "fit_family", broken)
    # the first two folds only: the same folds (and meta history) as the first two of the full run
    cfg = {**CFG, "walk_forward": {**CFG["walk_forward"], "max_folds": 2},
           "executor": {"name": "serial", "max_retries": 1}}
    with pytest.raises(TaskError, match=r"fold 1 / lstm failed after 1 retries: RuntimeError: out of memory"):
        run_walk_forward(market, cfg, cache_dir=tmp_path)
    done = 6 + 3  # fold 0's six tasks, fold 1's xgboost, lightgbm, random_forest (serial order)
    monkeypatch.setattr(wf_module, "fit_family", real)
    run = run_walk_forward(market, cfg, cache_dir=tmp_path)
    assert run.tasks is not None and (run.tasks.cached, run.tasks.computed) == (done, 12 - done)
    assert calls.count((1, "lstm")) == 2  # the first attempt and its one retry
    assert _store_bytes(run.results, market) == _store_bytes(serial_run[0].results[:2], market)
    assert not any(tmp_path.rglob("*.pkl"))  # a finished run leaves no task results behind


def test_bad_executor_config_fails_before_any_fitting(market) -> None:
    with pytest.raises(ConfigError, match=r"executor\.workers"):
        run_walk_forward(market, {**CFG, "executor": {"name": "joblib", "workers": 0}})
