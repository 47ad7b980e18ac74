"""`PortfolioSnapshot`: the read-only view of an account that the risk layer reads.

The env (and the vectorised env, one per sub-env) exposes ``snapshot()`` returning this
value after every reset and step; paper trading builds the same value from its ledger.
The risk layer never touches the env's internals, only this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class PortfolioSnapshot:
    """State of the account at the close of bar ``t`` (the decision point)."""

    t: int  # bar index in the env's MarketData (decision at the close of bar t)
    timestamp: int  # Unix seconds, start of bar t
    cash: float  # quote currency (USD)
    units: np.ndarray  # (N,) base units held, >= 0
    prices: np.ndarray  # (N,) mark prices (close of bar t; last valid close if missing)
    equity: float  # cash + units @ prices
    weights: np.ndarray  # (N,) units * prices / equity
    peak_equity: float  # high-water mark of equity since the episode started
    # (N,) bool: the asset has a live price at bar t (orders may be sent; they fill only if bar t+1 trades)
    tradable: np.ndarray

    @property
    def drawdown(self) -> float:
        """Fractional drawdown of equity from its peak, in [0, 1]."""
        if self.peak_equity <= 0:
            return 0.0
        return max(0.0, 1.0 - self.equity / self.peak_equity)

    @property
    def cash_weight(self) -> float:
        return self.cash / self.equity if self.equity > 0 else 1.0
