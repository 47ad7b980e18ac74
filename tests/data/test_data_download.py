"""The ccxt downloader against real ccxt exchange objects behind the replayer (tests/data/replay.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from envs.data.download import Downloader
from envs.data.exchanges import asset_of, call_with_retry, make_exchange, symbol_map
from envs.data.loaders import read_kraken_file
from envs.data.store import BarStore
from envs.data.trades import trades_to_bars
from envs.errors import DataError, RetryableExchangeError
from tests.data.replay import (
    SHARED,
    binance_rows_from_csv,
    binance_session,
    coinbase_rows,
    coinbase_session,
    kraken_session,
    recorded,
)

H = 3600
TAPE = recorded("http_trades.json")["result"]["XBTUSDT"]
TAPE_START = int(float(TAPE[0][2])) // H * H  # 2025-11-10 17:00
TAPE_END = int(float(TAPE[-1][2])) // H * H  # 2025-11-11 00:00 (the tape stops inside it)
NOW = TAPE_END + 6 * H  # a fixed "now", hours after the tape (so every recorded hour has closed)
CLOCK = "2025-11-11T06:00:00Z"


def _downloader(root: Path, session=None, **kw) -> tuple[Downloader, object]:
    session = session or kraken_session()
    ex = make_exchange("kraken", session=session, rateLimit=5)  # the limiter runs, at 5 ms per request
    dl = Downloader(BarStore(root, clock=lambda: CLOCK), {"kraken": ex}, page_limit=100, progress=False,
                    now=lambda: NOW, sleep=lambda s: None, **kw)  # fmt: skip
    return dl, session


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_exchanges_are_real_ccxt_objects_with_the_rate_limiter_on() -> None:
    import ccxt

    for name, cls in (("kraken", ccxt.kraken), ("binance", ccxt.binance), ("coinbase", ccxt.coinbase)):
        ex = make_exchange(name)
        assert type(ex) is cls and ex.enableRateLimit is True
    assert symbol_map("BTC") == {
        "kraken": {"native": "XBT/USD", "ccxt": "BTC/USD", "store": "BTC-USD"},
        "binance": {"native": "BTCUSDT", "ccxt": "BTC/USDT", "store": "BTC-USDT"},
        "coinbase": {"native": "BTC-USD", "ccxt": "BTC/USD", "store": "BTC-USD"},
    }
    assert {asset_of(n) for n in ("XBT/USD", "XBTUSD", "BTC/USDT", "BTC-USD", "XXBTZUSD")} == {"BTC"}
    assert asset_of("XDG/USD") == "DOGE"
    with pytest.raises(DataError, match="unknown pair 'FOO/USD'"):
        asset_of("FOO/USD")


def test_trades_download_pages_the_recorded_tape_into_hourly_bars(tmp_path: Path) -> None:
    dl, session = _downloader(tmp_path)
    s = dl.kraken_trades("BTC", TAPE_START, TAPE_END + H, quote="USDT")
    # 1,000 trades served 100 per page: the first page by ccxt's since (seconds), the rest by Kraken's `last` cursor
    trade_calls = [q for p, q in session.log if p == "/0/public/Trades"]
    assert len(trade_calls) == 11 and trade_calls[0]["since"] == str(TAPE_START - 1)
    assert all(int(q["since"]) > 10**18 for q in trade_calls[1:]) and all(q["count"] == "100" for q in trade_calls)
    assert s.trades == 1000 and s.requests == 11 and s.bars_added == 8
    got = BarStore(tmp_path).read("kraken", "BTC-USDT")
    t = np.array([int(float(r[2]) * 1000) for r in TAPE])
    want = trades_to_bars(t, np.array([float(r[0]) for r in TAPE]), np.array([float(r[1]) for r in TAPE]))
    for name in ("timestamps", "open", "high", "low", "close", "volume", "trades"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    assert not (tmp_path / "_state").exists() or not list((tmp_path / "_state").rglob("*.json"))
    # re-running adds nothing (append-only; starts after the last stored hour)
    again = dl.kraken_trades("BTC", TAPE_START, TAPE_END + H, quote="USDT")
    assert again.bars_added == 0


@pytest.mark.parametrize("kill_after", [1, 4, 7])
def test_interrupted_download_resumes_to_a_byte_identical_store(tmp_path: Path, kill_after: int) -> None:
    full, _ = _downloader(tmp_path / "full")
    full.kraken_trades("BTC", TAPE_START, TAPE_END + H, quote="USDT")
    dl, session = _downloader(tmp_path / "cut")
    session.interrupt_after, session.interrupt_on = kill_after, "/0/public/Trades"
    with pytest.raises(KeyboardInterrupt):
        dl.kraken_trades("BTC", TAPE_START, TAPE_END + H, quote="USDT")
    state = list((tmp_path / "cut" / "_state").rglob("*.json"))
    assert len(state) == 1  # cursor + the unfinished hour's trades
    before = sum(e["rows"] for e in BarStore(tmp_path / "cut").manifest["partitions"].values())
    resumed, session2 = _downloader(tmp_path / "cut")
    s = resumed.kraken_trades("BTC", TAPE_START, TAPE_END + H, quote="USDT")
    assert len([1 for p, _ in session2.log if p == "/0/public/Trades"]) == 11 - kill_after
    assert before + s.bars_added == 8 and (before > 0) == (kill_after > 1)
    assert _tree(tmp_path / "cut") == _tree(tmp_path / "full")  # every file, manifest included, byte for byte


def test_retry_with_backoff_then_success_and_give_up(tmp_path: Path) -> None:
    waits: list[float] = []
    dl, session = _downloader(tmp_path)
    dl.sleep = waits.append
    dl.exchange("kraken")
    session.fail_next("timeout", "kraken_busy")  # ccxt: RequestTimeout, then ExchangeNotAvailable
    s = dl.kraken_trades("BTC", TAPE_START, TAPE_END + H, quote="USDT")
    assert waits == [1.0, 2.0] and s.trades == 1000
    ex = make_exchange("kraken", session=kraken_session(), rateLimit=5)
    ex.load_markets()
    ex.session.fail_next("503", "kraken_rate", "timeout")
    waits.clear()
    with pytest.raises(RetryableExchangeError, match="gave up after 2 retries: RequestTimeout"):
        call_with_retry(ex.fetch_trades, "BTC/USDT", None, 5, retries=2, sleep=waits.append, what="kraken trades")
    assert waits == [1.0, 2.0]
    with pytest.raises(DataError, match="no market ETH/USDT"):
        dl.kraken_trades("ETH", TAPE_START, TAPE_END, quote="USDT")


def test_csv_dump_and_ohlc_endpoint_agree_in_the_store(tmp_path: Path) -> None:
    """Kraken's CSV dump vs its OHLC endpoint (hand-made payload from the same hours, see fixtures/README)."""
    csv = SHARED / "kraken" / "ohlcvt_2023q1" / "XBTUSD_60.csv.gz"
    raw = read_kraken_file(csv, "BTC")
    start, end = int(raw.timestamps[-700]), int(raw.timestamps[-1])
    sel = raw.timestamps >= start
    rows = [[int(t), repr(float(o)), repr(float(h)), repr(float(lo)), repr(float(c)), repr(float(o + c) / 2), repr(float(v)), int(n)]
            for t, o, h, lo, c, v, n in zip(raw.timestamps[sel], raw.open[sel], raw.high[sel], raw.low[sel],
                                            raw.close[sel], raw.volume[sel], raw.trades[sel], strict=True)]  # fmt: skip
    rows.append([end + H, "1.0", "1.0", "1.0", "1.0", "1.0", "0.1", 1])  # the running hour: never stored
    session = kraken_session(ohlc={"XXBTZUSD": rows})
    dl, _ = _downloader(tmp_path / "ohlc", session=session)
    dl.now = lambda: end + H + 600
    s = dl.kraken_ohlc("BTC", start, end + H)
    assert s.bars_added == 700 and s.requests == 1
    dl2, _ = _downloader(tmp_path / "csv")
    assert dl2.kraken_csv(csv, "BTC", start, end).bars_added == 700
    a = BarStore(tmp_path / "ohlc").read("kraken", "BTC-USD")
    b = BarStore(tmp_path / "csv").read("kraken", "BTC-USD")
    for name in ("timestamps", "open", "high", "low", "close", "volume", "trades"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    # both into one store: the second source adds nothing and conflicts nowhere
    assert dl.kraken_csv(csv, "BTC", start, end).conflicts == 0


def test_reference_exchanges_into_the_same_store(tmp_path: Path) -> None:
    start = 1_672_531_200  # 2023-01-01
    end = start + 1199 * H
    klines = binance_rows_from_csv(SHARED / "binance" / "spot_1h" / "BTCUSDT_1h.csv.gz", start, end)
    kr = read_kraken_file(SHARED / "kraken" / "ohlcvt_2023q1" / "XBTUSD_60.csv.gz", "BTC")
    sel = (kr.timestamps >= start) & (kr.timestamps <= end)
    cb = coinbase_rows(list(zip(kr.timestamps[sel], kr.open[sel], kr.high[sel], kr.low[sel], kr.close[sel],
                                kr.volume[sel], strict=True)))  # fmt: skip
    bs, cs = binance_session({"BTCUSDT": klines}), coinbase_session({"BTC-USD": cb})
    store = BarStore(tmp_path)
    dl = Downloader(store, {"binance": make_exchange("binance", session=bs),
                            "coinbase": make_exchange("coinbase", session=cs)},
                    page_limit=500, progress=False, now=lambda: end + 2 * H, sleep=lambda s: None)  # fmt: skip
    sb = dl.reference("binance", "BTC", start, end)
    sc = dl.reference("coinbase", "BTC", start, end)
    assert sb.bars_added == len(klines) == 1200 and sb.requests == 3
    assert [q["startTime"] for p, q in bs.log if p == "/api/v3/klines"][:2] == [str(start * 1000), str((start + 500 * H) * 1000)]
    assert sc.bars_added == 1200 and sc.requests >= 4  # Coinbase serves at most 350 candles per request
    assert store.series() == [("binance", "BTC-USDT"), ("coinbase", "BTC-USD")]
    got = store.read("binance", "BTC-USDT")
    np.testing.assert_array_equal(got.close, [float(r[4]) for r in klines])
    assert got.trades is None
    np.testing.assert_array_equal(store.read("coinbase", "BTC-USD").close, kr.close[sel])
    # a re-run asks only for hours after the stored ones, and gets none
    bs.log.clear()
    assert dl.reference("binance", "BTC", start, end).bars_added == 0 and not bs.log
    # an earlier start than the store holds is not back-filled, and the summary says so
    earlier = dl.reference("binance", "BTC", start - 30 * 24 * H, end)
    assert earlier.bars_added == 0 and "not back-filled" in earlier.note and "2023-01-01" in earlier.note
