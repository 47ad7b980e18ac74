"""XGBoost family: gradient-boosted trees (``hist``), early-stopped on the validation slice."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import xgboost as xgb

from envs.config_mapping import MappingConfig
from predictors.models.tabular import TabularPredictor


@dataclass(frozen=True)
class XGBoostConfig(MappingConfig):
    """Small, regularised defaults: hourly crypto labels are mostly noise."""

    config_section: ClassVar[str] = "predictor.models.xgboost"

    n_estimators: int = 200
    learning_rate: float = 0.1
    max_depth: int = 4
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 20.0
    reg_lambda: float = 1.0
    max_bin: int = 63
    early_stopping_rounds: int = 20
    n_jobs: int = 1  # 1: OpenMP with 2 threads on a shared 2-core box was 4x slower


class XGBoostPredictor(TabularPredictor):
    name = "xgboost"

    def __init__(self, horizons: tuple[int, ...], seed: int = 0, config: XGBoostConfig | None = None) -> None:
        super().__init__(horizons, seed)
        self.config = config or XGBoostConfig()

    def _fit_head(self, kind: str, X: np.ndarray, y: np.ndarray, Xv: np.ndarray | None, yv: np.ndarray | None) -> Any:
        params = asdict(self.config)
        stop = params.pop("early_stopping_rounds")
        stop = stop if Xv is not None else None
        common = dict(tree_method="hist", random_state=self.seed, early_stopping_rounds=stop, **params)
        if kind == "clf":
            model: Any = xgb.XGBClassifier(objective="binary:logistic", eval_metric="logloss", **common)
        else:
            model = xgb.XGBRegressor(objective="reg:squarederror", eval_metric="rmse", **common)
        eval_set = [(Xv, yv)] if Xv is not None else None
        model.fit(X, y, eval_set=eval_set, verbose=False)
        return model
