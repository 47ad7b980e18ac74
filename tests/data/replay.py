"""A replayer of exchange HTTP responses behind real ccxt exchange objects (no network).

`ReplaySession` replaces a ccxt exchange's ``requests`` session: ccxt builds the real URL
(its pagination parameters included), its rate limiter throttles, and the response goes
through ccxt's own JSON handling, error mapping and parsing. The session answers from
recorded payloads (`../shared/data/kraken/api_fixtures/`) and from the hand-made shapes in
``tests/data/fixtures/`` (see the README there), paging them the way each exchange
documents it. Failures (timeouts, HTTP 503/429, Kraken error bodies) can be injected, and a
run can be "killed" after N requests (KeyboardInterrupt) to test resuming.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
from requests.structures import CaseInsensitiveDict

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
SHARED = HERE.parents[1].parent / "shared" / "data"
KRAKEN_API = SHARED / "kraken" / "api_fixtures"
NAUTILUS = KRAKEN_API / "nautilus_trader" / "public_rest_recorded"
KRAKEN_NET = KRAKEN_API / "kraken_net" / "ExchangeData"


def kraken_net_body(name: str) -> dict[str, Any]:
    """The JSON body of a Kraken.Net fixture (lines 1-3 are method, path, auth flag)."""
    text = (KRAKEN_NET / name).read_text().split("\n", 3)[3]
    doc: dict[str, Any] = json.loads(text)
    return doc


def recorded(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((NAUTILUS / name).read_text())
    return doc


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def trade_ns(row: Sequence[Any]) -> int:
    """A Kraken trade row's time in integer nanoseconds (from its decimal seconds)."""
    return int(Decimal(repr(row[2])) * 10**9)


class Injected(Exception):
    """Marker for the failure kinds `ReplaySession.fail_next` accepts."""


