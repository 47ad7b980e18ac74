"""`ReplayFeed`: recorded hourly bars streamed bar by bar as if live (``feed=replay``).

The bars come from files in the ``../shared/data`` formats (Kraken OHLCVT dumps, generic
CSV/Parquet folders) through `envs.data.loaders`, or from a Parquet bar store through
`envs.data.store.load_store`, or from a `MarketData` already in memory (tests). A bar is
handed out only once asked for (``next_bar(after)`` returns the bar at ``after + 1h``), never
past ``end``; ``speed`` seconds of wall time pass per bar (0 = instant, for tests and
replays). Hours the gap policy filled (``filled``: Kraken omits no-trade hours) are handed
out as NaN with a ``missing:ASSET`` flag, exactly what a live feed would have seen: the loop
re-applies the "mark" gap policy itself (`paper.market.append_bar`). A market with a
cross-exchange integrity mask (`data=store` with reference exchanges) hands out each bar's
mask row with it: the mask at bar t needs no later bar (`envs.data.integrity`, tested), so a
live system checking Binance/Coinbase each hour would have had the same row.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.data.loaders import load_csv_dir, load_kraken_dir, to_unix
from envs.data.market import MarketData
from paper.canonical import content_hash
from paper.feeds.base import HOUR_S, BarBatch

LOADERS = ("kraken_csv", "csv", "store")


def load_market(path: str | Path, loader: str = "kraken_csv", assets: Sequence[str] | None = None,
                start: str | int | None = None, end: str | int | None = None, **kwargs: Any) -> MarketData:
    """Recorded bars from ``path`` with one of `LOADERS` (gap policy "mark")."""
    if loader == "kraken_csv":
        return load_kraken_dir(path, assets=assets, start=start, end=end, gap_policy="mark", **kwargs)
    if loader == "csv":
        return load_csv_dir(path, assets=assets, start=start, end=end, gap_policy="mark", **kwargs)
    if loader == "store":
        from envs.data.store import load_store

        return load_store(path, assets=assets, start=start, end=end, gap_policy="mark", **kwargs)
    raise ValueError(f"feed.loader: expected one of {LOADERS}, got {loader!r}")


def _row(a: np.ndarray | None, i: int, filled: np.ndarray) -> np.ndarray | None:
    if a is None:
        return None
    out = np.array(a[i], dtype=np.float64)
    out[filled] = np.nan
    return out


class ReplayFeed:
    """Recorded bars of ``market`` up to ``end`` (Unix s, bar open; None = the last bar), ``speed`` s per bar."""

    def __init__(self, market: MarketData, end: int | str | None = None, speed: float = 0.0) -> None:
        self.market = market
        self.assets = tuple(market.assets)
        last = int(market.timestamps[-1])
        self.end = last if end is None else min(int(to_unix(end) or last), last)
        if float(speed) < 0:
            raise ValueError(f"feed.speed: expected seconds per bar >= 0, got {speed!r}")
        self.speed = float(speed)
        self.served = 0

    @classmethod
    def from_files(cls, path: str | Path, loader: str = "kraken_csv", assets: Sequence[str] | None = None,
                   history_start: str | None = None, end: str | None = None, speed: float = 0.0,
                   **kwargs: Any) -> ReplayFeed:
        return cls(load_market(path, loader, assets, history_start, end, **kwargs), end, speed)

    def _index(self, hour: int) -> int:
        i = (int(hour) - int(self.market.timestamps[0])) // HOUR_S
        if int(hour) % HOUR_S or not 0 <= i < self.market.n_bars:
            raise ValueError(f"ReplayFeed: hour {hour} is not a bar of the recorded market "
                             f"({int(self.market.timestamps[0])} .. {int(self.market.timestamps[-1])})")
        return int(i)

    def history(self, end_hour: int, n_hours: int) -> MarketData:
        """The ``n_hours`` bars ending at ``end_hour`` inclusive (fewer if the recording starts later)."""
        hi = self._index(end_hour) + 1
        return self.market.slice(max(hi - int(n_hours), 0), hi)

    def next_bar(self, after_hour: int) -> BarBatch | None:
        hour = int(after_hour) + HOUR_S
        if hour > self.end or hour > int(self.market.timestamps[-1]):
            return None
        i = self._index(hour)
        m = self.market
        filled = np.asarray(m.filled[i], dtype=bool) | ~np.isfinite(m.close[i])
        fields = {f: _row(getattr(m, f), i, filled) for f in ("open", "high", "low", "close", "volume")}
        trades, spread = _row(m.trades, i, filled), _row(m.spread, i, filled)
        raw = {"hour": hour, "assets": list(self.assets),
               **{k: [None if not np.isfinite(x) else float(x) for x in v.tolist()]  # type: ignore[union-attr]
                  for k, v in fields.items()}}
        flags = tuple(f"missing:{a}" for a, miss in zip(self.assets, filled.tolist(), strict=True) if miss)
        if self.speed:
            time.sleep(self.speed)
        self.served += 1
        ok = None if m.integrity_ok is None else np.asarray(m.integrity_ok[i], dtype=bool)
        return BarBatch(hour, fields["open"], fields["high"], fields["low"], fields["close"],  # type: ignore[arg-type]
                        fields["volume"], trades, spread, content_hash(raw), flags, ok)  # type: ignore[arg-type]

    def close(self) -> None:
        pass


__all__ = ["LOADERS", "ReplayFeed", "load_market"]
