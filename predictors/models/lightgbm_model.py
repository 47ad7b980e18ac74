"""LightGBM family: leaf-wise boosted trees, deterministic mode, early-stopped on validation."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np

from envs.config_mapping import MappingConfig
from predictors.models.tabular import TabularPredictor


@dataclass(frozen=True)
class LightGBMConfig(MappingConfig):
    config_section: ClassVar[str] = "predictor.models.lightgbm"

    n_estimators: int = 200
    learning_rate: float = 0.1
    num_leaves: int = 15
    min_child_samples: int = 50
    subsample: float = 0.8
    subsample_freq: int = 1
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    max_bin: int = 63
    early_stopping_rounds: int = 20
    n_jobs: int = 1  # 1: OpenMP with 2 threads on a shared 2-core box was 4x slower


class LightGBMPredictor(TabularPredictor):
    name = "lightgbm"

    def __init__(self, horizons: tuple[int, ...], seed: int = 0, config: LightGBMConfig | None = None) -> None:
        super().__init__(horizons, seed)
        self.config = config or LightGBMConfig()

    def _fit_head(self, kind: str, X: np.ndarray, y: np.ndarray, Xv: np.ndarray | None, yv: np.ndarray | None) -> Any:
        params = asdict(self.config)
        stop = params.pop("early_stopping_rounds")
        common = dict(
            random_state=self.seed,
            deterministic=True,
            force_row_wise=True,
            verbosity=-1,
            importance_type="gain",
            **params,
        )
        model: Any = lgb.LGBMClassifier(**common) if kind == "clf" else lgb.LGBMRegressor(**common)
        if Xv is None:
            model.fit(X, y)
        else:
            model.fit(X, y, eval_X=(Xv,), eval_y=(yv,), callbacks=[lgb.early_stopping(stop, verbose=False)])
        return model
