"""Shared plumbing of the tabular families: one classifier and one regressor per horizon.

A family subclass only says how to build and fit one head (``_fit_head``); this class
drops NaN-label rows per horizon, falls back to a constant head when a horizon has too
few labels (or one class), and averages feature importances over heads.
"""

from __future__ import annotations

import logging
from typing import Any, Self

import numpy as np

from predictors.base import Prediction, Predictor, Targets, finite_rows

log = logging.getLogger(__name__)

MIN_ROWS = 50  # fewer labelled rows than this -> constant head


class ConstantHead:
    """Predicts the training mean: used when a horizon has too few labels or one class."""

    def __init__(self, value: float) -> None:
        self.value = float(value)
        self.feature_importances_ = None

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(X.shape[0], self.value)


class TabularPredictor(Predictor):
    """Per-horizon classifier (p_up) + regressor (exp_return) on ``(n, F)`` rows."""

    window = 1

    def __init__(self, horizons: tuple[int, ...], seed: int = 0) -> None:
        super().__init__(horizons, seed)
        self.classifiers: dict[int, Any] = {}
        self.regressors: dict[int, Any] = {}

    def _fit_head(self, kind: str, X: np.ndarray, y: np.ndarray, Xv: np.ndarray | None, yv: np.ndarray | None) -> Any:
        """Fit one head; ``kind`` is "clf" or "reg"; ``Xv``/``yv`` None when no validation rows."""
        raise NotImplementedError

    def fit(self, X_train: np.ndarray, y_train: Targets, X_val: np.ndarray, y_val: Targets) -> Self:
        self._check_fit_inputs(X_train, y_train, X_val, y_val)
        for h in self.horizons:
            up, ret = y_train[h]
            keep = finite_rows(up, ret)
            upv, retv = y_val[h]
            keep_v = finite_rows(upv, retv)
            X, Xv = X_train[keep], X_val[keep_v]
            for kind, y, yv, store in (
                ("clf", up[keep], upv[keep_v], self.classifiers),
                ("reg", ret[keep], retv[keep_v], self.regressors),
            ):
                degenerate = len(y) < MIN_ROWS or (kind == "clf" and np.unique(y).size < 2)
                if degenerate:
                    log.info("%s h=%d %s: %d labelled rows, constant head", self.name, h, kind, len(y))
                    store[h] = ConstantHead(np.mean(y) if len(y) else (0.5 if kind == "clf" else 0.0))
                    continue
                usable_val = len(yv) >= MIN_ROWS and (kind == "reg" or np.unique(yv).size == 2)
                store[h] = self._fit_head(kind, X, y, Xv if usable_val else None, yv if usable_val else None)
        return self

    def _proba(self, head: Any, X: np.ndarray) -> np.ndarray:
        if isinstance(head, ConstantHead):
            return head.predict(X)
        return head.predict_proba(X)[:, 1]

    def predict(self, X: np.ndarray) -> Prediction:
        self._check_predict_input(X)
        p = np.column_stack([self._proba(self.classifiers[h], X) for h in self.horizons])
        r = np.column_stack([np.asarray(self.regressors[h].predict(X), dtype=np.float64) for h in self.horizons])
        return Prediction(self.horizons, np.clip(p.astype(np.float64), 0.0, 1.0), r)

    def feature_importances(self) -> np.ndarray | None:
        parts = []
        for head in (*self.classifiers.values(), *self.regressors.values()):
            imp = getattr(head, "feature_importances_", None)
            if imp is not None and np.sum(imp) > 0:
                imp = np.asarray(imp, dtype=np.float64)
                parts.append(imp / imp.sum())
        return np.mean(parts, axis=0) if parts else None
