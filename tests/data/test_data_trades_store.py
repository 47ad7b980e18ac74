"""Trades -> hourly bars (hand-computed and against Kraken's recorded OHLC), throughput, and the Parquet store."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from envs.data.store import BarStore, load_store
from envs.data.trades import trades_to_bars
from envs.data.validation import resample_to_hourly
from envs.errors import DataError
from tests.data.replay import recorded

H = 3600
T0 = 1_672_531_200  # 2023-01-01 00:00 UTC


def test_trades_to_hourly_bars_hand_computed() -> None:
    # hour 0: three trades; hour 1: none; hour 2: a trade exactly on its start + two more (tie at one ms)
    t = np.array([T0 * 1000 + 5, T0 * 1000 + 1_800_000, T0 * 1000 + 3_599_999,
                  (T0 + 2 * H) * 1000, (T0 + 2 * H) * 1000 + 10, (T0 + 2 * H) * 1000 + 10])  # fmt: skip
    p = np.array([100.0, 105.0, 99.0, 101.0, 103.0, 102.0])
    v = np.array([1.0, 0.5, 2.0, 0.25, 0.25, 1.0])
    bars = trades_to_bars(t, p, v)
    np.testing.assert_array_equal(bars.timestamps, [T0, T0 + 2 * H])  # the empty hour has no bar
    np.testing.assert_array_equal(bars.open, [100.0, 101.0])  # the on-boundary trade opens hour 2
    np.testing.assert_array_equal(bars.high, [105.0, 103.0])
    np.testing.assert_array_equal(bars.low, [99.0, 101.0])
    np.testing.assert_array_equal(bars.close, [99.0, 102.0])  # ties keep exchange order: the last one closes
    np.testing.assert_array_equal(bars.volume, [3.5, 1.5])
    np.testing.assert_array_equal(bars.trades, [3, 3])
    # one millisecond earlier, the boundary trade belongs to hour 1 instead
    t2 = t.copy()
    t2[3] -= 1
    assert trades_to_bars(t2, p, v).timestamps.tolist() == [T0, T0 + H, T0 + 2 * H]
    with pytest.raises(DataError, match="trade 2: time"):
        trades_to_bars(t[::-1], p, v)
    with pytest.raises(DataError, match="trade 2: price"):
        trades_to_bars(t, np.array([1.0, 1.0, -1.0, 1, 1, 1]), v)


def _recorded_tape() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = recorded("http_trades.json")["result"]["XBTUSDT"]
    t = np.array([int(float(r[2]) * 1000) for r in rows], dtype=np.int64)  # what ccxt's safe_timestamp gives
    return t, np.array([float(r[0]) for r in rows]), np.array([float(r[1]) for r in rows])


def test_recorded_trades_rebuild_krakens_own_ohlc() -> None:
    """1,000 consecutive recorded trades (ids 10218208..10219207) vs the recorded 1-minute OHLC of the same pair."""
    t, p, v = _recorded_tape()
    ohlc = np.array(recorded("http_ohlc.json")["result"]["XBTUSDT"], dtype=np.float64)
    minute = trades_to_bars(t, p, v, interval_s=60)
    first, last = minute.timestamps[0] + 60, minute.timestamps[-1]  # minutes the tape covers completely
    rows = ohlc[(ohlc[:, 0] >= first) & (ohlc[:, 0] < last) & (ohlc[:, 7] > 0)]
    sel = (minute.timestamps >= first) & (minute.timestamps < last)
    assert rows.shape[0] == int(sel.sum()) == 272
    np.testing.assert_array_equal(minute.timestamps[sel], rows[:, 0].astype(np.int64))
    for k, name in enumerate(("open", "high", "low", "close"), start=1):
        np.testing.assert_array_equal(getattr(minute, name)[sel], rows[:, k])
    np.testing.assert_allclose(minute.volume[sel], rows[:, 6], rtol=1e-12)
    np.testing.assert_array_equal(minute.trades[sel], rows[:, 7])
    # hourly: trades -> 1 h equals Kraken's 1-minute bars resampled (the loaders' rule), hours 18:00-23:00
    hourly = trades_to_bars(t, p, v)
    from envs.data.validation import RawBars

    m = ohlc[ohlc[:, 7] > 0]
    raw = RawBars("BTC", "ohlc", 60, m[:, 0].astype(np.int64), m[:, 1], m[:, 2], m[:, 3], m[:, 4], m[:, 6], m[:, 7],
                  np.arange(len(m)))  # fmt: skip
    from_ohlc = resample_to_hourly(raw)
    full = [ts for ts in hourly.timestamps if ts > hourly.timestamps[0] and ts < hourly.timestamps[-1]]
    assert len(full) == 6
    a, b = np.isin(hourly.timestamps, full), np.isin(from_ohlc.timestamps, full)
    for name in ("open", "high", "low", "close", "trades"):
        np.testing.assert_array_equal(getattr(hourly, name)[a], getattr(from_ohlc, name)[b])
    np.testing.assert_allclose(hourly.volume[a], from_ohlc.volume[b], rtol=1e-12)


def test_aggregation_throughput() -> None:
    rng = np.random.default_rng(0)
    n = 2_000_000
    t = np.cumsum(rng.integers(0, 31_500, n)) + T0 * 1000  # ~1 year of hours
    p = 30_000 * np.exp(np.cumsum(rng.normal(0, 1e-4, n)))
    v = rng.exponential(0.05, n)
    best = float("inf")
    for _ in range(3):
        s = time.perf_counter()
        bars = trades_to_bars(t, p, v)
        best = min(best, time.perf_counter() - s)
    assert int(bars.trades.sum()) == n
    rate = n / best
    print(f"trades -> hourly bars: {rate / 1e6:.1f} M trades/s ({n} trades, {bars.timestamps.size} bars, {best * 1000:.0f} ms)")
    assert rate > 2e6


# ------------------------------------------------------------------------- store
def _bars(n: int, start: int = T0, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(start * 1000, (start + n * H) * 1000, 20 * n))
    return trades_to_bars(t, 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, t.size))), rng.exponential(1.0, t.size),
                          asset="BTC")  # fmt: skip


def test_store_append_only_partitions_manifest_and_load(tmp_path: Path) -> None:
    store = BarStore(tmp_path, clock=lambda: "2024-01-01T00:00:00Z")
    bars = _bars(24 * 45)  # 45 days: two monthly partitions
    res = store.append("kraken", "BTC-USD", bars, "trades")
    assert res.added == bars.timestamps.size and res.partitions == ("kraken/BTC-USD/2023-01.parquet",
                                                                   "kraken/BTC-USD/2023-02.parquet")  # fmt: skip
    assert not list(tmp_path.rglob("*.tmp"))
    entry = store.manifest["partitions"]["kraken/BTC-USD/2023-01.parquet"]
    assert entry["rows"] == 744 and entry["sources"] == {"trades": 744} and entry["fetched_at"] == "2024-01-01T00:00:00Z"
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.parquet")}
    # re-appending the same hours adds nothing and changes no byte; a different value is a counted conflict
    again = store.append("kraken", "BTC-USD", bars, "ohlc")
    assert again.added == 0 and again.conflicts == 0
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.parquet")} == before
    changed = bars.take(np.arange(3))
    changed = type(changed)(**{**changed.__dict__, "close": changed.close * 1.01, "high": changed.high * 1.01})
    assert store.append("kraken", "BTC-USD", changed, "csv").conflicts == 3
    back = BarStore(tmp_path).read("kraken", "BTC-USD")
    np.testing.assert_array_equal(back.close, bars.close)  # stored rows were kept
    market = load_store(tmp_path, assets=["XBT/USD"], reference=None)
    assert market.assets == ("BTC",) and market.n_bars == 24 * 45
    assert np.array_equal(market.close[~market.filled[:, 0], 0], bars.close)


def test_corrupted_partition_is_detected_and_named(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.append("kraken", "BTC-USD", _bars(24 * 40), "trades")
    assert store.verify() == []
    victim = tmp_path / "kraken" / "BTC-USD" / "2023-02.parquet"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    problems = BarStore(tmp_path).verify()
    assert [(p.partition, p.kind) for p in problems] == [("kraken/BTC-USD/2023-02.parquet", "checksum")]
    with pytest.raises(DataError, match=r"kraken/BTC-USD/2023-02\.parquet"):
        load_store(tmp_path, reference=None)
    victim.unlink()
    (tmp_path / "kraken" / "BTC-USD" / "2023-03.parquet").write_bytes(b"stray")
    kinds = {(p.partition, p.kind) for p in BarStore(tmp_path).verify()}
    assert kinds == {("kraken/BTC-USD/2023-02.parquet", "missing"), ("kraken/BTC-USD/2023-03.parquet", "unlisted")}


def test_load_store_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected a bar store"):
        load_store(tmp_path)
    BarStore(tmp_path).append("kraken", "BTC-USD", _bars(30), "trades")
    with pytest.raises(DataError, match=r"no kraken bars for \['ETH-USD'\]"):
        load_store(tmp_path, assets=["ETH"])
    with pytest.raises(DataError, match="unknown pair"):
        load_store(tmp_path, assets=["NOPE"])


def test_aggregate_trades_interface_of_architecture_md() -> None:
    """`envs.data.trades.aggregate_trades` (float seconds in, DataFrame out), hand-computed."""
    import pandas as pd

    from envs.data.trades import aggregate_trades

    h = 1_700_000_000 // 3600 * 3600
    ts = np.array([h + 10.5, h + 1000.25, h + 3599.999, h + 3600.0, h + 3 * 3600 + 1.0])
    px = np.array([100.0, 105.0, 99.0, 101.0, 102.0])
    qty = np.array([1.0, 0.5, 2.0, 0.25, 1.0])
    bars = aggregate_trades(ts, px, qty)
    assert list(bars.columns) == ["open", "high", "low", "close", "volume", "trades"]
    assert list(bars.index) == [pd.Timestamp(h, unit="s", tz="UTC"), pd.Timestamp(h + 3600, unit="s", tz="UTC"),
                                pd.Timestamp(h + 3 * 3600, unit="s", tz="UTC")]  # no row for the empty hour
    assert bars.iloc[0].tolist() == [100.0, 105.0, 99.0, 99.0, 3.5, 3]  # h + 3599.999 stays in the first hour
    assert bars.iloc[1].tolist() == [101.0, 101.0, 101.0, 101.0, 0.25, 1]  # on the boundary: opens the next
    with pytest.raises(DataError, match="timestamps"):
        aggregate_trades(np.array([np.nan]), np.array([1.0]), np.array([1.0]))


@pytest.mark.parametrize("crash", ["before_file", "after_file"])
def test_a_crash_inside_an_append_leaves_a_consistent_store(tmp_path: Path, monkeypatch, crash: str) -> None:
    """Kill points around the partition write: the next open finishes or drops the write."""
    import envs.data.store as store_mod

    clock = lambda: "2024-01-01T00:00:00Z"  # noqa: E731
    BarStore(tmp_path, clock=clock).append("kraken", "BTC-USD", _bars(24 * 10), "trades")
    more = _bars(24 * 20, seed=1)  # overlaps the stored days and adds ten more, same month
    real_write = store_mod.atomic_write_bytes

    class Killed(Exception):
        pass

    def write(path: Path, data: bytes) -> None:
        if path.suffix == ".parquet":
            if crash == "after_file":
                real_write(path, data)
            raise Killed
        real_write(path, data)

    monkeypatch.setattr(store_mod, "atomic_write_bytes", write)
    with pytest.raises(Killed):
        BarStore(tmp_path, clock=clock).append("kraken", "BTC-USD", more, "trades")
    monkeypatch.setattr(store_mod, "atomic_write_bytes", real_write)
    reopened = BarStore(tmp_path, clock=clock)
    assert reopened.verify() == []
    assert "pending" not in reopened.manifest
    rows = reopened.manifest["partitions"]["kraken/BTC-USD/2023-01.parquet"]["rows"]
    assert rows == (24 * 20 if crash == "after_file" else 24 * 10)
    # and the download goes on from there to the same store as an uninterrupted one
    reopened.append("kraken", "BTC-USD", more, "trades")
    clean = tmp_path / "clean"
    ref = BarStore(clean, clock=clock)
    ref.append("kraken", "BTC-USD", _bars(24 * 10), "trades")
    ref.append("kraken", "BTC-USD", more, "trades")
    key = "kraken/BTC-USD/2023-01.parquet"
    assert (tmp_path / key).read_bytes() == (clean / key).read_bytes()
