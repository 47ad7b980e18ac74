"""Download hourly bars through ccxt into the `BarStore`: Kraken history and reference exchanges.

Kraken sources, each adding only hours not yet stored (the store is append-only):

- ``csv``: Kraken's official OHLCVT dump (`envs.data.loaders.read_kraken_file`).
- ``trades``: history older than the OHLC window, rebuilt from the public Trades endpoint
  (ccxt ``fetch_trades``; the first page by ``since`` in ms, later pages by Kraken's
  ``last`` cursor minus 1 ns, so that trades sharing the cursor's timestamp are not lost
  at a page boundary; repeats are dropped by trade id) and
  aggregated by `envs.data.trades.trades_to_bars`. After each page the hours before the
  last trade's hour are complete: they are appended, and the cursor plus the trades of
  the unfinished hour are saved as resume state. An interrupted run continues from that
  state and ends in the same store, byte for byte.
- ``ohlc``: the recent bars (Kraken serves the last 720) from ``/0/public/OHLC`` through
  ccxt's ``publicGetOHLC`` (ccxt's own ``fetch_ohlcv`` drops the trade count). The last
  row (the running, uncommitted hour) and count-0 rows (no trade) are dropped.

Reference exchanges (Binance ``BTC/USDT``, Coinbase ``BTC-USD``) come from ccxt
``fetch_ohlcv`` paged by ``since``. Every call goes through `call_with_retry`; ccxt's rate
limiter is on. `DownloadSummary` reports bars fetched, gaps, flags and time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from envs.data.align import iso
from envs.data.exchanges import QUOTES, call_with_retry, ccxt_symbol
from envs.data.market import HOUR
from envs.data.store import BarStore, pair_key
from envs.data.trades import trades_to_bars
from envs.data.validation import RawBars
from envs.errors import DataError

log = logging.getLogger(__name__)

OHLC_WINDOW = 720  # bars Kraken's OHLC endpoint serves
KRAKEN_SOURCES = ("csv", "trades", "ohlc")


@dataclass
class SeriesSummary:
    """One series' download: what was added and how long it took."""

    exchange: str
    pair: str
    source: str
    bars_added: int = 0
    requests: int = 0
    trades: int = 0
    conflicts: int = 0
    gap_hours: int = 0
    first: str = ""
    last: str = ""
    seconds: float = 0.0
    note: str = ""


@dataclass
class DownloadSummary:
    """Every series of one run, plus integrity flags per asset (filled by the script)."""

    series: list[SeriesSummary] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def table(self) -> pd.DataFrame:
        cols = ["exchange", "pair", "source", "bars_added", "requests", "trades", "conflicts", "gap_hours",
                "first", "last", "seconds"]  # fmt: skip
        df = pd.DataFrame([asdict(s) for s in self.series], columns=[*cols, "note"])
        return df[cols]

    def text(self) -> str:
        lines = [self.table().to_string(index=False, float_format=lambda v: f"{v:.2f}")]
        total = sum(s.bars_added for s in self.series)
        gaps = sum(s.gap_hours for s in self.series)
        lines.append(
            f"bars fetched: {total}  gap hours: {gaps}  integrity flags: {sum(self.flags.values())} "
            f"{dict(self.flags) if self.flags else ''}  time: {self.seconds:.1f} s"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"series": [asdict(s) for s in self.series], "flags": self.flags, "seconds": self.seconds}


def _hour_floor(seconds: float) -> int:
    return int(seconds) // HOUR * HOUR


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=max(total, 0), desc=desc, unit="h", disable=not enabled, leave=False)


