"""Put several assets' validated hourly bars on one gapless UTC grid, applying the gap policy.

Kraken's dumps omit hours with no trades, so a missing hour inside an asset's life is a
no-trade bar, not an error. The policy for it is explicit (contract 7):

- ``mark``: the bar carries the previous close as O=H=L=C, zero volume, ``filled=True``
  and ``tradable=False`` (no order may execute in it).
- ``ffill``: the same synthesised bar, ``filled=True`` but tradable.
- ``raise``: any missing hour is a DataError naming the file, the first missing bar and
  the number of missing hours.

Before an asset's first bar and after its last one its prices stay NaN and it is not
tradable; nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from envs.data.market import HOUR, MarketData, PairInfo
from envs.data.validation import RawBars
from envs.errors import ConfigError, DataError

GapPolicy = Literal["mark", "ffill", "raise"]
GAP_POLICIES: tuple[str, ...] = ("mark", "ffill", "raise")


def iso(ts: int) -> str:
    """Unix seconds as an ISO-8601 UTC string (for messages and tables)."""
    return pd.Timestamp(int(ts), unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")


def check_gap_policy(policy: str) -> GapPolicy:
    if policy not in GAP_POLICIES:
        raise ConfigError(f"data.gap_policy: expected one of {list(GAP_POLICIES)}, got {policy!r}")
    return policy  # type: ignore[return-value]


def align_bars(
    raws: Sequence[RawBars],
    gap_policy: str = "mark",
    pairs: Mapping[str, PairInfo] | None = None,
    source: str = "",
) -> MarketData:
    """Stack hourly ``RawBars`` (one per asset) onto the union hourly grid."""
    policy = check_gap_policy(gap_policy)
    if not raws:
        raise DataError(f"{source or 'market'}: no asset has any bar in the requested period")
    for r in raws:
        if r.interval_s != HOUR:
            raise DataError(f"{r.path}: expected hourly bars for alignment, got {r.interval_s} s")
    names = [r.asset for r in raws]
    if len(set(names)) != len(names):
        dup = sorted({a for a in names if names.count(a) > 1})
        files = [r.path for r in raws if r.asset in dup]
        raise DataError(f"assets {dup} appear in more than one file ({files}): pass `assets=` to choose")
    t0 = min(int(r.timestamps[0]) for r in raws)
    t1 = max(int(r.timestamps[-1]) for r in raws)
    T, N = (t1 - t0) // HOUR + 1, len(raws)
    ts = t0 + HOUR * np.arange(T, dtype=np.int64)
    arrays = {f: np.full((T, N), np.nan) for f in ("open", "high", "low", "close", "volume")}
    has_trades = all(r.trades is not None for r in raws)
    trades = np.full((T, N), np.nan) if has_trades else None
    tradable = np.zeros((T, N), dtype=bool)
    filled = np.zeros((T, N), dtype=bool)
    for i, r in enumerate(raws):
        pos = (r.timestamps - t0) // HOUR
        for f in arrays:
            arrays[f][pos, i] = getattr(r, f)
        if trades is not None and r.trades is not None:
            trades[pos, i] = r.trades
        tradable[pos, i] = True
        life = slice(int(pos[0]), int(pos[-1]) + 1)
        missing = ~tradable[life, i]
        if not missing.any():
            continue
        if policy == "raise":
            first = int(pos[0]) + int(np.flatnonzero(missing)[0])
            raise DataError(
                f"{r.path}: asset {r.asset}: {int(missing.sum())} missing hourly bars, first at "
                f"{iso(int(ts[first]))} UTC (gap_policy=raise; use mark or ffill to accept them)"
            )
        close = pd.Series(arrays["close"][life, i]).ffill().to_numpy()
        for f in ("open", "high", "low", "close"):
            col = arrays[f][life, i]
            col[missing] = close[missing]
        arrays["volume"][life, i][missing] = 0.0
        if trades is not None:
            trades[life, i][missing] = 0.0
        filled[life, i] = missing
        tradable[life, i] = ~missing if policy == "mark" else True
    known = dict(pairs or {})
    return MarketData(
        assets=tuple(names),
        timestamps=ts,
        open=arrays["open"],
        high=arrays["high"],
        low=arrays["low"],
        close=arrays["close"],
        volume=arrays["volume"],
        tradable=tradable,
        filled=filled,
        trades=trades,
        pairs={a: known[a] for a in names if a in known},
        source=source,
    )
