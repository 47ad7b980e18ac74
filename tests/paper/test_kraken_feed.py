"""`KrakenFeed` against a real ccxt kraken whose HTTP layer replays recorded Kraken responses.

The fault table (`FAULTS`, `DATA_FAULTS`, `STATUS_FAULTS`) lists each injected fault with the
reaction it must get: ``retry`` (then the right bar), ``flag`` (the finding reported, the
asset's bar NaN or kept as stated) or ``down:<reason>`` (`FeedDown`); every case also checks
that the feed is not left corrupted (the next hour, with the fault gone, comes out right).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.data.align import align_bars
from envs.data.market import MarketData
from envs.data.pairs import load_pairs
from envs.data.store import BarStore
from envs.errors import ConfigError, DataError
from paper.feeds.base import BarBatch, Feed, FeedDown
from paper.feeds.faults import RetryPolicy
from paper.feeds.kraken import KrakenFeed, canonical_hash
from tests.data.replay import KRAKEN_API, recorded
from tests.paper.kraken_replay import END, PAIRS, H, KrakenReplay, kraken_exchange, raw_bars

AFTER = END - 30 * H  # next_bar(AFTER) asks for the bar at AFTER + 1 h
NOW = AFTER + 2 * H + 90  # that bar closed 90 s ago; Kraken's running bar is AFTER + 2 h
POLICY = RetryPolicy(retries=3, backoff_s=1.0, max_backoff_s=4.0, jitter=0.5)


def make_feed(now: float = NOW, **kw: Any) -> tuple[KrakenFeed, KrakenReplay, list[float]]:
    session = KrakenReplay(now)
    waits: list[float] = []
    kw.setdefault("policy", POLICY)
    feed = KrakenFeed(("BTC", "ETH"), exchange=kraken_exchange(session), min_interval_ms=5, sleep=waits.append,
                      rng=lambda: 0.5, now=lambda: session.now, **kw)  # fmt: skip
    return feed, session, waits


def csv_bar(asset: str, hour: int) -> tuple[float, ...]:
    raw = raw_bars(asset)
    i = int(np.searchsorted(raw.timestamps, hour))
    assert int(raw.timestamps[i]) == hour
    assert raw.trades is not None
    return tuple(float(a[i]) for a in (raw.open, raw.high, raw.low, raw.close, raw.volume, raw.trades))


def batch_bar(b: BarBatch, i: int) -> tuple[float, ...]:
    assert b.trades is not None
    return tuple(float(a[i]) for a in (b.open, b.high, b.low, b.close, b.volume, b.trades))


def assert_real_bar(b: BarBatch, asset: str) -> None:
    assert batch_bar(b, ("BTC", "ETH").index(asset)) == csv_bar(asset, b.hour)


def assert_nan_bar(b: BarBatch, asset: str) -> None:
    assert all(math.isnan(v) for v in batch_bar(b, ("BTC", "ETH").index(asset)))


def assert_recovers(feed: KrakenFeed, session: KrakenReplay) -> None:
    """No corrupted state: with the fault gone the next hour is served right."""
    session.mutate.clear()
    session.failures.clear()
    session.status = "online"
    session.now += H
    b = feed.next_bar(AFTER + H)
    assert b is not None and b.hour == AFTER + 2 * H and b.flags == ()
    assert_real_bar(b, "BTC")
    assert_real_bar(b, "ETH")


# ------------------------------------------------------------------ the happy path
def test_next_bar_is_kraken_closed_bar_with_spread_and_hash() -> None:
    feed, session, waits = make_feed()
    as_feed: Feed = feed  # the protocol, checked by mypy (Feed is not runtime-checkable)
    assert all(callable(getattr(as_feed, m)) for m in ("history", "next_bar", "close"))
    assert feed.assets == ("BTC", "ETH")
    b = feed.next_bar(AFTER)
    assert b is not None and b.hour == AFTER + H and b.flags == ()
    assert_real_bar(b, "BTC")
    assert_real_bar(b, "ETH")
    # one status, one OHLC per asset, one ticker: nothing else, no retries
    assert [p for p, _ in session.log] == ["/0/public/SystemStatus", "/0/public/OHLC", "/0/public/OHLC",
                                           "/0/public/Ticker"]  # fmt: skip
    assert [q["pair"] for p, q in session.log if p.endswith("OHLC")] == ["XXBTZUSD", "XETHZUSD"]
    assert waits == [] and feed.calls == 4
    # spread from the recorded tickers' best ask / bid
    assert b.spread is not None
    want = [(a - b_) / ((a + b_) / 2) for a, b_ in ((30300.1, 30300.0), (105944.3, 105944.2))]
    np.testing.assert_array_equal(b.spread, want)
    assert b.raw_hash == canonical_hash(feed.last_payload) and len(b.raw_hash) == 64
    feed.close()


def test_verbatim_recorded_ohlc_and_ticker_responses() -> None:
    """ccxt's recorded Kraken OHLC response (XBTUSDT 1h, 2024-01-30, trimmed by ccxt: a jump of 44 h after
    1706641200) and nautilus_trader's recorded XBTUSDT ticker, served verbatim whatever the query."""
    import json

    case = next(c for c in json.loads((KRAKEN_API / "ccxt" / "kraken_http_responses.json").read_text())["cases"]
                if c["method"] == "fetchOHLCV")  # fmt: skip
    rows = case["httpResponse"]["result"]["XBTUSDT"]
    session = KrakenReplay(1706799600 + 1800)
    session.route("/0/public/OHLC", lambda q: case["httpResponse"])
    session.route("/0/public/Ticker", lambda q: recorded("http_ticker.json"))
    feed = KrakenFeed(("XBTUSDT",), exchange=kraken_exchange(session), min_interval_ms=5, sleep=lambda s: None,
                      now=lambda: session.now)  # fmt: skip
    assert feed.assets == ("BTC",)
    for k, row in enumerate(rows[:-1]):
        b = feed.next_bar(int(row[0]) - H)
        assert b is not None and b.hour == row[0] and b.flags == () and b.trades is not None
        got = [b.open[0], b.high[0], b.low[0], b.close[0], b.volume[0], b.trades[0]]
        assert got == [float(row[i]) for i in (1, 2, 3, 4, 6)] + [float(row[7])], k
        assert b.spread is not None and b.spread[0] == pytest.approx(0.1 / 105944.25)
    # the hours ccxt trimmed out: Kraken has moved on (its running bar is 1706799600), so they are missing
    b = feed.next_bar(1706641200)
    assert b is not None and b.flags == ("missing:BTC",) and np.isnan(b.close[0])
    session.now += 2 * H  # our clock says 1706799600 has closed; the payload's last row (running) says not
    n = len(session.log)
    assert feed.next_bar(1706799600 - H) is None  # the last row is Kraken's running bar, never taken
    assert len(session.log) == n + 2  # status and OHLC were asked


