"""The five predictor families behind one interface, and a factory from plain config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envs.config_mapping import MappingConfig
from envs.errors import ConfigError
from predictors.base import Predictor
from predictors.models.lightgbm_model import LightGBMConfig, LightGBMPredictor
from predictors.models.lstm import LSTMConfig, LSTMPredictor
from predictors.models.random_forest import RandomForestConfig, RandomForestPredictor
from predictors.models.transformer import TransformerConfig, TransformerPredictor
from predictors.models.xgboost_model import XGBoostConfig, XGBoostPredictor

FAMILIES: dict[str, tuple[type[Predictor], type[MappingConfig]]] = {
    "xgboost": (XGBoostPredictor, XGBoostConfig),
    "lightgbm": (LightGBMPredictor, LightGBMConfig),
    "random_forest": (RandomForestPredictor, RandomForestConfig),
    "lstm": (LSTMPredictor, LSTMConfig),
    "transformer": (TransformerPredictor, TransformerConfig),
}


def make_config(family: str, params: Mapping[str, Any] | None = None) -> Any:
    """The family's frozen config dataclass from a mapping (``from_mapping``: unknown keys raise;
    a ``_target_``, as in ``conf/predictor/*.yaml``, must name that class)."""
    if family not in FAMILIES:
        raise ConfigError(f"predictor family: expected one of {sorted(FAMILIES)}, got {family!r}")
    return FAMILIES[family][1].from_mapping(params or {})


def make_model(
    family: str, horizons: tuple[int, ...], seed: int = 0, params: Mapping[str, Any] | None = None
) -> Predictor:
    """A fresh, unfitted predictor of ``family``."""
    model_cls = FAMILIES[family][0] if family in FAMILIES else None
    config = make_config(family, params)
    assert model_cls is not None
    return model_cls(horizons, seed, config)  # type: ignore[call-arg]


__all__ = ["FAMILIES", "Predictor", "make_config", "make_model"]
