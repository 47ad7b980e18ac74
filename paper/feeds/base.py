"""The feed protocol agreed between the paper loop and its feeds (replay, ccxt Kraken).

A feed reports what it saw and never invents bars: a closed hourly bar for the whole
universe is a `BarBatch` (NaN where an asset had no bar), its findings go in ``flags``, and
validation (NaN or non-positive prices, high < low, ...) is the loop's job. ``FeedDown`` is
how a feed says the exchange cannot be used now (retry budget spent, maintenance,
cancel-only, stale data); the loop turns it into a kill-switch trigger or a missed hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from envs.data.market import MarketData
from envs.errors import DataError

HOUR_S = 3600
BAR_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, eq=False)
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
    flags: tuple[str, ...] = ()  # feed findings: "missing:BTC", "duplicate:ETH", "out_of_order:ETH", "bad_price:SOL"
    integrity_ok: np.ndarray | None = None  # (N,) bool: cross-exchange integrity check at this bar, if the feed has one

    def __post_init__(self) -> None:
        if isinstance(self.hour, bool) or not isinstance(self.hour, int | np.integer) or int(self.hour) % HOUR_S:
            raise ValueError(f"BarBatch.hour: expected Unix seconds on the hour grid, got {self.hour!r}")
        object.__setattr__(self, "hour", int(self.hour))
        n = np.shape(self.close)
        if len(n) != 1:
            raise ValueError(f"BarBatch.close: expected shape (N,), got {n}")
        for name in (*BAR_FIELDS, "trades", "spread"):
            value = getattr(self, name)
            if value is None:
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != n:
                raise ValueError(f"BarBatch.{name}: expected shape {n} like close, got {arr.shape}")
            object.__setattr__(self, name, arr)
        if self.integrity_ok is not None:
            ok = np.asarray(self.integrity_ok, dtype=bool)
            if ok.shape != n:
                raise ValueError(f"BarBatch.integrity_ok: expected shape {n} like close, got {ok.shape}")
            object.__setattr__(self, "integrity_ok", ok)

    @property
    def n_assets(self) -> int:
        return int(self.close.shape[0])


class FeedDown(Exception):
    """The exchange cannot be used now: ``reason`` is "exchange_down", "maintenance", "cancel_only", "stale", ..."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason


class NotPublished(DataError):
    """The feed has not published a bar the caller asked for yet (Kraken lagging): wait, do not fail."""


class Feed(Protocol):
    """What the loop needs from a source of closed hourly bars."""

    assets: tuple[str, ...]  # the universe, in MarketData order (tickers: BTC, ETH, ...)

    def history(self, end_hour: int, n_hours: int) -> MarketData:
        """Backfill: the ``n_hours`` closed bars ending at ``end_hour`` inclusive, as MarketData (gap policy "mark")."""
        ...

    def next_bar(self, after_hour: int) -> BarBatch | None:
        """The closed bar at ``after_hour + 3600`` if the feed has it, else None (not closed / not published yet).

        Raises `FeedDown` when the exchange is down or in maintenance.
        """
        ...

    def close(self) -> None: ...


__all__ = ["BAR_FIELDS", "HOUR_S", "BarBatch", "Feed", "FeedDown", "NotPublished"]