def test_not_yet_closed_or_published_gives_none_and_never_invents_a_bar() -> None:
    feed, session, _ = make_feed(now=AFTER + 2 * H - 1)  # the bar is still running by the clock
    assert feed.next_bar(AFTER) is None and session.log == []
    session.now = AFTER + H + 30  # Kraken's clock: the asked bar is still its running row
    feed.now = lambda: AFTER + 2 * H + 5  # ours says closed (clock skew of minutes)
    assert feed.next_bar(AFTER) is None
    assert [p for p, _ in session.log] == ["/0/public/SystemStatus", "/0/public/OHLC", "/0/public/OHLC"]
    with pytest.raises(DataError, match="hour grid"):
        feed.next_bar(AFTER + 1)


def test_replayed_hours_equal_the_recorded_bars() -> None:
    """24 consecutive hours through next_bar equal Kraken's dump hour by hour."""
    feed, session, _ = make_feed()
    hours = []
    for k in range(24):
        session.now = NOW + k * H
        b = feed.next_bar(AFTER + k * H)
        assert b is not None and b.flags == ()
        assert_real_bar(b, "BTC")
        assert_real_bar(b, "ETH")
        hours.append(b.hour)
    assert hours == list(range(AFTER + H, AFTER + 25 * H, H))


# ------------------------------------------------------------------ transport faults
# (injected faults, expected reaction, calls made, backoff waits with rng = 0.5 and jitter 0.5)
FAULTS: list[tuple[tuple[str, ...], str, int, list[float]]] = [
    (("timeout",), "retry", 5, [0.75]),
    (("timeout", "timeout"), "retry", 6, [0.75, 1.5]),
    (("reset",), "retry", 5, [0.75]),
    (("429",), "retry", 5, [0.75]),
    (("kraken_rate",), "retry", 5, [0.75]),  # EAPI:Rate limit exceeded
    (("kraken:EGeneral:Too many requests",), "retry", 5, [0.75]),
    (("500",), "retry", 5, [0.75]),
    (("502",), "retry", 5, [0.75]),
    (("503",), "retry", 5, [0.75]),
    (("504",), "retry", 5, [0.75]),
    (("520",), "retry", 5, [0.75]),
    (("kraken_busy",), "retry", 5, [0.75]),  # EService:Unavailable
    (("kraken:EService:Busy",), "retry", 5, [0.75]),
    (("kraken:EGeneral:Internal error",), "retry", 5, [0.75]),
    (("malformed",), "retry", 5, [0.75]),
    (("html",), "retry", 5, [0.75]),
    (("empty",), "retry", 5, [0.75]),
    (("503", "timeout", "429"), "retry", 7, [0.75, 1.5, 3.0]),
    (("timeout",) * 4, "down:exchange_down", 4, [0.75, 1.5, 3.0]),  # retries + 1 calls (FI-1)
    (("503",) * 4, "down:exchange_down", 4, [0.75, 1.5, 3.0]),
    (("kraken_rate",) * 4, "down:exchange_down", 4, [0.75, 1.5, 3.0]),
    (("malformed", "malformed"), "down:bad_response", 2, [0.75]),
    (("html", "empty"), "down:bad_response", 2, [0.75]),
    (("kraken:EService:Market in cancel_only mode",), "down:cancel_only", 1, []),
    (("kraken:EService:Market in post_only mode",), "down:post_only", 1, []),
    (("kraken:EAPI:Invalid key",), "down:auth", 1, []),
    (("kraken:EQuery:Unknown asset pair",), "down:exchange_error", 1, []),
    (("kraken:EGeneral:Temporary lockdown",), "down:exchange_error", 1, []),
]


