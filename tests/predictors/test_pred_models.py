"""Interface contract of the five predictor families (fit/predict shapes, probabilities,
determinism, NaN labels, scalers fitted on training rows only) and the sequence windows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from envs.errors import ConfigError, DataError
from predictors.base import Prediction, Standardizer
from predictors.models import FAMILIES, make_model
from predictors.models.sequences import build_windows, resolve_device

HORIZONS = (1, 4, 24)
TINY: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 20},
    "lightgbm": {"n_estimators": 20},
    "random_forest": {"n_estimators": 8, "min_samples_leaf": 5, "max_samples": 0.8},
    "lstm": {"window": 6, "hidden": 8, "epochs": 15, "patience": 15, "batch_size": 32},
    "transformer": {"window": 6, "d_model": 8, "heads": 2, "epochs": 15, "patience": 15, "batch_size": 32},
}


def _data(seed: int = 0, T: int = 260, N: int = 3, F: int = 5):
    """A (T, N, F) panel whose feature 0 drives the forward return, pooled into rows."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(T, N, F))
    t_idx, a_idx = (a.ravel() for a in np.meshgrid(np.arange(T), np.arange(N), indexing="ij"))
    signal = values[t_idx, a_idx, 0]
    y = {}
    for h in HORIZONS:
        ret = 0.01 * signal + 0.01 * rng.normal(size=t_idx.size)
        up = (ret > 0).astype(float)
        y[h] = (up, ret)
    return values, t_idx, a_idx, y


def _split(family: str, seed: int = 0):
    values, t_idx, a_idx, y = _data(seed)
    model = make_model(family, HORIZONS, seed=0, params=TINY[family])

    def X(rows: np.ndarray) -> np.ndarray:
        if model.window == 1:
            return values[t_idx[rows], a_idx[rows]]
        return build_windows(values, t_idx[rows], a_idx[rows], model.window)

    tr, va, te = (np.nonzero(m)[0] for m in (t_idx < 160, (t_idx >= 184) & (t_idx < 210), t_idx >= 234))
    ys = [{h: (a[r], b[r]) for h, (a, b) in y.items()} for r in (tr, va, te)]
    return model, (X(tr), ys[0], X(va), ys[1]), X(te), ys[2]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_contract_shapes_probabilities_determinism(family: str) -> None:
    model, fit_args, X_test, y_test = _split(family)
    pred = model.fit(*fit_args).predict(X_test)
    assert isinstance(pred, Prediction)
    assert pred.horizons == HORIZONS
    assert pred.p_up.shape == pred.exp_return.shape == (X_test.shape[0], 3)
    assert np.isfinite(pred.p_up).all() and np.isfinite(pred.exp_return).all()
    assert (pred.p_up >= 0).all() and (pred.p_up <= 1).all()
    # it learned something: both heads rank the planted signal (a broken head would not)
    assert roc_auc_score(y_test[1][0], pred.p_up[:, 0]) > 0.6
    assert np.corrcoef(pred.exp_return[:, 0], y_test[1][1])[0, 1] > 0.3
    # same seed, same data -> bit-identical predictions (torch with one thread too)
    model2, fit_args2, X_test2, _ = _split(family)
    pred2 = model2.fit(*fit_args2).predict(X_test2)
    np.testing.assert_array_equal(pred.p_up, pred2.p_up)
    np.testing.assert_array_equal(pred.exp_return, pred2.exp_return)
    imp = model.feature_importances()
    if model.window == 1:
        assert imp is not None and imp.shape == (5,) and abs(imp.sum() - 1) < 1e-9
        assert int(np.argmax(imp)) == 0  # the planted feature matters most


@pytest.mark.parametrize("family", ["lightgbm", "lstm"])
def test_nan_labels_drop_rows_for_that_horizon_only(family: str) -> None:
    model, (X, y, Xv, yv), X_test, _ = _split(family)
    up24, ret24 = y[24]
    y = dict(y)
    odd = np.arange(up24.size) % 2 == 0
    y[24] = (np.where(odd, np.nan, up24), np.where(odd, np.nan, ret24))
    pred = model.fit(X, y, Xv, yv).predict(X_test)
    assert np.isfinite(pred.p_up).all()


def test_horizon_with_one_class_gets_a_constant_head() -> None:
    model, (X, y, Xv, yv), X_test, _ = _split("xgboost")
    y = dict(y)
    y[4] = (np.zeros_like(y[4][0]), y[4][1])
    pred = model.fit(X, y, Xv, yv).predict(X_test)
    assert np.all(pred.p_up[:, 1] == 0.0)


def test_bad_inputs_raise_named_errors() -> None:
    model, (X, y, Xv, yv), X_test, _ = _split("lightgbm")
    with pytest.raises(DataError, match="before fit"):
        model.predict(X_test)
    with pytest.raises(DataError, match="y_train"):
        model.fit(X, {1: y[1]}, Xv, yv)
    with pytest.raises(DataError, match="2-D"):
        model.fit(X[:, None, :], y, Xv, yv)
    model.fit(X, y, Xv, yv)
    with pytest.raises(DataError, match="expected 5 features, got 4"):
        model.predict(X_test[:, :4])
    with pytest.raises(ConfigError, match="unknown keys"):
        make_model("xgboost", HORIZONS, params={"n_trees": 3})
    with pytest.raises(ConfigError, match="expected one of"):
        make_model("svm", HORIZONS)
    with pytest.raises(ConfigError, match="divisible"):
        make_model("transformer", HORIZONS, params={"d_model": 10, "heads": 3})
    with pytest.raises(ConfigError, match="device"):
        resolve_device("tpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_build_windows_is_causal_and_padded() -> None:
    values = np.arange(10 * 2 * 3, dtype=np.float64).reshape(10, 2, 3)
    w = build_windows(values, np.array([0, 5, 9]), np.array([1, 0, 1]), window=4)
    assert w.shape == (3, 4, 3)
    np.testing.assert_array_equal(w[1], values[2:6, 0])  # rows 2..5, oldest first, ending at t=5
    np.testing.assert_array_equal(w[2], values[6:10, 1])
    assert np.isnan(w[0, :3]).all() and np.array_equal(w[0, 3], values[0, 1])  # padding before bar 0


def test_sequence_scaler_is_fitted_on_training_rows_only() -> None:
    """WF-2: the LSTM's standardiser comes from X_train; garbage validation rows change nothing."""
    model, (X, y, Xv, yv), _, _ = _split("lstm")
    model.fit(X, y, Xv, yv)
    ref = Standardizer().fit(X[:, -1, :])
    np.testing.assert_array_equal(model.scaler.mean, ref.mean)
    np.testing.assert_array_equal(model.scaler.std, ref.std)
    model2, (X2, y2, Xv2, yv2), _, _ = _split("lstm")
    model2.epochs = 1
    model2.fit(X2, y2, Xv2 * 1e6 + 5.0, yv2)
    np.testing.assert_array_equal(model2.scaler.mean, ref.mean)
