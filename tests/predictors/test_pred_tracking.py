"""Metrics against hand-computed values, and the MLflow tracker on a local sqlite store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predictors.tracking import Tracker, flatten, score


def test_score_hand_values() -> None:
    up = np.array([0.0, 0.0, 1.0, 1.0, np.nan])
    fwd = np.array([-0.02, 0.01, 0.03, 0.04, 0.5])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.9])
    r = np.array([-1.0, -2.0, 3.0, 4.0, 9.0])
    s = score(p, r, up, fwd)
    assert s["n"] == 4  # the NaN-label row is skipped
    assert s["auc"] == pytest.approx(0.75)  # pairs (pos>neg): 0.35>0.1, 0.8>0.1, 0.8>0.4; 0.35<0.4
    assert s["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert s["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.6, 0.35, 0.8])))
    assert s["hit_rate"] == pytest.approx(0.75)  # signs: (-,-) (-,+) (+,+) (+,+)
    assert s["ic"] == pytest.approx(0.8)  # ranks r: 2,1,3,4 vs fwd 1,2,3,4 -> 1 - 6*2/(4*15)
    one_class = score(p[:2], r[:2], up[:2], fwd[:2])
    assert np.isnan(one_class["auc"]) and np.isfinite(one_class["brier"])


def test_flatten() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": None}) == {"a.b": "1", "a.c.d": "[1, 2]", "e": "None"}


class _Echo:
    """A stand-in 'fitted model' for the registry round trip (the pyfunc wrapper's API)."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([x[:, 0], 1 - x[:, 0]])


def test_tracker_logs_and_registers(tmp_path: Path) -> None:
    import mlflow.pyfunc
    from mlflow.tracking import MlflowClient

    tr = Tracker(tmp_path, experiment="t", run_name="r")
    tr.log_params({"predictor": {"seed": 3, "models": {"lstm": {"hidden": 8}}}})
    tr.log_metrics({"meta.h1.auc": 0.61, "skip": float("nan")})
    tr.log_metrics({"fold.meta.h1.auc": 0.6}, step=2)
    (tmp_path / "a.json").write_text("{}")
    tr.log_artifact(tmp_path / "a.json")
    uris = tr.log_models({"regime": _Echo()})
    tr.end()
    client = MlflowClient(tracking_uri=tr.uri, registry_uri=tr.uri)
    run = client.get_run(tr.run_id)
    assert run.data.params["predictor.models.lstm.hidden"] == "8"
    assert run.data.metrics["meta.h1.auc"] == pytest.approx(0.61) and "skip" not in run.data.metrics
    assert run.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(tr.run_id)] == ["a.json"]
    versions = client.search_model_versions("name='krakenrl-regime'")
    assert len(versions) == 1 and versions[0].run_id == tr.run_id
    assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "mlartifacts").is_dir()
    old = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tr.uri)
    try:
        loaded = mlflow.pyfunc.load_model(uris["regime"])
    finally:
        mlflow.set_tracking_uri(old)
    np.testing.assert_allclose(loaded.predict(np.array([[0.2], [0.7]])), [[0.2, 0.8], [0.7, 0.3]])