@pytest.mark.parametrize(("kinds", "expect", "calls", "waits"), FAULTS, ids=[",".join(f[0]) for f in FAULTS])
def test_transport_fault(kinds: tuple[str, ...], expect: str, calls: int, waits: list[float]) -> None:
    feed, session, slept = make_feed()
    session.fail_next(*kinds)
    if expect == "retry":
        b = feed.next_bar(AFTER)
        assert b is not None and b.flags == ()
        assert_real_bar(b, "BTC")
        assert_real_bar(b, "ETH")
    else:
        before = feed.last_payload
        with pytest.raises(FeedDown) as err:
            feed.next_bar(AFTER)
        assert err.value.reason == expect.split(":", 1)[1]
        assert feed.last_payload is before  # nothing half-taken from the failed hour
    assert len(session.log) == calls and feed.calls == calls
    assert slept == waits and all(w <= POLICY.max_backoff_s for w in slept)
    assert_recovers(feed, session)


def test_faults_during_ohlc_and_ticker_are_retried_in_place() -> None:
    """A fault on the second asset's OHLC or on the ticker is retried on that call, not from the start."""
    feed, session, slept = make_feed()
    orig = session.request
    injected = {"/0/public/OHLC": 0, "/0/public/Ticker": 0}

    def request(method: Any, url: Any, *a: Any, **kw: Any) -> Any:
        path = str(url).split("?")[0].split("api.kraken.com")[1]
        if path in injected and session.count(path) == (1 if path.endswith("OHLC") else 0) and not injected[path]:
            injected[path] += 1
            session.fail_next("timeout" if path.endswith("OHLC") else "kraken_rate")
        return orig(method, url, *a, **kw)

    session.request = request  # type: ignore[method-assign]
    b = feed.next_bar(AFTER)
    assert b is not None and b.flags == () and b.spread is not None and not np.isnan(b.spread).any()
    assert [p.rsplit("/", 1)[1] for p, _ in session.log] == ["SystemStatus", "OHLC", "OHLC", "OHLC", "Ticker",
                                                            "Ticker"]  # fmt: skip
    assert slept == [0.75, 0.75]