class ReplaySession(requests.Session):
    """A ``requests.Session`` whose ``request`` is answered by route handlers, not the network."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, Callable[[dict[str, str]], Any]] = {}
        self.log: list[tuple[str, dict[str, str]]] = []
        self.failures: list[str] = []
        self.interrupt_after: int | None = None  # raise KeyboardInterrupt at this request number
        self.interrupt_on: str = ""  # ... counting only paths containing this text
        self.sent_headers: list[dict[str, str]] = []  # the headers of every request, in order (credential checks)

    def route(self, path: str, handler: Callable[[dict[str, str]], Any]) -> None:
        self.routes[path] = handler

    def fail_next(self, *kinds: str) -> None:
        """Queue failures for the next requests.

        ``timeout`` (read timeout), ``reset`` (connection reset), an HTTP status code
        (``429``, ``500``, ``502``, ``503``, ``504``, ``520``), ``malformed`` (a JSON body cut
        short), ``html`` (a Cloudflare-style HTML page with HTTP 200), ``empty`` (HTTP 200, no
        body), ``kraken_busy`` / ``kraken_rate`` or ``kraken:<error>`` (Kraken's
        ``{"error": [...]}`` with HTTP 200).
        """
        self.failures.extend(kinds)

    def count(self, text: str) -> int:
        return sum(text in p for p, _ in self.log)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parsed = urlparse(str(url))
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        if (self.interrupt_after is not None and self.interrupt_on in parsed.path
                and self.count(self.interrupt_on) >= self.interrupt_after):  # fmt: skip
            raise KeyboardInterrupt(f"replay: killed before request {self.interrupt_after + 1} to {parsed.path}")
        self.log.append((parsed.path, query))
        self.sent_headers.append({str(k): str(v) for k, v in (kwargs.get("headers") or {}).items()})
        if self.failures:
            return _fault(self.failures.pop(0), parsed.path, str(url))
        handler = self.routes.get(parsed.path)
        if handler is None:
            return _response(404, json.dumps({"error": [f"replay: no route for {parsed.path}"]}), str(url))
        return _response(200, json.dumps(handler(query)), str(url))


_KRAKEN_ERRORS = {"kraken_busy": "EService:Unavailable", "kraken_rate": "EAPI:Rate limit exceeded"}


def _fault(kind: str, path: str, url: str) -> requests.Response:
    """The injected failure ``kind`` (see `ReplaySession.fail_next`): a response, or the exception requests raises."""
    if kind == "timeout":
        raise requests.exceptions.ReadTimeout(f"replay: read timed out on {path}")
    if kind == "reset":
        raise requests.exceptions.ConnectionError(f"replay: connection reset by peer on {path}")
    if kind.isdigit():
        return _response(int(kind), _REASONS.get(int(kind), "Error"), url)
    if kind == "malformed":
        return _response(200, '{"error":[],"result":{"XXBTZUSD":[[1680307200,"28465.1","28', url)
    if kind == "html":
        return _response(200, "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title>", url)
    if kind == "empty":
        return _response(200, "", url)
    if kind in _KRAKEN_ERRORS or kind.startswith("kraken:"):
        error = _KRAKEN_ERRORS.get(kind) or kind.split(":", 1)[1]
        return _response(200, json.dumps({"error": [error]}), url)
    raise Injected(kind)


_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout", 520: "Web Server Returned an Unknown Error"}  # fmt: skip


def _response(status: int, text: str, url: str) -> requests.Response:
    r = requests.models.Response()
    r.status_code = status
    r._content = text.encode()
    r.url = url
    r.reason = _REASONS.get(status, "")
    r.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
    return r


# ------------------------------------------------------------------------ Kraken
def kraken_session(trades: dict[str, list[list[Any]]] | None = None,
                   ohlc: dict[str, list[list[Any]]] | None = None) -> ReplaySession:  # fmt: skip
    """Kraken's public endpoints: Assets/AssetPairs (recorded), Trades and OHLC served from ``trades``/``ohlc``.

    Trades: rows with time > ``since`` (seconds, or nanoseconds as in Kraken's ``last``),
    at most ``count``; ``last`` is the last served trade's time in ns. OHLC: rows after
    ``since``, at most the last 720, the running bar included, as Kraken does.
    """
    s = ReplaySession()
    assets = kraken_net_body("GetAssets.txt")
    pairs = kraken_net_body("GetSymbols.txt")
    pairs["result"].update(recorded("http_asset_pairs.json")["result"])  # XBTUSDT (recorded 2025-11)
    s.route("/0/public/Assets", lambda q: assets)
    s.route("/0/public/AssetPairs", lambda q: pairs)
    tape = trades or {"XBTUSDT": recorded("http_trades.json")["result"]["XBTUSDT"]}
    bars = ohlc or {}

    def serve_trades(q: dict[str, str]) -> dict[str, Any]:
        pair = q["pair"]
        rows = tape.get(pair)
        if rows is None:
            return {"error": ["EQuery:Unknown asset pair"]}
        since = int(q.get("since", "0"))
        since_ns = since * 10**9 if since < 10**12 else since
        count = int(q.get("count", "1000"))
        out = [r for r in rows if trade_ns(r) > since_ns][:count]
        last = trade_ns(out[-1]) if out else since_ns
        return {"error": [], "result": {pair: [list(r) for r in out], "last": str(last)}}

    def serve_ohlc(q: dict[str, str]) -> dict[str, Any]:
        pair = q["pair"]
        rows = bars.get(pair, [])
        since = int(q.get("since", "0"))
        out = [r for r in rows[-720:] if int(r[0]) > since] or rows[-1:]
        return {"error": [], "result": {pair: out, "last": int(out[-1][0]) if out else since}}

    s.route("/0/public/Trades", serve_trades)
    s.route("/0/public/OHLC", serve_ohlc)
    return s


# ----------------------------------------------------------------------- Binance
def binance_rows_from_csv(path: Path, start: int, end: int) -> list[list[Any]]:
    """Binance klines rows (documented 12-field shape) from the shared BTCUSDT_1h CSV (real values)."""
    out = []
    with gzip.open(path, "rt") as fh:
        next(fh)
        for line in fh:
            t, o, h, low, c, v = line.strip().split(",")[:6]
            ts = int(float(t))
            if start <= ts <= end:
                out.append([ts * 1000, o, h, low, c, v, ts * 1000 + 3_599_999, "0", 0, "0", "0", "0"])
    return out


def binance_session(klines: dict[str, list[list[Any]]]) -> ReplaySession:
    """Binance: exchangeInfo (hand-made, one symbol) and klines paged by startTime/limit."""
    s = ReplaySession()
    info = fixture("binance_exchange_info.json")
    s.route("/api/v3/exchangeInfo", lambda q: info)

    def serve(q: dict[str, str]) -> list[list[Any]]:
        rows = klines.get(q["symbol"], [])
        start = int(q.get("startTime", "0"))
        limit = min(int(q.get("limit", "500")), 1000)
        return [r for r in rows if r[0] >= start][:limit]

    s.route("/api/v3/klines", serve)
    return s


# ---------------------------------------------------------------------- Coinbase
def coinbase_session(candles: dict[str, list[dict[str, str]]]) -> ReplaySession:
    """Coinbase Advanced Trade: currencies/products (hand-made) and candles by start/end (newest first)."""
    s = ReplaySession()
    s.route("/v2/currencies", lambda q: fixture("coinbase_currencies.json"))
    s.route("/v2/currencies/crypto", lambda q: fixture("coinbase_currencies_crypto.json"))
    s.route("/v2/exchange-rates", lambda q: fixture("coinbase_exchange_rates.json"))
    products = fixture("coinbase_products.json")
    s.route("/api/v3/brokerage/market/products",
            lambda q: products if q.get("product_type") != "FUTURE" else {"products": [], "num_products": 0})
    for product, rows in candles.items():
        def serve(q: dict[str, str], rows: list[dict[str, str]] = rows) -> dict[str, Any]:
            lo, hi = int(q["start"]), int(q["end"])
            got = [r for r in rows if lo <= int(r["start"]) <= hi][:350]
            return {"candles": sorted(got, key=lambda r: -int(r["start"]))}

        s.route(f"/api/v3/brokerage/market/products/{product}/candles", serve)
    return s


def coinbase_rows(bars: Sequence[Sequence[float]]) -> list[dict[str, str]]:
    """Coinbase candle objects from (time, open, high, low, close, volume) tuples."""
    keys = ("start", "open", "high", "low", "close", "volume")
    return [{k: (str(int(v)) if k == "start" else repr(float(v))) for k, v in zip(keys, b, strict=True)} for b in bars]
