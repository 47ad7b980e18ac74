"""The paper-trading feed protocol: what the hourly loop asks of any bar source.

Feeds only report what they saw (``flags``) and never invent bars; validation of a
`BarBatch` (NaN / non-positive prices, high < low, ...) is the loop's job, via
``envs/data/validation.py`` and the kill switch's data-integrity trigger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from envs.data.market import MarketData


@dataclass(frozen=True)
class BarBatch:
    """The closed hourly bar ``hour`` (its OPEN time, Unix s on the hour grid) for the whole universe."""

    hour: int
    open: np.ndarray  # (N,) float64, NaN = no bar for that asset
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    trades: np.ndarray | None  # (N,) trade counts where the source has them
    spread: np.ndarray | None  # (N,) relative full spread from ticker / book top at fetch time, NaN unknown
    raw_hash: str  # sha256 hex of the canonical raw payload(s) this batch was built from
    # feed findings, e.g. "missing:BTC", "duplicate:ETH", "out_of_order:ETH", "bad_price:SOL"
    flags: tuple[str, ...] = ()


class FeedDown(Exception):
    """Retry budget exhausted, exchange status maintenance / cancel_only, persistent errors."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "exchange_down" | "maintenance" | "cancel_only" | "stale" | ...


class Feed(Protocol):
    """A source of closed hourly bars for one universe."""

    assets: tuple[str, ...]  # the universe, in MarketData order (tickers: BTC, ETH, ...)

    def history(self, end_hour: int, n_hours: int) -> MarketData:
        """Backfill: the n_hours closed bars ending at end_hour inclusive, as MarketData (gap policy "mark")."""
        ...

    def next_bar(self, after_hour: int) -> BarBatch | None:
        """The closed bar at after_hour + 3600 if the feed has it, else None (not yet closed / published).

        Raises FeedDown when the exchange is down or in maintenance.
        """
        ...

    def close(self) -> None: ...
