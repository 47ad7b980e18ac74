"""One asset's bars as read from a file, and the checks every loader runs on them.

Each failure raises `DataError` naming the file, the asset, the 1-based data row and the
offending value, so a bad download is found in seconds, not after a training run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from envs.data.market import HOUR
from envs.errors import DataError

log = logging.getLogger(__name__)

OHLC = ("open", "high", "low", "close")


@dataclass(frozen=True, eq=False)
class RawBars:
    """Bars of one asset at the file's own interval, before alignment to the grid.

    ``rows`` holds each bar's 1-based row number in the source file (for messages).
    """

    asset: str
    path: str
    interval_s: int
    timestamps: np.ndarray  # int64 Unix seconds, bar start
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    trades: np.ndarray | None
    rows: np.ndarray  # int64 row numbers in the file

    def where(self, i: int) -> str:
        return f"{self.path}: asset {self.asset}: row {int(self.rows[i])}"

    def take(self, keep: np.ndarray) -> RawBars:
        """The bars selected by a boolean mask or index array."""

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[keep]

        return replace(
            self,
            timestamps=self.timestamps[keep],
            open=self.open[keep],
            high=self.high[keep],
            low=self.low[keep],
            close=self.close[keep],
            volume=self.volume[keep],
            trades=pick(self.trades),
            rows=self.rows[keep],
        )


def validate_raw(raw: RawBars) -> RawBars:
    """Check one file's bars; return them with exact duplicate rows removed (and logged).

    Raises DataError on: empty file, timestamps off the interval grid, unsorted rows,
    conflicting duplicates (same time, different values), NaN/inf or non-positive prices,
    ``high < max(open, close)``, ``low > min(open, close)``, NaN or negative volume/trades.
    """
    n = raw.timestamps.size
    if n == 0:
        raise DataError(f"{raw.path}: asset {raw.asset}: file has no data rows")
    off = np.flatnonzero(raw.timestamps % raw.interval_s != 0)
    if off.size:
        i = int(off[0])
        raise DataError(
            f"{raw.where(i)}: timestamp={int(raw.timestamps[i])}: expected a multiple of "
            f"{raw.interval_s} s (bar start on the {raw.interval_s // 60}-minute grid), got an offset of "
            f"{int(raw.timestamps[i] % raw.interval_s)} s"
        )
    step = np.diff(raw.timestamps)
    back = np.flatnonzero(step < 0)
    if back.size:
        i = int(back[0]) + 1
        raise DataError(
            f"{raw.where(i)}: timestamp={int(raw.timestamps[i])}: unsorted rows: expected a time after "
            f"{int(raw.timestamps[i - 1])} (previous row), got an earlier one"
        )
    dup = np.flatnonzero(step == 0) + 1
    if dup.size:
        for i in (int(k) for k in dup):
            same = all(getattr(raw, f)[i] == getattr(raw, f)[i - 1] for f in (*OHLC, "volume"))
            if not same:
                raise DataError(
                    f"{raw.where(i)}: timestamp={int(raw.timestamps[i])}: conflicting duplicate "
                    f"of row {int(raw.rows[i - 1])} (same time, different values)"
                )
        keep = np.ones(n, dtype=bool)
        keep[dup] = False
        log.warning("%s: dropped %d exact duplicate rows", raw.path, int(dup.size))
        raw = raw.take(keep)
    for name in OHLC:
        v = getattr(raw, name)
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            i = int(bad[0])
            raise DataError(f"{raw.where(i)}: {name}={float(v[i])!r}: expected a finite positive price")
    hi_bad = np.flatnonzero(raw.high < np.maximum(raw.open, raw.close))
    if hi_bad.size:
        i = int(hi_bad[0])
        raise DataError(
            f"{raw.where(i)}: high={float(raw.high[i])!r}: expected high >= max(open, close) = "
            f"{float(max(raw.open[i], raw.close[i]))!r}"
        )
    lo_bad = np.flatnonzero(raw.low > np.minimum(raw.open, raw.close))
    if lo_bad.size:
        i = int(lo_bad[0])
        raise DataError(
            f"{raw.where(i)}: low={float(raw.low[i])!r}: expected low <= min(open, close) = "
            f"{float(min(raw.open[i], raw.close[i]))!r}"
        )
    for name in ("volume", "trades"):
        v = getattr(raw, name)
        if v is None:
            continue
        bad = np.flatnonzero(~np.isfinite(v) | (v < 0))
        if bad.size:
            i = int(bad[0])
            raise DataError(f"{raw.where(i)}: {name}={float(v[i])!r}: expected a finite non-negative number")
    return raw


def resample_to_hourly(raw: RawBars) -> RawBars:
    """Aggregate sub-hourly bars into hourly bars labelled by their start.

    open = first, high = max, low = min, close = last, volume and trades summed. An hour
    with no source bar produces no hourly bar (a gap, as in Kraken's own hourly dump).
    Expects validated (sorted, unique) input.
    """
    if raw.interval_s == HOUR:
        return raw
    if raw.interval_s > HOUR or HOUR % raw.interval_s:
        raise DataError(
            f"{raw.path}: expected an interval that divides one hour (1, 5, 15, 30 min) or equals it, "
            f"got {raw.interval_s // 60} min"
        )
    hour = raw.timestamps - raw.timestamps % HOUR
    starts = np.flatnonzero(np.r_[True, hour[1:] != hour[:-1]])
    ends = np.r_[starts[1:], hour.size] - 1

    def sums(a: np.ndarray) -> np.ndarray:
        return np.add.reduceat(a, starts)

    return RawBars(
        asset=raw.asset,
        path=raw.path,
        interval_s=HOUR,
        timestamps=hour[starts],
        open=raw.open[starts],
        high=np.maximum.reduceat(raw.high, starts),
        low=np.minimum.reduceat(raw.low, starts),
        close=raw.close[ends],
        volume=sums(raw.volume),
        trades=None if raw.trades is None else sums(raw.trades),
        rows=raw.rows[starts],
    )
