"""`KrakenFeed`: closed hourly bars from Kraken's public REST API through a real ccxt ``kraken``.

Public endpoints only (``SystemStatus``, ``OHLC``, ``Ticker``), called through ccxt's raw
methods (``publicGet*``: ccxt's ``fetch_ohlcv`` drops the trade count, and the raw calls
need no ``load_markets``); ccxt's rate limiter is on, at no more than one call per
``min_interval_ms`` (1 s by default). The feed holds no API keys: a config carrying any
credential is refused, and nothing it calls needs one.

`next_bar` per due hour: one ``SystemStatus`` (maintenance / cancel-only / post-only raise
`FeedDown`), one ``OHLC`` per asset, and, once the bar is published, one ``Ticker`` for the
whole universe (the spread from the best bid / ask). Kraken's last OHLC row is the still
running bar and is dropped. What the payload shows is reported, never repaired:

- ``missing:A``: Kraken has moved past the hour but serves no row for A at it;
- ``duplicate:A``: several rows at one time (identical rows are used, conflicting ones give NaN);
- ``out_of_order:A``: the rows are not in time order (the hour's row is still used);
- ``bad_price:A`` / ``bad_volume:A``: a NaN, unparsable, zero or negative price (negative
  volume): the asset's bar is NaN;
- ``no_trades:A``: Kraken's count-0 row (flat at the last price, no trade): NaN, as the
  store and the backtest have no bar for such an hour;
- ``crossed_book:A``: best bid >= best ask in the ticker (spread reported as computed).

Validation and the kill switch stay with the loop. `history` backfills beyond the 720
hours the OHLC endpoint serves from the local bar store (`envs.data.store.BarStore`),
adding the recent hours from ``OHLC``. Failures follow `paper.feeds.faults`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.data.align import align_bars, iso
from envs.data.download import OHLC_WINDOW, parse_kraken_ohlc
from envs.data.market import HOUR, MarketData
from envs.data.pairs import canonical_asset, load_pairs, pair_info
from envs.data.store import BarStore, pair_key
from envs.data.validation import RawBars, validate_raw
from envs.errors import ConfigError, DataError
from paper.feeds.base import BarBatch, NotPublished
from paper.feeds.faults import RetryPolicy, check_result, feed_down, guarded_call, status_reason

# ccxt's credential fields (Exchange.requiredCredentials): a paper feed takes none of them
CREDENTIALS = ("apiKey", "secret", "password", "uid", "login", "twofa", "privateKey", "walletAddress", "token",
               "accountId")  # fmt: skip


def refuse_credentials(config: Mapping[str, Any], where: str = "feed.kraken") -> None:
    """ConfigError naming (never echoing) any credential a paper-mode config carries."""
    found = sorted(k for k in CREDENTIALS if config.get(k))
    if found:
        raise ConfigError(f"{where}: paper trading uses public endpoints only and holds no API keys; "
                          f"remove {found} from the config")  # fmt: skip


def canonical_hash(payload: Any) -> str:
    """SHA-256 hex of a JSON payload with sorted keys and no whitespace."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _pair_rows(result: Mapping[str, Any], names: Sequence[str], what: str) -> list[Any]:
    """The OHLC rows of a pair in Kraken's ``result`` (keyed by its REST name or altname)."""
    import ccxt

    for name in names:
        rows = result.get(name)
        if rows is not None:
            if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) >= 8 for r in rows):
                raise ccxt.BadResponse(f"{what}: expected rows [time, o, h, l, c, vwap, volume, count]")
            return rows
    raise ccxt.BadResponse(f"{what}: no rows for {list(names)} in the result (keys {sorted(result)[:5]})")


