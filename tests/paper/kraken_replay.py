"""Kraken's public REST API replayed behind a real ccxt ``kraken`` object, for the paper feed tests.

Built on `tests.data.replay.ReplaySession` (no network):

- ``SystemStatus``: the recorded Kraken.Net ``GetSystemStatus`` body; ``status`` settable.
- ``Ticker``: the recorded Kraken.Net ``GetTicker`` entry for ``XXBTZUSD``; no ETH/USD ticker
  was recorded, so ETH's entry is nautilus_trader's recorded ``XBTUSDT`` ticker served under
  ``XETHZUSD`` (only the relative spread is read).
- ``OHLC``: Kraken's REST rows ``[time, o, h, l, c, vwap, volume, count]`` (strings) built
  from the real hourly bars in ``shared/data/kraken/ohlcvt_1h`` (XBTUSD, ETHUSD); an hour
  the CSV dump omits (no trade) is served as the REST endpoint does (a flat count-0 row at
  the last close, as in the recorded ``http_ohlc.json``); vwap is not in the dump and is
  served as the bar's mean price. Rows up to the session's clock ``now`` are served, the
  last one being the running bar, at most 720, after ``since`` (exclusive), as Kraken does.
  ``mutate[pair]`` rewrites the served rows (the data faults).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import ccxt
import numpy as np
import requests

from envs.data.loaders import read_kraken_file
from envs.data.validation import RawBars
from tests.data.replay import KRAKEN_API, SHARED, ReplaySession, kraken_net_body, recorded

H = 3600
END = 1_680_303_600  # 2023-03-31 23:00 UTC, the last bar of both dumps
PAIRS = {"BTC": "XXBTZUSD", "ETH": "XETHZUSD"}
FILES = {"BTC": "XBTUSD_60.csv.gz", "ETH": "ETHUSD_60.csv.gz"}


@cache
def raw_bars(asset: str) -> RawBars:
    return read_kraken_file(SHARED / "kraken" / "ohlcvt_1h" / FILES[asset], asset)


@cache
def rest_rows(asset: str, start: int = END - 1500 * H) -> tuple[tuple[Any, ...], ...]:
    """Kraken REST OHLC rows for every hour from ``start`` to END (count-0 rows for no-trade hours)."""
    raw = raw_bars(asset)
    sel = raw.timestamps >= start
    got = {int(t): i for t, i in zip(raw.timestamps[sel], np.flatnonzero(sel), strict=True)}
    last_close = float(raw.close[np.flatnonzero(~sel)[-1]])
    rows = []
    for t in range(start, END + H, H):
        i = got.get(t)
        if i is None:
            c = repr(last_close)
            rows.append((t, c, c, c, c, "0.0", "0.00000000", 0))
            continue
        o, h, lo, c = (float(raw.open[i]), float(raw.high[i]), float(raw.low[i]), float(raw.close[i]))
        assert raw.trades is not None
        rows.append((t, repr(o), repr(h), repr(lo), repr(c), repr((o + h + lo + c) / 4), repr(float(raw.volume[i])),
                     int(raw.trades[i])))  # fmt: skip
        last_close = c
    return tuple(rows)


class KrakenReplay(ReplaySession):
    """A replay of Kraken's public endpoints with a clock; requests are timed (rate-limit checks)."""

    def __init__(self, now: float) -> None:
        super().__init__()
        self.now = now
        self.status = "online"
        self.times: list[float] = []
        self.mutate: dict[str, Callable[[list[list[Any]]], list[list[Any]]]] = {}
        self.ticker_override: dict[str, dict[str, Any]] = {}
        status_doc = kraken_net_body("GetSystemStatus.txt")
        btc = kraken_net_body("GetTicker.txt")["result"]["XXBTZUSD"]
        eth = recorded("http_ticker.json")["result"]["XBTUSDT"]
        tickers = {"XXBTZUSD": btc, "XETHZUSD": eth}

        def status(q: dict[str, str]) -> dict[str, Any]:
            doc = copy.deepcopy(status_doc)
            doc["result"]["status"] = self.status
            return doc

        def ticker(q: dict[str, str]) -> dict[str, Any]:
            merged = {**tickers, **self.ticker_override}
            return {"error": [], "result": {p: merged[p] for p in q["pair"].split(",")}}

        self.route("/0/public/SystemStatus", status)
        self.route("/0/public/Ticker", ticker)
        self.route("/0/public/OHLC", self._ohlc)

    def _ohlc(self, q: dict[str, str]) -> dict[str, Any]:
        pair = q["pair"]
        asset = next(a for a, p in PAIRS.items() if p == pair)
        hour = int(self.now) // H * H
        rows = [list(r) for r in rest_rows(asset) if r[0] <= hour][-720:]
        since = int(q.get("since", "0"))
        out = [r for r in rows if int(r[0]) > since] or rows[-1:]
        if pair in self.mutate:
            out = self.mutate[pair](out)
        return {"error": [], "result": {pair: out, "last": int(rows[-2][0])}}

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.times.append(time.monotonic())
        return super().request(method, url, *args, **kwargs)


def kraken_exchange(session: KrakenReplay, rate_limit_ms: float = 5) -> Any:
    """A real ccxt kraken whose HTTP session is the replay (limiter on, ``rate_limit_ms`` per call)."""
    ex = ccxt.kraken({"enableRateLimit": True, "rateLimit": rate_limit_ms})
    ex.session = session
    return ex


__all__ = ["END", "KRAKEN_API", "PAIRS", "H", "KrakenReplay", "kraken_exchange", "raw_bars", "rest_rows"]