def test_backoff_is_capped_and_jittered_with_the_injected_rng() -> None:
    draws = iter([0.0, 0.999, 0.5, 0.0, 0.25, 0.0])
    session = KrakenReplay(NOW)
    slept: list[float] = []
    policy = RetryPolicy(retries=6, backoff_s=1.0, max_backoff_s=8.0, jitter=0.5)
    feed = KrakenFeed(("BTC",), exchange=kraken_exchange(session), min_interval_ms=5, policy=policy, sleep=slept.append,
                      rng=lambda: next(draws), now=lambda: session.now)  # fmt: skip
    session.fail_next(*(["timeout"] * 6))
    assert feed.next_bar(AFTER) is not None
    assert slept == pytest.approx([1.0, 2 * (1 - 0.4995), 4 * 0.75, 8.0, 8 * 0.875, 8.0])
    assert max(slept) <= 8.0


# ------------------------------------------------------------------ exchange status
STATUS_FAULTS = [("maintenance", "maintenance"), ("cancel_only", "cancel_only"), ("post_only", "post_only"),
                 ("degraded", "exchange_status")]  # fmt: skip


@pytest.mark.parametrize(("status", "reason"), STATUS_FAULTS)
def test_exchange_status_raises_feed_down(status: str, reason: str) -> None:
    feed, session, slept = make_feed()
    session.status = status
    with pytest.raises(FeedDown) as err:
        feed.next_bar(AFTER)
    assert err.value.reason == reason and status in "".join(err.value.__notes__)
    assert [p for p, _ in session.log] == ["/0/public/SystemStatus"] and slept == []  # no OHLC fetched, no retry
    assert_recovers(feed, session)


# ------------------------------------------------------------------ data faults
T = AFTER + H  # the asked bar


def _drop(rows: list[list[Any]]) -> list[list[Any]]:
    return [r for r in rows if r[0] != T]


def _set(col: int, value: Any) -> Any:
    def f(rows: list[list[Any]]) -> list[list[Any]]:
        return [[*r[:col], value, *r[col + 1 :]] if r[0] == T else r for r in rows]

    return f


def _swap(rows: list[list[Any]]) -> list[list[Any]]:
    i = next(k for k, r in enumerate(rows) if r[0] == T)
    rows = list(rows)
    rows[i - 1], rows[i] = rows[i], rows[i - 1]
    return rows


def _dup(rows: list[list[Any]]) -> list[list[Any]]:
    i = next(k for k, r in enumerate(rows) if r[0] == T)
    return [*rows[: i + 1], list(rows[i]), *rows[i + 1 :]]


def _dup_conflict(rows: list[list[Any]]) -> list[list[Any]]:
    i = next(k for k, r in enumerate(rows) if r[0] == T)
    other = list(rows[i])
    other[4] = repr(float(other[4]) * 1.01)
    return [*rows[: i + 1], other, *rows[i + 1 :]]


def _no_trade(rows: list[list[Any]]) -> list[list[Any]]:
    i = next(k for k, r in enumerate(rows) if r[0] == T)
    c = rows[i - 1][4]
    return [*rows[:i], [T, c, c, c, c, "0.0", "0.00000000", 0], *rows[i + 1 :]]