class KrakenFeed:
    """The `paper.feeds.base.Feed` of Kraken spot pairs (see the module docstring).

    ``assets`` are tickers (``BTC``: its USD pair) or Kraken pair names (``XBTUSDT``).

    ``exchange`` is a ccxt ``kraken`` object (built here when None, with ``config`` as its
    options); ``store`` the Parquet bar store for `history`; ``sleep``, ``rng`` and ``now``
    are injectable for tests (backoff waits, jitter draws, wall clock).
    """

    def __init__(
        self,
        assets: Sequence[str],
        *,
        exchange: Any = None,
        config: Mapping[str, Any] | None = None,
        store: str | Path | None = None,
        policy: RetryPolicy | None = None,
        min_interval_ms: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        cfg = dict(config or {})
        refuse_credentials(cfg)
        if not assets:
            raise ConfigError("feed.kraken.assets: expected at least one asset")
        infos = [pair_info(a) for a in assets]  # DataError naming an unknown pair
        self.assets: tuple[str, ...] = tuple(i.asset for i in infos)
        if len(set(self.assets)) != len(self.assets):
            raise ConfigError(f"feed.kraken.assets: duplicate asset in {list(assets)}")
        self._names = {i.asset: (i.rest_name, i.altname) for i in infos}
        self._quotes = {i.asset: canonical_asset(i.quote) for i in infos}  # ZUSD -> USD: the store's pair key
        if exchange is None:
            import ccxt

            exchange = ccxt.kraken({"enableRateLimit": True, **cfg})
        refuse_credentials({k: getattr(exchange, k, None) for k in CREDENTIALS}, "feed.kraken exchange")
        if type(exchange).__name__ != "kraken":
            raise ConfigError(f"feed.kraken: expected a ccxt kraken exchange, got {type(exchange).__name__}")
        exchange.enableRateLimit = True
        exchange.rateLimit = max(float(exchange.rateLimit), float(min_interval_ms))
        self.exchange = exchange
        self.policy = policy or RetryPolicy()
        self.sleep, self.rng, self.now = sleep, rng, now
        self.store = BarStore(store) if store is not None else None
        if self.store is not None:
            self.store.check()  # DataError naming any corrupted partition
        self.last_payload: dict[str, Any] | None = None  # the raw payloads of the last BarBatch (for the audit)
        self.calls = 0

    # ------------------------------------------------------------------ calls
    def _call(self, what: str, fn: Callable[[dict[str, Any]], Any], params: dict[str, Any],
              pick: Callable[[dict[str, Any]], Any] | None = None) -> Any:  # fmt: skip
        """``fn(params)``'s checked ``result`` (through ``pick``), under the retry / FeedDown table."""

        def once() -> Any:
            self.calls += 1
            result = check_result(fn(params), what)
            return pick(result) if pick is not None else result

        return guarded_call(once, what, self.policy, self.sleep, self.rng)

    def status(self) -> str:
        """Kraken's SystemStatus; `FeedDown` unless ``online``."""
        result = self._call("kraken SystemStatus", self.exchange.publicGetSystemStatus, {})
        status = result.get("status")
        reason = status_reason(status)
        if reason is not None:
            raise feed_down(reason, f"kraken SystemStatus: status {status!r} (timestamp {result.get('timestamp')})")
        return str(status)

    def _ohlc(self, asset: str, since: int) -> list[Any]:
        rest, alt = self._names[asset]
        what = f"kraken OHLC {alt}"
        rows = self._call(what, self.exchange.publicGetOHLC, {"pair": rest, "interval": 60, "since": since},
                          lambda result: _pair_rows(result, (rest, alt), what))  # fmt: skip
        return list(rows)

    def _ticker(self) -> dict[str, Any]:
        pairs = ",".join(self._names[a][0] for a in self.assets)
        ticker: dict[str, Any] = self._call("kraken Ticker", self.exchange.publicGetTicker, {"pair": pairs})
        return ticker

    # --------------------------------------------------------------- next bar
    def next_bar(self, after_hour: int) -> BarBatch | None:
        """The closed bar at ``after_hour + 3600`` for the universe, or None while Kraken has not published it."""
        if after_hour % HOUR:
            raise DataError(f"next_bar: after_hour={after_hour} is not on the hour grid")
        target = after_hour + HOUR
        if self.now() < target + HOUR:
            return None  # the bar is still running by our clock: no call needed
        self.status()
        rows = {a: self._ohlc(a, target - 2 * HOUR) for a in self.assets}
        latest = [max((int(_num(r[0])) for r in rs), default=-1) for rs in rows.values()]
        if max(latest) <= target:
            return None  # Kraken's running bar is still this hour (or earlier): not published yet
        flags: list[str] = []
        n = len(self.assets)
        out = {f: np.full(n, np.nan) for f in ("open", "high", "low", "close", "volume", "trades")}
        for i, a in enumerate(self.assets):
            for f, v in zip(out, self._bar_of(a, rows[a], target, flags), strict=True):
                out[f][i] = v
        ticker = self._ticker()
        spread = self._spread(ticker, flags)
        self.last_payload = {"hour": target, "ohlc": rows, "ticker": ticker}
        return BarBatch(hour=target, open=out["open"], high=out["high"], low=out["low"], close=out["close"],
                        volume=out["volume"], trades=out["trades"], spread=spread,
                        raw_hash=canonical_hash(self.last_payload), flags=tuple(flags))  # fmt: skip

    def _bar_of(self, asset: str, rows: list[Any], target: int, flags: list[str]) -> tuple[float, ...]:
        """(open, high, low, close, volume, trades) of ``target`` from one pair's rows, flags appended."""
        nan6 = (math.nan,) * 6
        times = [int(_num(r[0])) for r in rows]
        if any(c > 1 for c in Counter(times).values()):
            flags.append(f"duplicate:{asset}")
        if any(b < a for a, b in itertools.pairwise(times)):
            flags.append(f"out_of_order:{asset}")
        closed = rows[:-1]  # Kraken's last row is the running bar
        hits = [r for r in closed if int(_num(r[0])) == target]
        if not hits:
            flags.append(f"missing:{asset}")
            return nan6
        if any(list(h) != list(hits[0]) for h in hits[1:]):
            return nan6  # conflicting duplicates: no way to tell which is Kraken's bar (flagged above)
        r = hits[0]
        o, h, lo, c, vol, cnt = (_num(r[1]), _num(r[2]), _num(r[3]), _num(r[4]), _num(r[6]), _num(r[7]))
        if not all(math.isfinite(p) and p > 0 for p in (o, h, lo, c)):
            flags.append(f"bad_price:{asset}")
            return nan6
        if not (math.isfinite(vol) and vol >= 0 and math.isfinite(cnt) and cnt >= 0):
            flags.append(f"bad_volume:{asset}")
            return nan6
        if cnt == 0:
            flags.append(f"no_trades:{asset}")
            return nan6
        return (o, h, lo, c, vol, cnt)

    def _spread(self, ticker: Mapping[str, Any], flags: list[str]) -> np.ndarray:
        """Relative full spread (ask - bid) / mid per asset from the ticker's best bid/ask; NaN unknown."""
        out = np.full(len(self.assets), np.nan)
        for i, a in enumerate(self.assets):
            entry = next((ticker[k] for k in self._names[a] if isinstance(ticker.get(k), dict)), None)
            if entry is None:
                continue
            try:
                ask, bid = float(entry["a"][0]), float(entry["b"][0])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if not (math.isfinite(ask) and math.isfinite(bid) and ask > 0 and bid > 0):
                continue
            if bid >= ask:
                flags.append(f"crossed_book:{a}")
            out[i] = (ask - bid) / ((ask + bid) / 2)
        return out

    # ---------------------------------------------------------------- history
    def history(self, end_hour: int, n_hours: int) -> MarketData:
        """The ``n_hours`` closed bars ending at ``end_hour`` (store first, OHLC for the rest), gap policy mark."""
        if end_hour % HOUR or n_hours < 1:
            raise DataError(f"history: expected end_hour on the hour grid and n_hours >= 1, got {end_hour}, {n_hours}")
        start = end_hour - (n_hours - 1) * HOUR
        raws = [r for r in (self._series(a, start, end_hour) for a in self.assets) if r.timestamps.size]
        if not raws:
            raise DataError(f"history: no bar for {list(self.assets)} from {iso(start)} to {iso(end_hour)}")
        market = align_bars(raws, "mark", pairs=load_pairs(), source=f"kraken feed {iso(start)}..{iso(end_hour)}")
        return _on_window(market, self.assets, start, n_hours)

    def _series(self, asset: str, start: int, end: int) -> RawBars:
        """One asset's stored bars in [start, end], extended by OHLC rows for the hours after the store's last."""
        pair = pair_key(asset, self._quotes[asset])
        in_store = self.store is not None and ("kraken", pair) in self.store.series()
        stored = self.store.read("kraken", pair, start, end) if self.store is not None and in_store else None
        have = int(stored.timestamps[-1]) if stored is not None and stored.timestamps.size else start - HOUR
        parts = [stored] if stored is not None and stored.timestamps.size else []
        if have < end:
            rows = self._ohlc(asset, have)
            closed = parse_kraken_ohlc(rows[:-1], asset, f"kraken OHLC {self._names[asset][1]}")
            ts = closed.timestamps
            if ts.size == 0 or int(ts.max()) < end:
                raise NotPublished(f"history: kraken OHLC {asset}: the bar at {iso(end)} has not closed yet "
                                f"(last closed {iso(int(ts.max())) if ts.size else 'none'})")  # fmt: skip
            first = int(ts.min())
            if first > have + HOUR:
                raise DataError(f"history: {asset}: hours {iso(have + HOUR)} .. {iso(first - HOUR)} are in neither "
                                f"the store nor Kraken's OHLC window ({OHLC_WINDOW} h from {iso(first)}): "
                                "extend the store with scripts/download_data.py")  # fmt: skip
            keep = (ts > have) & (ts <= end) & (closed.trades > 0)  # type: ignore[operator]
            parts.append(closed.take(keep))
        if not parts:
            return parse_kraken_ohlc([], asset, "kraken feed")
        merged = _concat(parts) if len(parts) > 1 else parts[0]
        return validate_raw(merged) if merged.timestamps.size else merged

    def close(self) -> None:
        """Release the HTTP session (the ccxt object holds no other resource)."""
        session = getattr(self.exchange, "session", None)
        if session is not None:
            session.close()


def _concat(parts: Sequence[RawBars]) -> RawBars:
    """Stored bars followed by OHLC bars, as one RawBars (rows renumbered)."""

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    trades = cat("trades") if all(p.trades is not None for p in parts) else None
    n = sum(p.timestamps.size for p in parts)
    return RawBars(parts[0].asset, " + ".join(p.path for p in parts), HOUR, cat("timestamps"), cat("open"),
                   cat("high"), cat("low"), cat("close"), cat("volume"), trades,
                   np.arange(n, dtype=np.int64) + 1)  # fmt: skip


def _on_window(m: MarketData, assets: Sequence[str], start: int, n: int) -> MarketData:
    """``m`` re-indexed onto exactly the hours start .. start + (n-1)h and the given asset order."""
    ts = start + HOUR * np.arange(n, dtype=np.int64)
    rows = (m.timestamps - start) // HOUR
    ok = (rows >= 0) & (rows < n)
    cols = [m.assets.index(a) if a in m.assets else -1 for a in assets]

    def put(src: np.ndarray | None, fill: Any, dtype: Any) -> np.ndarray:
        out = np.full((n, len(assets)), fill, dtype=dtype)
        if src is not None:
            for j, c in enumerate(cols):
                if c >= 0:
                    out[rows[ok], j] = src[ok, c]
        return out

    trades = put(m.trades, np.nan, np.float64) if m.trades is not None else None
    return MarketData(assets=tuple(assets), timestamps=ts, open=put(m.open, np.nan, np.float64),
                      high=put(m.high, np.nan, np.float64), low=put(m.low, np.nan, np.float64),
                      close=put(m.close, np.nan, np.float64), volume=put(m.volume, np.nan, np.float64),
                      tradable=put(m.tradable, False, bool), filled=put(m.filled, False, bool), trades=trades,
                      pairs={a: m.pairs[a] for a in assets if a in m.pairs}, source=m.source)  # fmt: skip