class Downloader:
    """Fills a `BarStore` from ccxt exchanges (``{"kraken": ccxt.kraken(), ...}``).

    ``now`` gives the current Unix time (the store never takes a bar that has not closed);
    ``sleep`` is the backoff wait (tests pass a recorder).
    """

    def __init__(
        self,
        store: BarStore,
        exchanges: dict[str, Any],
        *,
        page_limit: int = 1000,
        retries: int = 5,
        backoff_s: float = 1.0,
        progress: bool = True,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if page_limit < 1:
            raise DataError(f"download.page_limit: expected >= 1, got {page_limit}")
        self.store = store
        self.exchanges = exchanges
        self.page_limit = int(page_limit)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.progress = progress
        self.now = now
        self.sleep = sleep
        self._loaded: set[str] = set()

    # ----------------------------------------------------------------- helpers
    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return call_with_retry(fn, *args, retries=self.retries, backoff_s=self.backoff_s, sleep=self.sleep,
                               what=what, **kwargs)  # fmt: skip

    def exchange(self, name: str) -> Any:
        if name not in self.exchanges:
            raise DataError(f"download: no ccxt exchange object for {name!r} (have {sorted(self.exchanges)})")
        ex = self.exchanges[name]
        if name not in self._loaded:
            self._call(f"{name} load_markets", ex.load_markets)
            self._loaded.add(name)
        return ex

    def market_id(self, name: str, asset: str, quote: str) -> tuple[Any, str, str]:
        """(exchange, ccxt symbol, exchange id) of the asset's pair; DataError if the exchange lacks it."""
        ex = self.exchange(name)
        symbol = f"{asset}/{quote}"
        if symbol not in ex.markets:
            raise DataError(f"{name}: no market {symbol} (asset {asset}) on this exchange")
        return ex, symbol, str(ex.market(symbol)["id"])

    def _begin(self, exchange: str, pair: str, start: int, s: SeriesSummary) -> int:
        """First hour to fetch: after the last stored bar (the store is append-only).

        Hours before a series' first stored bar are not back-filled: asking for an earlier
        ``start`` than the store holds says so (log and the summary's note) instead of
        silently fetching nothing.
        """
        last = self.store.last_timestamp(exchange, pair)
        first = self.store.first_timestamp(exchange, pair)
        if first is not None and start < first:
            s.note = (f"not back-filled: the store's {exchange} {pair} starts at {iso(first)}, after start "
                      f"{iso(start)}; an earlier history needs a new store")
            log.warning("%s", s.note)
        return start if last is None or last < start else last + HOUR

    def _finish(self, s: SeriesSummary, start: int, end: int, t0: float) -> SeriesSummary:
        s.gap_hours = self.gap_hours(s.exchange, s.pair, start, end)
        s.seconds = time.perf_counter() - t0
        return s

    def gap_hours(self, exchange: str, pair: str, start: int, end: int) -> int:
        """Hours with no bar between the series' first and last stored bar inside ``[start, end]``."""
        try:
            raw = self.store.read(exchange, pair, start, end)
        except DataError:
            return 0
        ts = raw.timestamps
        return int((ts[-1] - ts[0]) // HOUR + 1 - ts.size) if ts.size else 0

    # ------------------------------------------------------------ Kraken: csv
    def kraken_csv(self, path: str | Path, asset: str, start: int, end: int, quote: str = "USD") -> SeriesSummary:
        """Import one Kraken OHLCVT dump file (hourly or finer) for ``asset``."""
        from envs.data.loaders import read_kraken_file

        t0 = time.perf_counter()
        pair = pair_key(asset, quote)
        raw = read_kraken_file(path, asset)
        keep = (raw.timestamps >= start) & (raw.timestamps <= end)
        res = self.store.append("kraken", pair, raw.take(keep), "kraken_csv")
        s = SeriesSummary("kraken", pair, "csv", bars_added=res.added, conflicts=res.conflicts, note=str(path))
        return self._finish(s, start, end, t0)

    # --------------------------------------------------------- Kraken: trades
    def kraken_trades(
        self, asset: str, start: int, end: int, quote: str = "USD", max_pages: int | None = None
    ) -> SeriesSummary:
        """Rebuild hourly bars ``[start, end)`` from the Trades endpoint, resuming saved state."""
        t0 = time.perf_counter()
        pair = pair_key(asset, quote)
        s = SeriesSummary("kraken", pair, "trades")
        ex, symbol, _ = self.market_id("kraken", asset, quote)
        state = self.store.load_state("kraken", pair, "trades")
        if state is not None:
            cursor: str | None = state["cursor"]
            tail = [tuple(r) for r in state["tail"]]
            begin = int(state["begin"])
        else:
            begin = self._begin("kraken", pair, start, s)
            cursor, tail = None, []
        if begin >= end:
            return self._finish(s, start, end, t0)
        bar = _progress((end - begin) // HOUR, f"kraken {pair} trades", self.progress)
        done_to = begin
        pages = 0
        while True:
            if cursor is None:  # first page: ccxt's since (ms); one second early, Kraken's since is exclusive
                page = self._call(f"kraken {symbol} fetch_trades", ex.fetch_trades, symbol,
                                  (begin - 1) * 1000, self.page_limit)  # fmt: skip
            else:
                # one nanosecond before the cursor: trades of one taker order share a timestamp and a page
                # may end inside such a group; the repeats are dropped by trade id below
                page = self._call(f"kraken {symbol} fetch_trades", ex.fetch_trades, symbol, None, self.page_limit,
                                  {"since": str(int(cursor) - 1)})  # fmt: skip
            s.requests += 1
            pages += 1
            rows = _trade_rows(page)
            if page:
                previous, cursor = cursor, str(page[-1]["info"][-1])  # Kraken's `last`, appended by ccxt
                if cursor == previous and not len(page) < self.page_limit:
                    raise DataError(f"kraken {symbol}: the Trades cursor did not advance past {cursor}")
            fresh = [r for r in rows if begin * 1000 <= r[1]]
            seen = {r[0] for r in tail if r[0] is not None}
            merged = tail + [r for r in fresh if r[0] is None or r[0] not in seen]
            caught_up = len(page) < self.page_limit
            last_ms = merged[-1][1] if merged else begin * 1000
            if last_ms >= end * 1000:
                cut = end
            elif caught_up:  # no later trade exists yet: every hour before the running one is complete
                cut = min(end, _hour_floor(self.now()))
            else:
                cut = _hour_floor(last_ms / 1000)
            reached_end = cut >= end
            ready = [r for r in merged if r[1] < cut * 1000]
            tail = [r for r in merged if r[1] >= cut * 1000] if not reached_end else []
            if ready:
                arr = np.array([r[1:] for r in ready], dtype=np.float64)
                bars = trades_to_bars(arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2], asset=asset,
                                      source=f"kraken {symbol} trades")  # fmt: skip
                res = self.store.append("kraken", pair, bars, "trades")
                s.bars_added += res.added
                s.conflicts += res.conflicts
                s.trades += len(ready)
            bar.update(max(0, (cut - done_to) // HOUR))
            done_to = max(done_to, cut)
            if reached_end:
                self.store.clear_state("kraken", pair, "trades")
                break
            self.store.save_state("kraken", pair, "trades", {"begin": begin, "cursor": cursor,
                                                             "tail": [list(r) for r in tail]})  # fmt: skip
            if caught_up:
                s.note = "caught up with the present; the running hour stays in the resume state"
                break
            if max_pages is not None and pages >= max_pages:
                s.note = f"stopped after {pages} pages (max_pages)"
                break
        bar.close()
        return self._finish(s, start, end, t0)

    # ----------------------------------------------------------- Kraken: ohlc
    def kraken_ohlc(self, asset: str, start: int, end: int, quote: str = "USD") -> SeriesSummary:
        """The recent hourly bars (up to 720) from the OHLC endpoint, complete hours only."""
        t0 = time.perf_counter()
        pair = pair_key(asset, quote)
        s = SeriesSummary("kraken", pair, "ohlc")
        ex, symbol, market_id = self.market_id("kraken", asset, quote)
        begin = self._begin("kraken", pair, start, s)
        if begin > end:
            return self._finish(s, start, end, t0)
        resp = self._call(f"kraken {symbol} OHLC", ex.publicGetOHLC,
                          {"pair": market_id, "interval": 60, "since": begin - HOUR})  # fmt: skip
        s.requests += 1
        rows = (resp.get("result") or {}).get(market_id) or []
        bars = parse_kraken_ohlc(rows[:-1], asset, f"kraken {symbol} OHLC")  # the last row is the running hour
        now_h = _hour_floor(self.now())
        keep = (bars.timestamps >= begin) & (bars.timestamps <= end) & (bars.timestamps + HOUR <= now_h + HOUR)
        keep &= bars.trades > 0  # type: ignore[operator]
        res = self.store.append("kraken", pair, bars.take(keep), "ohlc")
        s.bars_added, s.conflicts = res.added, res.conflicts
        if rows and int(rows[0][0]) > begin:
            s.note = f"OHLC starts at {iso(int(rows[0][0]))}: older hours need the trades source"
        return self._finish(s, start, end, t0)

    # ------------------------------------------------------- reference ohlcv
    def reference(self, exchange: str, asset: str, start: int, end: int) -> SeriesSummary:
        """Hourly bars of a reference exchange (ccxt ``fetch_ohlcv`` paged by ``since``)."""
        t0 = time.perf_counter()
        quote = QUOTES[exchange]
        pair = pair_key(asset, quote)
        s = SeriesSummary(exchange, pair, "ohlcv")
        ex, symbol, _ = self.market_id(exchange, asset, quote)
        if symbol != ccxt_symbol(exchange, asset):  # pragma: no cover - one mapping rule
            raise DataError(f"{exchange}: symbol mapping mismatch for {asset}")
        begin = self._begin(exchange, pair, start, s)
        last_closed = min(end, _hour_floor(self.now()) - HOUR)
        bar = _progress((last_closed - begin) // HOUR + 1, f"{exchange} {pair}", self.progress)
        since = begin
        while since <= last_closed:
            rows = self._call(f"{exchange} {symbol} fetch_ohlcv", ex.fetch_ohlcv, symbol, "1h", since * 1000,
                              self.page_limit)  # fmt: skip
            s.requests += 1
            arr = np.array(rows, dtype=np.float64).reshape(-1, 6)
            ts = (arr[:, 0] // 1000).astype(np.int64)
            keep = (ts >= since) & (ts <= last_closed)
            if not keep.any():  # an empty window (outage): step over it
                nxt = since + self.page_limit * HOUR
            else:
                k = arr[keep]
                raw = RawBars(asset, f"{exchange} {symbol}", HOUR, ts[keep], k[:, 1], k[:, 2], k[:, 3], k[:, 4],
                              k[:, 5], None, np.arange(int(keep.sum()), dtype=np.int64) + 1)  # fmt: skip
                res = self.store.append(exchange, pair, raw, "ohlcv")
                s.bars_added += res.added
                s.conflicts += res.conflicts
                nxt = int(ts[keep][-1]) + HOUR
            bar.update(max(0, min(nxt, last_closed + HOUR) - since) // HOUR)
            since = nxt
        bar.close()
        return self._finish(s, start, end, t0)


def _trade_rows(page: Sequence[dict[str, Any]]) -> list[tuple[int | None, int, float, float]]:
    """(id, time ms, price, amount) of ccxt trades, in exchange order (numeric id, else time)."""
    rows = []
    for t in page:
        tid = t.get("id")
        rows.append((int(tid) if tid is not None and str(tid).isdigit() else None, int(t["timestamp"]),
                     float(t["price"]), float(t["amount"])))  # fmt: skip
    if rows and all(r[0] is not None for r in rows):
        rows.sort(key=lambda r: (r[1], r[0]))  # type: ignore[operator]
    return rows


def parse_kraken_ohlc(rows: Sequence[Sequence[Any]], asset: str, source: str) -> RawBars:
    """Kraken OHLC rows ``[time, open, high, low, close, vwap, volume, count]`` as hourly RawBars."""
    if not rows:
        z = np.zeros(0)
        return RawBars(asset, source, HOUR, np.zeros(0, np.int64), z, z, z, z, z, z, np.zeros(0, np.int64))
    try:
        a = np.array([[float(x) for x in r[:8]] for r in rows], dtype=np.float64)
    except (TypeError, ValueError, IndexError) as exc:
        raise DataError(f"{source}: expected rows [time, o, h, l, c, vwap, volume, count]: {exc}") from exc
    return RawBars(asset, source, HOUR, a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 6],
                   a[:, 7], np.arange(len(rows), dtype=np.int64) + 1)  # fmt: skip
