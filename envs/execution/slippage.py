"""Slippage: half the bid-ask spread plus market impact, always against the trader.

Two small parts, each a class (the seam a new cost rule plugs into):

- a half-spread source (`HalfSpreadSource`): the (T, N) relative half spread each bar is
  charged. `QuotedOrEstimatedHalfSpread` takes the spread from ``EnvConfig.spread_source``
  (`envs.data.spreads`) with a floor. The kernel reads only the resulting array, so a new
  source is one new class, no kernel edit;
- an impact model (`ImpactModel`): `SquareRootImpact`,
  ``rate = min(half_spread + k · sigma · sqrt(notional / bar_dollar_volume), cap)``; with no
  traded volume in the bar the rate is the cap (nothing could be absorbed there). The kernel
  computes this law in one inlined helper (`envs.execution.kernels.slip_rate`) from the
  model's `SquareRootImpact.kernel_params`; another law is a class here plus that helper.

A buy pays ``ref · (1 + rate)``, a sell receives ``ref · (1 − rate)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from envs.data.spreads import spread_model

if TYPE_CHECKING:
    from envs.config import EnvConfig
    from envs.data.market import MarketData


def slippage_rate(
    half_spread: np.ndarray,
    sigma: np.ndarray,
    notional: np.ndarray,
    dollar_volume: np.ndarray,
    k: float,
    cap: float,
) -> np.ndarray:
    """Relative price concession for orders of ``notional`` USD (all arrays broadcast)."""
    traded = dollar_volume > 0.0
    impact = k * sigma * np.sqrt(notional / np.where(traded, dollar_volume, 1.0))
    impact = np.where(traded, impact, cap)
    return np.minimum(half_spread + impact, cap)


class HalfSpreadSource(Protocol):
    """Where each bar's relative half spread comes from."""

    def half_spread(self, market: MarketData) -> tuple[np.ndarray, tuple[str, ...]]:
        """(T, N) relative half spread (finite, >= 0) and the per-asset source label."""
        ...


class ImpactModel(Protocol):
    """The relative price concession of an order of a given notional (half spread included)."""

    def rate(self, half_spread: np.ndarray, sigma: np.ndarray, notional: np.ndarray,
             dollar_volume: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class QuotedOrEstimatedHalfSpread:
    """Half of ``spread_model(source)``'s spread, at least half the (per-pair) floor; unknown -> the floor."""

    source: str = "auto"
    window: int = 720
    floor: float = 1e-6
    pair_floors: tuple[tuple[str, float], ...] = ()

    def floors(self, market: MarketData) -> np.ndarray:
        by_pair = dict(self.pair_floors)
        return np.array([by_pair.get(a, self.floor) for a in market.assets])

    def half_spread(self, market: MarketData) -> tuple[np.ndarray, tuple[str, ...]]:
        model = spread_model(market, self.source, self.window)
        spread = np.fmax(np.nan_to_num(model.spread, nan=0.0), self.floors(market))  # warm-up -> the floor
        return 0.5 * spread, model.sources


@dataclass(frozen=True)
class SquareRootImpact:
    """``min(half_spread + k · sigma · sqrt(notional / dollar_volume), cap)``; the cap where no volume traded."""

    k: float = 0.5
    cap: float = 0.05

    def rate(self, half_spread: np.ndarray, sigma: np.ndarray, notional: np.ndarray,
             dollar_volume: np.ndarray) -> np.ndarray:
        return slippage_rate(half_spread, sigma, notional, dollar_volume, self.k, self.cap)

    def kernel_params(self) -> tuple[float, float]:
        """(k, cap) as the kernel's ``slip_rate`` reads them."""
        return self.k, self.cap


@dataclass(frozen=True)
class SlippageModel:
    """The two parts of a market fill's price concession."""

    spread: HalfSpreadSource
    impact: SquareRootImpact


def make_slippage_model(config: EnvConfig) -> SlippageModel:
    """The model an `EnvConfig` describes (``spread_*`` and ``impact_k`` / ``max_slippage``)."""
    spread = QuotedOrEstimatedHalfSpread(config.spread_source, config.spread_window, config.spread_floor,
                                         tuple(sorted(config.pair_spread_floor.items())))
    return SlippageModel(spread, SquareRootImpact(config.impact_k, config.max_slippage))
