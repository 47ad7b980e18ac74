"""The one interface every predictor family implements (Qlib's ``Model.fit/predict`` shape).

A predictor sees plain arrays only: rows are pooled (bar, asset) pairs, targets are given
per horizon as ``(up, fwd_return)`` with NaN where the label is unknown or purged. NaN
targets are dropped by each model for that horizon only, so one row set serves every
horizon. ``fit`` gets a training slice and a validation slice that sits at the end of the
training window (purged from it by the horizon) for early stopping; scalers are fitted on
the training slice only (WF-2).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Self

import numpy as np

from envs.errors import ConfigError, DataError

# horizon (hours) -> (up label in {0,1} or NaN, forward log return or NaN), each (n,)
Targets = dict[int, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Prediction:
    """Per-row outputs for every horizon: column j belongs to ``horizons[j]``."""

    horizons: tuple[int, ...]
    p_up: np.ndarray  # (n, H) probability of "up net of the round-trip fee"
    exp_return: np.ndarray  # (n, H) expected forward log return

    def __post_init__(self) -> None:
        shape = (self.p_up.shape[0], len(self.horizons))
        if self.p_up.shape != shape or self.exp_return.shape != shape:
            raise DataError(
                f"Prediction: expected p_up and exp_return of shape {shape}, "
                f"got {self.p_up.shape} and {self.exp_return.shape}"
            )


def check_targets(y: Targets, n: int, horizons: tuple[int, ...], what: str) -> None:
    """Raise DataError unless ``y`` has every horizon with two arrays of length ``n``."""
    for h in horizons:
        if h not in y:
            raise DataError(f"{what}: expected targets for horizon {h}, got horizons {sorted(y)}")
        up, ret = y[h]
        if up.shape != (n,) or ret.shape != (n,):
            raise DataError(f"{what}[{h}]: expected arrays of shape {(n,)}, got {up.shape} and {ret.shape}")


class Predictor(ABC):
    """Base class: ``fit`` on (X_train, y_train) with early stopping on (X_val, y_val).

    ``window`` is 1 for tabular models (X is ``(n, F)``) and the sequence length for
    sequence models (X is ``(n, window, F)``, oldest row first).
    """

    name: str = "base"
    window: int = 1

    def __init__(self, horizons: tuple[int, ...], seed: int = 0) -> None:
        if not horizons:
            raise ConfigError("horizons: expected at least one horizon, got none")
        self.horizons = tuple(int(h) for h in horizons)
        self.seed = int(seed)
        self.n_features: int | None = None

    @abstractmethod
    def fit(self, X_train: np.ndarray, y_train: Targets, X_val: np.ndarray, y_val: Targets) -> Self:
        """Train on the training slice; stop early on the validation slice."""

    @abstractmethod
    def predict(self, X: np.ndarray) -> Prediction:
        """p(up) and expected return for every row and horizon."""

    def feature_importances(self) -> np.ndarray | None:
        """Normalised importance per feature (sums to 1), or None when the family has none."""
        return None

    # ------------------------------------------------------------------ helpers
    def _check_fit_inputs(self, X_train: np.ndarray, y_train: Targets, X_val: np.ndarray, y_val: Targets) -> None:
        ndim = 2 if self.window == 1 else 3
        for what, X in (("X_train", X_train), ("X_val", X_val)):
            if X.ndim != ndim:
                raise DataError(f"{self.name}.{what}: expected a {ndim}-D array, got shape {X.shape}")
        if X_train.shape[0] == 0:
            raise DataError(f"{self.name}.X_train: expected at least one row, got 0")
        check_targets(y_train, X_train.shape[0], self.horizons, f"{self.name}.y_train")
        check_targets(y_val, X_val.shape[0], self.horizons, f"{self.name}.y_val")
        self.n_features = int(X_train.shape[-1])

    def _check_predict_input(self, X: np.ndarray) -> None:
        if self.n_features is None:
            raise DataError(f"{self.name}: predict called before fit")
        if X.shape[-1] != self.n_features:
            raise DataError(f"{self.name}.X: expected {self.n_features} features, got {X.shape[-1]}")


class Standardizer:
    """Per-feature mean/std fitted on training rows only; NaN-aware; clips to +-clip."""

    def __init__(self, clip: float = 10.0) -> None:
        self.clip = clip
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> Standardizer:
        flat = X.reshape(-1, X.shape[-1])
        self.mean = np.nan_to_num(np.nanmean(flat, axis=0))
        std = np.nan_to_num(np.nanstd(flat, axis=0))
        self.std = np.where(std > 1e-12, std, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardised float32 copy; NaN (warm-up, padding) becomes 0 = the training mean."""
        assert self.mean is not None and self.std is not None, "Standardizer used before fit"
        Z = (X - self.mean) / self.std
        return np.clip(np.nan_to_num(Z, nan=0.0), -self.clip, self.clip).astype(np.float32)


def finite_rows(up: np.ndarray, ret: np.ndarray) -> np.ndarray:
    """Rows whose label is known (both the up flag and the return)."""
    return np.isfinite(up) & np.isfinite(ret)