# (asset, mutation, expected flags, asset's bar: "nan" or "kept")
DATA_FAULTS: list[tuple[str, str, Any, tuple[str, ...], str]] = [
    ("missing", "ETH", _drop, ("missing:ETH",), "nan"),
    ("nan_close", "BTC", _set(4, "nan"), ("bad_price:BTC",), "nan"),
    ("nan_open_json_null", "ETH", _set(1, None), ("bad_price:ETH",), "nan"),
    ("zero_low", "BTC", _set(3, "0.00000"), ("bad_price:BTC",), "nan"),
    ("negative_high", "ETH", _set(2, "-1.0"), ("bad_price:ETH",), "nan"),
    ("garbage_price", "BTC", _set(4, "1.2.3"), ("bad_price:BTC",), "nan"),
    ("negative_volume", "BTC", _set(6, "-0.5"), ("bad_volume:BTC",), "nan"),
    ("out_of_order", "ETH", _swap, ("out_of_order:ETH",), "kept"),
    ("duplicate_identical", "BTC", _dup, ("duplicate:BTC",), "kept"),
    ("duplicate_conflicting", "ETH", _dup_conflict, ("duplicate:ETH",), "nan"),
    ("no_trade_row", "BTC", _no_trade, ("no_trades:BTC",), "nan"),
    # BTC's running bar is still the asked hour while ETH has moved on: BTC's running row is never used
    ("running_bar_only", "BTC", lambda rows: [r for r in rows if r[0] <= T], ("missing:BTC",), "nan"),
]


@pytest.mark.parametrize(("name", "asset", "mutate", "flags", "bar"), DATA_FAULTS, ids=[d[0] for d in DATA_FAULTS])
def test_data_fault_is_flagged_never_fixed(name: str, asset: str, mutate: Any, flags: tuple[str, ...],
                                           bar: str) -> None:  # fmt: skip
    feed, session, slept = make_feed()
    session.mutate[PAIRS[asset]] = mutate
    b = feed.next_bar(AFTER)
    assert b is not None and b.hour == T and b.flags == flags and slept == []
    (assert_nan_bar if bar == "nan" else assert_real_bar)(b, asset)
    assert_real_bar(b, "ETH" if asset == "BTC" else "BTC")  # the other asset is untouched
    assert b.raw_hash == canonical_hash(feed.last_payload)
    assert_recovers(feed, session)


def test_crossed_book_is_flagged_and_its_spread_reported() -> None:
    feed, session, _ = make_feed()
    entry = {"a": ["100.0", "1", "1.000"], "b": ["100.5", "1", "1.000"]}
    session.ticker_override = {"XETHZUSD": entry, "XXBTZUSD": {"a": ["x"], "b": ["y"]}}
    b = feed.next_bar(AFTER)
    assert b is not None and b.flags == ("crossed_book:ETH",) and b.spread is not None
    assert math.isnan(b.spread[0]) and b.spread[1] == pytest.approx(-0.5 / 100.25)
    # a locked book (bid == ask) is flagged too; one tick apart is not
    feed, session, _ = make_feed()
    session.ticker_override = {
        "XXBTZUSD": {"a": ["30300.0"], "b": ["30300.0"]},
        "XETHZUSD": {"a": ["2.0"], "b": ["1.9"]},
    }
    b = feed.next_bar(AFTER)
    assert b is not None and b.flags == ("crossed_book:BTC",) and b.spread is not None
    assert b.spread[0] == 0.0 and b.spread[1] == pytest.approx(0.1 / 1.95)


def test_raw_hash_changes_with_the_payload() -> None:
    a, _, _ = make_feed()
    b, sb, _ = make_feed()
    sb.mutate[PAIRS["BTC"]] = _set(6, "123.0")  # the volume of the asked bar
    ba, bb = a.next_bar(AFTER), b.next_bar(AFTER)
    assert ba is not None and bb is not None and ba.raw_hash != bb.raw_hash
    assert ba.raw_hash == make_feed()[0].next_bar(AFTER).raw_hash  # type: ignore[union-attr]


