"""RandomForest family (scikit-learn): bagged shallow trees; no iterations to early-stop,
so it trains on the training and validation slices together (both lie inside the
training window, before its label cutoff)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from envs.config_mapping import MappingConfig
from predictors.models.tabular import TabularPredictor


@dataclass(frozen=True)
class RandomForestConfig(MappingConfig):
    config_section: ClassVar[str] = "predictor.models.random_forest"

    n_estimators: int = 40
    max_depth: int = 7
    min_samples_leaf: int = 50
    max_features: float = 0.33
    max_samples: float = 0.2  # bootstrap fraction: keeps a year of pooled rows fast
    n_jobs: int = 1


class RandomForestPredictor(TabularPredictor):
    name = "random_forest"

    def __init__(self, horizons: tuple[int, ...], seed: int = 0, config: RandomForestConfig | None = None) -> None:
        super().__init__(horizons, seed)
        self.config = config or RandomForestConfig()

    def _fit_head(self, kind: str, X: np.ndarray, y: np.ndarray, Xv: np.ndarray | None, yv: np.ndarray | None) -> Any:
        if Xv is not None and yv is not None:
            X, y = np.concatenate([X, Xv]), np.concatenate([y, yv])
        cls = RandomForestClassifier if kind == "clf" else RandomForestRegressor
        c = self.config
        model = cls(
            n_estimators=c.n_estimators,
            max_depth=c.max_depth,
            min_samples_leaf=c.min_samples_leaf,
            max_features=c.max_features,
            max_samples=c.max_samples,
            n_jobs=c.n_jobs,
            random_state=self.seed,
        )
        model.fit(X, y)
        # predict single-threaded: sklearn sums the trees' outputs in thread-completion order,
        # which changes the last bits between runs; one thread keeps predictions bit-for-bit.
        model.n_jobs = 1
        return model
