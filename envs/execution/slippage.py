"""Slippage: half the bid-ask spread plus square-root market impact, always against the trader.

``rate = min(half_spread + k · sigma · sqrt(notional / bar_dollar_volume), cap)``; a buy
pays ``ref · (1 + rate)``, a sell receives ``ref · (1 − rate)``. With no traded volume in
the bar the rate is the cap (nothing could be absorbed there).
"""

from __future__ import annotations

import numpy as np


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