# ------------------------------------------------------------------ secrets and auth
def test_paper_feed_makes_zero_authenticated_calls() -> None:
    """A 48-hour replay: no private endpoint, no request carrying API-Key / API-Sign, no private signing."""
    feed, session, _ = make_feed()
    signed: list[str] = []
    real_sign = feed.exchange.sign

    def spy(path: str, api: Any = "public", *a: Any, **kw: Any) -> Any:
        signed.extend([api] if isinstance(api, str) else list(api))  # ccxt passes ["public"]
        return real_sign(path, api, *a, **kw)

    feed.exchange.sign = spy
    for k in range(48):
        session.now = NOW + k * H
        assert feed.next_bar(AFTER - 20 * H + k * H) is not None
    assert len(session.log) == 48 * 4 == len(signed)
    private = [p for p, _ in session.log if "/private/" in p]
    keyed = [h for h in session.sent_headers if {"api-key", "api-sign"} & {k.lower() for k in h}]
    assert private == [] and keyed == [] and set(signed) == {"public"}
    assert not feed.exchange.apiKey and not feed.exchange.secret


def test_credentials_are_refused_by_name_without_echoing_them() -> None:
    with pytest.raises(ConfigError, match=r"no API keys; remove \['apiKey', 'secret'\]") as err:
        KrakenFeed(("BTC",), config={"apiKey": "K-abc123", "secret": "S-xyz789", "timeout": 5000})
    assert "abc123" not in str(err.value) and "xyz789" not in str(err.value)
    import ccxt

    keyed = ccxt.kraken({"apiKey": "K-abc123", "secret": "c2VjcmV0"})
    with pytest.raises(ConfigError, match=r"feed\.kraken exchange: .*remove"):
        KrakenFeed(("BTC",), exchange=keyed)
    feed = KrakenFeed(("XBT/USD", "ETH"), config={"timeout": 5000})  # built here, no session used
    assert type(feed.exchange) is ccxt.kraken and feed.exchange.enableRateLimit and feed.exchange.rateLimit >= 1000
    assert feed.assets == ("BTC", "ETH") and feed.exchange.timeout == 5000


def test_calls_are_spaced_by_the_real_rate_limiter() -> None:
    """ccxt's limiter at Kraken's 1 call/s: four calls of one hour take >= 3 s, each >= ~1 s apart."""
    session = KrakenReplay(NOW)
    feed = KrakenFeed(("BTC", "ETH"), exchange=kraken_exchange(session, rate_limit_ms=1000), sleep=lambda s: None,
                      now=lambda: session.now)  # fmt: skip
    t0 = time.monotonic()
    assert feed.next_bar(AFTER) is not None
    gaps = np.diff(session.times)
    assert len(session.times) == 4 and time.monotonic() - t0 >= 2.9
    assert gaps.min() >= 0.95, gaps


# ------------------------------------------------------------------ history
def _store(root: Path, until: int) -> Path:
    store = BarStore(root, clock=lambda: "2023-04-01T00:00:00Z")
    for asset in ("BTC", "ETH"):
        raw = raw_bars(asset)
        store.append("kraken", f"{asset}-USD", raw.take(raw.timestamps <= until), "kraken_csv")
    return root


def _expected(start: int, end: int) -> MarketData:
    raws = [
        raw_bars(a).take((raw_bars(a).timestamps >= start) & (raw_bars(a).timestamps <= end)) for a in ("BTC", "ETH")
    ]
    return align_bars(raws, "mark", pairs=load_pairs())


def _assert_same(got: MarketData, want: MarketData) -> None:
    assert got.assets == want.assets
    np.testing.assert_array_equal(got.timestamps, want.timestamps)
    for f in ("open", "high", "low", "close", "volume", "trades", "tradable", "filled"):
        np.testing.assert_array_equal(getattr(got, f), getattr(want, f), err_msg=f)


