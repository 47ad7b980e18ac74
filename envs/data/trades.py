"""Trades -> OHLCV + trade-count bars, built the way Kraken builds its own bars.

Kraken's OHLC bars (REST ``/0/public/OHLC`` and the downloadable OHLCVT dump) are plain
aggregates of the public trade tape over ``[start, start + interval)``: open = first trade,
high = max price, low = min price, close = last trade, volume = sum of base amounts,
count = number of trades, with trades in exchange order (trade id). A trade stamped exactly
on a boundary (``time % interval == 0``) belongs to the bar that *starts* there.

An interval with no trade produces **no bar** here, exactly as in Kraken's OHLCVT dump
(a missing hour means "no trades"). The REST endpoint returns such intervals as a flat
bar (O=H=L=C = previous close, volume 0, count 0); the downloader drops those rows, so
all three sources store the same thing, and the loaders' gap policy (`envs.data.align`)
decides how a missing hour is shown in `MarketData` (``mark``: previous close, zero
volume, ``filled=True``, not tradable).

Vectorised: one stable sort check and a handful of ``ufunc.reduceat`` calls, no Python
loop per trade (several million trades per second).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from envs.data.market import HOUR
from envs.data.validation import RawBars
from envs.errors import DataError


def trades_to_bars(
    time_ms: np.ndarray,
    price: np.ndarray,
    amount: np.ndarray,
    interval_s: int = HOUR,
    asset: str = "",
    source: str = "trades",
) -> RawBars:
    """Aggregate trades (in exchange order) into bars labelled by their start (Unix seconds).

    ``time_ms`` are trade times in integer milliseconds (ccxt's ``timestamp``), ``price``
    quote per base unit, ``amount`` base units. Trades must be in time order (ties keep
    their given order, which decides open and close); unsorted input raises.
    """
    t = np.asarray(time_ms, dtype=np.int64)
    p = np.asarray(price, dtype=np.float64)
    v = np.asarray(amount, dtype=np.float64)
    if not (t.shape == p.shape == v.shape) or t.ndim != 1:
        raise DataError(f"{source}: expected three 1-D arrays of one length, got {t.shape}, {p.shape}, {v.shape}")
    if interval_s <= 0:
        raise DataError(f"{source}: interval_s: expected a positive number of seconds, got {interval_s}")
    empty = np.zeros(0)
    if t.size == 0:
        return RawBars(asset, source, interval_s, np.zeros(0, np.int64), empty, empty, empty, empty, empty,
                       empty, np.zeros(0, np.int64))  # fmt: skip
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise DataError(f"{source}: trade {i}: time {int(t[i])} ms is before the previous trade's {int(t[i - 1])} ms")
    bad = np.flatnonzero(~np.isfinite(p) | (p <= 0) | ~np.isfinite(v) | (v < 0))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{source}: trade {i}: price={p[i]!r} amount={v[i]!r}: expected a positive price, amount >= 0")
    step_ms = interval_s * 1000
    bucket = t // step_ms  # floor: a trade exactly on a boundary opens the bar starting there
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], t.size] - 1
    return RawBars(
        asset=asset,
        path=source,
        interval_s=interval_s,
        timestamps=bucket[starts] * interval_s,
        open=p[starts],
        high=np.maximum.reduceat(p, starts),
        low=np.minimum.reduceat(p, starts),
        close=p[ends],
        volume=np.add.reduceat(v, starts),
        trades=(ends - starts + 1).astype(np.float64),
        rows=starts.astype(np.int64),
    )


def aggregate_trades(timestamps: np.ndarray, prices: np.ndarray, amounts: np.ndarray,
                     interval_s: int = HOUR) -> pd.DataFrame:
    """Trades -> bars as a DataFrame indexed by the bar start (UTC): open, high, low, close, volume, trades.

    ``timestamps`` are Unix seconds (float, as Kraken's Trades endpoint gives them), in
    exchange order. The same aggregation as `trades_to_bars` (which takes ccxt's integer
    milliseconds): times are floored to the millisecond, so a trade stamped exactly on a
    boundary opens the bar that starts there. Hours without a trade have no row.
    """
    t = np.asarray(timestamps, dtype=np.float64)
    if t.ndim != 1 or not np.all(np.isfinite(t)):
        raise DataError("aggregate_trades: timestamps: expected a 1-D array of finite Unix seconds")
    bars = trades_to_bars(np.floor(t * 1000.0).astype(np.int64), prices, amounts, interval_s)
    assert bars.trades is not None  # trades_to_bars always counts
    index = pd.DatetimeIndex(pd.to_datetime(bars.timestamps, unit="s", utc=True), name="time")
    return pd.DataFrame(
        {"open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close,
         "volume": bars.volume, "trades": bars.trades.astype(np.int64)},
        index=index,
    )
