"""Causal features per asset per hour (see ``compute`` for the exactness rules)."""

from predictors.features.compute import compute_features, feature_names, feature_specs, ols_slope
from predictors.features.panel import FeatureConfig, FeaturePanel, FeatureSpec

__all__ = [
    "FeatureConfig",
    "FeaturePanel",
    "FeatureSpec",
    "compute_features",
    "feature_names",
    "feature_specs",
    "ols_slope",
]
