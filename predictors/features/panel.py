"""Plain data for the feature panel: one spec per column, the config, the panel itself.

Kept apart from the computations so models and the walk-forward can import the types
without pulling in pandas code paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from envs.config_mapping import MappingConfig
from envs.errors import ConfigError


@dataclass(frozen=True)
class FeatureSpec:
    """One feature column: its name, a one-line meaning, its unit and its warm-up.

    ``warmup`` is the number of bars of the asset's own history needed before the
    feature is defined: with the asset's first priced bar at index 0, the feature is
    NaN for k < warmup and defined from k = warmup on (given complete data).
    """

    name: str
    doc: str
    unit: str
    warmup: int


@dataclass(frozen=True)
class FeatureConfig(MappingConfig):
    """Windows (in hourly bars) of every feature; defaults suit hourly crypto bars."""

    config_section: ClassVar[str] = "features"

    momentum_horizons: tuple[int, ...] = (1, 4, 24)
    slope_window: int = 24  # OLS slope of log price over this many bars
    vol_windows: tuple[int, ...] = (24, 168)  # rolling std of hourly log returns
    atr_window: int = 14
    vol_pct_source_window: int = 24  # realised vol whose percentile is taken
    vol_pct_window: int = 8760  # trailing year
    vol_pct_min_periods: int = 720  # so a month of data already gives a percentile
    vol_flag_high: float = 0.8  # vol_high = 1 when the percentile is >= this
    vol_flag_low: float = 0.2  # vol_low = 1 when the percentile is <= this
    volume_window: int = 168  # trailing median volume (previous bars only)
    spread_estimator_window: int = 24  # Corwin-Schultz smoothing when no spread column
    spread_median_window: int = 168  # trailing median spread (previous bars only)
    spread_floor: float = 1e-4  # 1 bp added to both sides of the widening ratio
    channel_window: int = 24  # breakout channel: previous N bars' high / low
    zscore_window: int = 48
    beta_windows: tuple[int, ...] = (168, 720)  # 7 days and 30 days
    breadth_window: int = 168  # "above its trailing mean" mean window
    breadth_return_window: int = 24  # "positive return" horizon
    reference_asset: str = "BTC"  # beta/corr reference; first asset when absent

    def __post_init__(self) -> None:
        ints = {
            "slope_window": (self.slope_window, 2),
            "atr_window": (self.atr_window, 1),
            "vol_pct_source_window": (self.vol_pct_source_window, 2),
            "vol_pct_window": (self.vol_pct_window, 2),
            "vol_pct_min_periods": (self.vol_pct_min_periods, 1),
            "volume_window": (self.volume_window, 1),
            "spread_estimator_window": (self.spread_estimator_window, 2),
            "spread_median_window": (self.spread_median_window, 1),
            "channel_window": (self.channel_window, 1),
            "zscore_window": (self.zscore_window, 2),
            "breadth_window": (self.breadth_window, 1),
            "breadth_return_window": (self.breadth_return_window, 1),
        }
        for name, (value, low) in ints.items():
            if not isinstance(value, int) or value < low:
                raise ConfigError(f"FeatureConfig.{name}: expected an int >= {low}, got {value!r}")
        for name, values, low in (
            ("momentum_horizons", self.momentum_horizons, 1),
            ("vol_windows", self.vol_windows, 2),
            ("beta_windows", self.beta_windows, 2),
        ):
            if not values or any(not isinstance(v, int) or v < low for v in values):
                raise ConfigError(f"FeatureConfig.{name}: expected ints >= {low}, got {values!r}")
            if len(set(values)) != len(values):
                raise ConfigError(f"FeatureConfig.{name}: expected distinct values, got {values!r}")
        if self.vol_pct_min_periods > self.vol_pct_window:
            raise ConfigError(
                f"FeatureConfig.vol_pct_min_periods: expected <= vol_pct_window={self.vol_pct_window}, "
                f"got {self.vol_pct_min_periods}"
            )
        if not 0.0 <= self.vol_flag_low < self.vol_flag_high <= 1.0:
            raise ConfigError(
                "FeatureConfig.vol_flag_low/high: expected 0 <= low < high <= 1, "
                f"got {self.vol_flag_low}, {self.vol_flag_high}"
            )
        if not self.spread_floor > 0.0:
            raise ConfigError(f"FeatureConfig.spread_floor: expected > 0, got {self.spread_floor}")


@dataclass(frozen=True, eq=False)
class FeaturePanel:
    """Features of every asset at every hour, row t computed from bars <= t only.

    ``values[t, i, f]`` is NaN where feature f is not computable for asset i at bar t:
    during warm-up, before listing, and on bars that are not tradable.
    ``warmup[t, i]`` is True until asset i has ``max(spec.warmup)`` bars of history
    (and before its first bar); it says "not ready", never a filled-in value.
    """

    values: np.ndarray  # (T, N, F) float64
    specs: tuple[FeatureSpec, ...]
    timestamps: np.ndarray  # (T,) int64 bar start, as MarketData
    assets: tuple[str, ...]
    warmup: np.ndarray  # (T, N) bool

    def __post_init__(self) -> None:
        T, N = self.timestamps.shape[0], len(self.assets)
        if self.values.shape != (T, N, len(self.specs)):
            raise ConfigError(f"FeaturePanel.values: expected shape {(T, N, len(self.specs))}, got {self.values.shape}")
        if self.warmup.shape != (T, N):
            raise ConfigError(f"FeaturePanel.warmup: expected shape {(T, N)}, got {self.warmup.shape}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    def index_of(self, name: str) -> int:
        """Column of feature ``name``; ConfigError naming the known features if absent."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ConfigError(f"unknown feature {name!r}: expected one of {list(self.names)}") from None

    def feature(self, name: str) -> np.ndarray:
        """The ``(T, N)`` slice of one feature."""
        return self.values[:, :, self.index_of(name)]

    def valid(self) -> np.ndarray:
        """``(T, N)`` bool: True where no feature is NaN (a usable row for a model)."""
        return ~np.isnan(self.values).any(axis=2)
