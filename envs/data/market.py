"""`MarketData`: N assets x T hourly bars on one UTC grid, as plain float64 arrays.

Every loader (Kraken CSV dump, generic CSV/Parquet, synthetic) returns this one value,
so the env, predictors and risk layer never see a DataFrame in their hot paths.

Conventions (contract 1 of the architecture):
- ``timestamps[t]`` is the *start* of bar t in Unix seconds (UTC, int64); the grid is
  strictly hourly (step 3600 s) with no holes: a missing bar is a row whose
  ``tradable`` flag is False (or whose ``filled`` flag is True, by gap policy).
- Arrays are indexed ``[t, i]`` (time first, asset second), shape ``(T, N)``.
- Before an asset's first bar and after its last one, its prices are NaN and it is not
  tradable. Inside its life, a missing bar carries the previous close as O=H=L=C with
  zero volume and ``filled=True``; gap policy decides whether it is tradable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from envs.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

HOUR = 3600

PRICE_FIELDS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class PairInfo:
    """Kraken instrument rules for one asset's USD pair (one place for lot rules)."""

    asset: str  # canonical ticker used across the package, e.g. "BTC"
    altname: str  # Kraken altname, e.g. "XBTUSD"
    rest_name: str  # Kraken REST pair key, e.g. "XXBTZUSD"
    wsname: str  # Kraken websocket name, e.g. "XBT/USD"
    base: str  # Kraken base asset code, e.g. "XXBT"
    quote: str  # Kraken quote asset code, e.g. "ZUSD"
    price_decimals: int
    lot_decimals: int
    ordermin: float  # minimum order volume, base units
    costmin: float  # minimum order cost, quote units
    tick_size: float


@dataclass(frozen=True, eq=False)
class MarketData:
    """Aligned hourly bars for N assets; see the module docstring for conventions."""

    assets: tuple[str, ...]
    timestamps: np.ndarray  # (T,) int64 Unix seconds, bar start
    open: np.ndarray  # (T, N) float64
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # (T, N) float64, base units
    tradable: np.ndarray  # (T, N) bool
    filled: np.ndarray  # (T, N) bool: bar synthesised by the gap policy
    trades: np.ndarray | None = None  # (T, N) float64 trade counts, when known
    spread: np.ndarray | None = None  # (T, N) relative bid-ask spread, when known
    # (T, N) bool: False where the data-integrity checks (envs.data.integrity: cross-exchange
    # discrepancy runs, unconfirmed spikes, stale runs) distrust the bar; the kill switch's
    # data_integrity trigger reads it. None = not checked.
    integrity_ok: np.ndarray | None = None
    regimes: np.ndarray | None = None  # (T,) int8 true regime labels (synthetic only)
    pairs: dict[str, PairInfo] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        self.validate_shapes()

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        layout: str = "auto",
        quote: str = "USD",
        gap_policy: str = "mark",
        pairs: Mapping[str, PairInfo] | None = None,
        interval: int = 60,
        source: str = "frame",
    ) -> MarketData:
        """A validated market from a DataFrame, long (timestamp, asset, OHLCV) or wide
        (MultiIndex columns); the loaders' checks and gap policy apply (`envs.data.frames`)."""
        from envs.data.frames import market_from_frame

        return market_from_frame(
            df, layout=layout, quote=quote, gap_policy=gap_policy, pairs=pairs, interval=interval, source=source
        )

    # ----------------------------------------------------------------- basics
    @property
    def n_assets(self) -> int:
        return len(self.assets)

    @property
    def n_bars(self) -> int:
        return int(self.timestamps.shape[0])

    def index_of(self, asset: str) -> int:
        try:
            return self.assets.index(asset)
        except ValueError:
            raise DataError(f"unknown asset {asset!r}: expected one of {list(self.assets)}") from None

    def bar_index(self, timestamp: int) -> int:
        """Index of the bar starting at ``timestamp`` (Unix seconds); DataError if absent."""
        t = int(np.searchsorted(self.timestamps, timestamp))
        if t >= self.n_bars or int(self.timestamps[t]) != int(timestamp):
            raise DataError(f"no bar starts at {timestamp} in market {self.source!r}")
        return t

    def validate_shapes(self) -> None:
        """Internal consistency of the arrays (not of the prices: loaders check those)."""
        ts = self.timestamps
        if ts.ndim != 1 or ts.dtype != np.int64:
            raise DataError(f"timestamps: expected 1-D int64, got {ts.ndim}-D {ts.dtype}")
        if ts.size and np.any(np.diff(ts) != HOUR):
            raise DataError("timestamps: expected a gapless hourly grid (step 3600 s)")
        shape = (ts.size, len(self.assets))
        for name in (*PRICE_FIELDS, "volume", "tradable", "filled", "trades", "spread", "integrity_ok"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != shape:
                raise DataError(f"{name}: expected shape {shape}, got {arr.shape}")
        if self.regimes is not None and self.regimes.shape != (ts.size,):
            raise DataError(f"regimes: expected shape {(ts.size,)}, got {self.regimes.shape}")

    # ---------------------------------------------------------------- slicing
    def slice(self, start: int, stop: int) -> MarketData:
        """Bars ``[start, stop)`` by index (views, no copy)."""
        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[start:stop]

        return replace(
            self,
            timestamps=self.timestamps[start:stop],
            open=self.open[start:stop],
            high=self.high[start:stop],
            low=self.low[start:stop],
            close=self.close[start:stop],
            volume=self.volume[start:stop],
            tradable=self.tradable[start:stop],
            filled=self.filled[start:stop],
            trades=cut(self.trades),
            spread=cut(self.spread),
            integrity_ok=cut(self.integrity_ok),
            regimes=cut(self.regimes),
        )

    def between(self, start: int | None = None, end: int | None = None) -> MarketData:
        """Bars whose start lies in ``[start, end]`` (Unix seconds, either may be None)."""
        lo = 0 if start is None else int(np.searchsorted(self.timestamps, start, side="left"))
        hi = self.n_bars if end is None else int(np.searchsorted(self.timestamps, end, side="right"))
        return self.slice(lo, hi)

    def select(self, assets: Sequence[str]) -> MarketData:
        """A market restricted to ``assets`` (in the given order)."""
        idx = [self.index_of(a) for a in assets]

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[:, idx]

        return replace(
            self,
            assets=tuple(assets),
            open=self.open[:, idx],
            high=self.high[:, idx],
            low=self.low[:, idx],
            close=self.close[:, idx],
            volume=self.volume[:, idx],
            tradable=self.tradable[:, idx],
            filled=self.filled[:, idx],
            trades=pick(self.trades),
            spread=pick(self.spread),
            integrity_ok=pick(self.integrity_ok),
            pairs={a: self.pairs[a] for a in assets if a in self.pairs},
        )

    def equals(self, other: MarketData) -> bool:
        """Bit-for-bit equality of every array (NaN equal to NaN) and of the metadata."""
        if self.assets != other.assets or self.pairs != other.pairs:
            return False
        names = ("timestamps", *PRICE_FIELDS, "volume", "tradable", "filled", "trades", "spread", "integrity_ok",
                 "regimes")
        for name in names:
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None):
                return False
            if a is not None and not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                return False
        return True
