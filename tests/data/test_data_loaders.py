"""Loaders: Kraken dump resampling, generic CSV, gap policies, real shared data."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from envs.data.loaders import load_csv_dir, load_kraken_dir, read_kraken_file, read_table_file
from envs.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
T0 = 1_672_531_200  # 2023-01-01 00:00 UTC


def write_kraken(path: Path, rows: list[tuple]) -> Path:
    path.write_text("".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


def test_hand_built_minute_file_resamples_to_exact_hourly_bars(tmp_path: Path) -> None:
    rows = [
        # hour 0: three 1-minute bars
        (T0 + 0, 100.0, 101.0, 99.0, 100.5, 1.0, 3),
        (T0 + 60, 100.5, 103.0, 100.0, 102.0, 2.0, 4),
        (T0 + 1800, 102.0, 102.5, 98.0, 99.0, 0.5, 1),
        # hour 1: no trades at all (Kraken omits it)
        # hour 2: one bar
        (T0 + 7200 + 3540, 99.0, 99.5, 98.5, 99.2, 4.0, 7),
    ]
    raw = read_kraken_file(write_kraken(tmp_path / "XBTUSD_1.csv", rows))
    assert raw.asset == "BTC"
    np.testing.assert_array_equal(raw.timestamps, [T0, T0 + 7200])
    np.testing.assert_array_equal(raw.open, [100.0, 99.0])
    np.testing.assert_array_equal(raw.high, [103.0, 99.5])
    np.testing.assert_array_equal(raw.low, [98.0, 98.5])
    np.testing.assert_array_equal(raw.close, [99.0, 99.2])
    np.testing.assert_array_equal(raw.volume, [3.5, 4.0])
    np.testing.assert_array_equal(raw.trades, [8, 7])


def test_gap_policies_on_a_no_trade_hour(tmp_path: Path) -> None:
    rows = [
        (T0, 10.0, 11.0, 9.0, 10.5, 1.0, 1),
        (T0 + 7200, 10.4, 10.6, 10.0, 10.2, 2.0, 2),
    ]
    write_kraken(tmp_path / "ETHUSD_60.csv", rows)
    marked = load_kraken_dir(tmp_path, gap_policy="mark")
    assert marked.n_bars == 3
    np.testing.assert_array_equal(marked.close[:, 0], [10.5, 10.5, 10.2])
    np.testing.assert_array_equal(marked.open[1], [10.5])  # O=H=L=C = previous close
    assert marked.volume[1, 0] == 0.0 and marked.trades is not None and marked.trades[1, 0] == 0.0
    np.testing.assert_array_equal(marked.filled[:, 0], [False, True, False])
    np.testing.assert_array_equal(marked.tradable[:, 0], [True, False, True])
    filled = load_kraken_dir(tmp_path, gap_policy="ffill")
    np.testing.assert_array_equal(filled.tradable[:, 0], [True, True, True])
    np.testing.assert_array_equal(filled.filled[:, 0], [False, True, False])
    with pytest.raises(DataError, match=r"ETHUSD_60\.csv: asset ETH: 1 missing hourly bars, first at 2023-01-01 01:00"):
        load_kraken_dir(tmp_path, gap_policy="raise")
    with pytest.raises(ConfigError, match="gap_policy"):
        load_kraken_dir(tmp_path, gap_policy="drop")


def test_assets_on_one_grid_nan_outside_life(tmp_path: Path) -> None:
    write_kraken(tmp_path / "XBTUSD_60.csv", [(T0 + 3600 * k, 5.0, 5.0, 5.0, 5.0, 1.0, 1) for k in range(4)])
    write_kraken(tmp_path / "SOLUSD_60.csv", [(T0 + 3600 * k, 2.0, 2.0, 2.0, 2.0, 1.0, 1) for k in (2, 3, 4)])
    m = load_kraken_dir(tmp_path, assets=["SOL", "XBT"])
    assert m.assets == ("SOL", "BTC")
    assert m.n_bars == 5
    np.testing.assert_array_equal(np.isnan(m.close[:, 0]), [True, True, False, False, False])
    np.testing.assert_array_equal(m.tradable[:, 1], [True, True, True, True, False])
    assert "BTC" in m.pairs and m.pairs["BTC"].altname == "XBTUSD"
    with pytest.raises(DataError, match=r"no file or no bars .* \['ADA'\]"):
        load_kraken_dir(tmp_path, assets=["ADA"])


def test_generic_csv_formats(tmp_path: Path) -> None:
    header = "timestamp,open,high,low,close,volume\n"
    body = "".join(f"{(T0 + 3600 * k) * 1000},1,2,0.5,1.5,{k}\n" for k in range(3))  # milliseconds
    with gzip.open(tmp_path / "ADAUSDT_1h.csv.gz", "wt") as f:
        f.write(header + body)
    iso = "timestamp,open,high,low,close,volume\n2023-01-01T00:00:00Z,1,2,0.5,1.5,0\n2023-01-01T01:00:00Z,1,2,0.5,1.5,0\n"
    (tmp_path / "DOTUSDT_1h.csv").write_text(iso)
    m = load_csv_dir(tmp_path)
    assert m.assets == ("ADA", "DOT")
    assert int(m.timestamps[0]) == T0 and m.n_bars == 3
    assert m.trades is None
    assert np.isnan(m.close[2, 1]) and not m.tradable[2, 1]


def test_kraken_5m_resampled_equals_kraken_hourly_file() -> None:
    folder = SHARED / "kraken" / "ohlcvt_2023q1"
    five = read_kraken_file(folder / "XBTUSD_5.csv.gz")
    hourly = read_kraken_file(folder / "XBTUSD_60.csv.gz")
    assert hourly.timestamps.size == 2160
    np.testing.assert_array_equal(five.timestamps, hourly.timestamps)
    for name in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(five, name), getattr(hourly, name), err_msg=name)
    np.testing.assert_allclose(five.volume, hourly.volume, rtol=1e-9, atol=1e-8)
    np.testing.assert_array_equal(five.trades, hourly.trades)


def test_real_kraken_hourly_folder_loads_and_reports_known_gaps() -> None:
    m = load_kraken_dir(SHARED / "kraken" / "ohlcvt_1h", start="2022-01-01", end="2022-06-30 23:00")
    assert set(m.assets) == {"BCH", "ETH", "LTC", "BTC", "XRP"}
    bch = m.index_of("BCH")
    t = m.bar_index(1_652_198_400)  # 2022-05-10 16:00 UTC: BCH has no bars for 56 h
    assert m.filled[t : t + 56, bch].all() and not m.filled[t + 56, bch]
    assert not m.tradable[t : t + 56, bch].any()
    assert np.isfinite(m.close).all()
    assert np.all(m.high >= np.maximum(m.open, m.close))


def test_real_binance_folder_loads() -> None:
    m = load_csv_dir(SHARED / "binance" / "spot_1h", assets=["BTC", "ETH", "SOL"], start="2023-01-01", end="2023-12-31 23:00")
    assert m.assets == ("BTC", "ETH", "SOL") and m.n_bars == 8760
    # 2023-03-24 13:00 is a Binance maintenance hour missing from every file
    t = m.bar_index(1_679_662_800)
    assert m.filled[t].all() and not m.tradable[t].any()
    assert int(m.filled.sum()) == 3


def test_table_file_missing_column_and_unknown_folder(tmp_path: Path) -> None:
    (tmp_path / "BTC.csv").write_text("timestamp,open,high,low,volume\n1,1,1,1,1\n")
    with pytest.raises(DataError, match=r"BTC\.csv: missing columns \['close'\]"):
        read_table_file(tmp_path / "BTC.csv")
    with pytest.raises(DataError, match="no such"):
        load_csv_dir(tmp_path / "nope")
    with pytest.raises(DataError, match="no such folder"):
        load_kraken_dir(tmp_path / "nope")