def test_history_backfills_beyond_720_hours_from_the_store(tmp_path: Path) -> None:
    end = END - H  # Kraken's running bar is END
    session = KrakenReplay(END + 1800)
    root = _store(tmp_path / "store", until=END - 400 * H)
    feed = KrakenFeed(("BTC", "ETH"), exchange=kraken_exchange(session), min_interval_ms=5, store=root, sleep=lambda s: None,
                      now=lambda: session.now)  # fmt: skip
    got = feed.history(end, 2000)
    assert got.n_bars == 2000 and int(got.timestamps[0]) == end - 1999 * H
    _assert_same(got, _expected(end - 1999 * H, end))
    # the store gave the old part, one OHLC call per asset the rest (since = the store's last hour)
    assert [(p, q["since"]) for p, q in session.log] == [("/0/public/OHLC", str(END - 400 * H))] * 2
    # a window inside the store needs no call at all
    session.log.clear()
    _assert_same(feed.history(END - 500 * H, 100), _expected(END - 599 * H, END - 500 * H))
    assert session.log == []


def test_history_takes_an_asset_missing_from_the_store_from_ohlc(tmp_path: Path) -> None:
    session = KrakenReplay(END + 1800)
    store = BarStore(tmp_path / "store", clock=lambda: "2023-04-01T00:00:00Z")
    raw = raw_bars("BTC")
    store.append("kraken", "BTC-USD", raw.take(raw.timestamps <= END - 100 * H), "kraken_csv")
    feed = KrakenFeed(("BTC", "ETH"), exchange=kraken_exchange(session), min_interval_ms=5, store=store.root,
                      sleep=lambda s: None, now=lambda: session.now)  # fmt: skip
    _assert_same(feed.history(END - H, 300), _expected(END - 300 * H, END - H))
    assert [q["pair"] for _, q in session.log] == ["XXBTZUSD", "XETHZUSD"]


def test_history_refuses_holes_and_unclosed_bars(tmp_path: Path) -> None:
    session = KrakenReplay(END + 1800)
    feed = KrakenFeed(("BTC", "ETH"), exchange=kraken_exchange(session), min_interval_ms=5, sleep=lambda s: None,
                      now=lambda: session.now)  # fmt: skip
    _assert_same(feed.history(END - H, 700), _expected(END - 700 * H, END - H))  # inside the OHLC window: no store
    with pytest.raises(DataError, match="neither the store nor Kraken's OHLC window"):
        feed.history(END - H, 1000)
    with pytest.raises(DataError, match="has not closed yet"):
        feed.history(END, 10)
    old = KrakenFeed(("BTC", "ETH"), exchange=kraken_exchange(session), min_interval_ms=5, store=_store(tmp_path / "s", END - 900 * H),
                     sleep=lambda s: None, now=lambda: session.now)  # fmt: skip
    with pytest.raises(DataError, match="extend the store"):
        old.history(END - H, 1000)


def test_history_fault_raises_feed_down(tmp_path: Path) -> None:
    session = KrakenReplay(END + 1800)
    feed = KrakenFeed(("BTC",), exchange=kraken_exchange(session), min_interval_ms=5, policy=RetryPolicy(retries=1),
                      sleep=lambda s: None, now=lambda: session.now)  # fmt: skip
    session.fail_next("503", "503")
    with pytest.raises(FeedDown) as err:
        feed.history(END - H, 10)
    assert err.value.reason == "exchange_down"


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"feed\.jitter"):
        RetryPolicy(jitter=1.0)
    with pytest.raises(ConfigError, match=r"feed\.retries"):
        RetryPolicy(retries=-1)
    with pytest.raises(ConfigError, match="duplicate asset"):
        KrakenFeed(("BTC", "XBT/USD"))
    with pytest.raises(DataError, match="FOO"):
        KrakenFeed(("FOO",))
