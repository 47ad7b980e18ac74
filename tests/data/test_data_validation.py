"""Every validation failure has a malformed input and an asserted message naming file, row, value."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.data.loaders import read_kraken_file, read_table_file
from envs.errors import DataError

T0 = 1_672_531_200
GOOD = [
    (T0, 10.0, 11.0, 9.0, 10.5, 1.0, 1),
    (T0 + 3600, 10.5, 12.0, 10.0, 11.0, 2.0, 2),
    (T0 + 7200, 11.0, 11.5, 10.5, 11.2, 3.0, 3),
]


def kraken(tmp_path: Path, rows: list[tuple], name: str = "ETHUSD_60.csv") -> Path:
    path = tmp_path / name
    path.write_text("".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


def with_row(i: int, **changes: object) -> list[tuple]:
    cols = ["timestamp", "open", "high", "low", "close", "volume", "trades"]
    rows = [list(r) for r in GOOD]
    for k, v in changes.items():
        rows[i][cols.index(k)] = v
    return [tuple(r) for r in rows]


CASES = [
    ("unsorted", [GOOD[0], GOOD[2], GOOD[1]], r"row 3: timestamp=1672534800: unsorted rows"),
    ("conflicting duplicate", [GOOD[0], GOOD[1], (*GOOD[1][:4], 99.0, *GOOD[1][5:])],
     r"row 3: timestamp=1672534800: conflicting duplicate of row 2"),
    ("zero price", with_row(1, close=0.0), r"row 2: close=0\.0: expected a finite positive price"),
    ("negative price", with_row(0, open=-1.0), r"row 1: open=-1\.0: expected a finite positive price"),
    ("NaN price", with_row(2, low="nan"), r"row 3: low=nan: expected a finite positive price"),
    ("empty cell", with_row(2, high=""), r"row 3: high=nan: expected a finite positive price"),
    ("high below close", with_row(1, high=10.9), r"row 2: high=10\.9: expected high >= max\(open, close\) = 11\.0"),
    ("low above open", with_row(1, low=10.6), r"row 2: low=10\.6: expected low <= min\(open, close\) = 10\.5"),
    ("negative volume", with_row(2, volume=-3.0), r"row 3: volume=-3\.0: expected a finite non-negative number"),
    ("text in a number column", with_row(1, volume="abc"), r"row 2: volume='abc': expected a number"),
    ("timestamp off the hour", with_row(1, timestamp=T0 + 3601), r"row 2: timestamp=1672534801: expected a multiple of 3600 s"),
]


@pytest.mark.parametrize(("label", "rows", "message"), CASES, ids=[c[0] for c in CASES])
def test_malformed_kraken_file_is_named_in_the_error(tmp_path: Path, label: str, rows: list[tuple], message: str) -> None:
    path = kraken(tmp_path, rows)
    with pytest.raises(DataError, match=message) as info:
        read_kraken_file(path)
    assert str(path) in str(info.value) and "asset ETH" in str(info.value), label


def test_exact_duplicate_rows_are_dropped_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = read_kraken_file(kraken(tmp_path, [GOOD[0], GOOD[1], GOOD[1], GOOD[2]]))
    assert raw.timestamps.size == 3
    assert "dropped 1 exact duplicate rows" in caplog.text


def test_wrong_column_count_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"expected 7 columns .* got 6"):
        read_kraken_file(kraken(tmp_path, [r[:6] for r in GOOD]))
    empty = tmp_path / "XBTUSD_60.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"XBTUSD_60\.csv"):
        read_kraken_file(empty)
    with pytest.raises(DataError, match="expected a Kraken OHLCVT file named"):
        read_kraken_file(tmp_path / "bad_name.txt")


def test_table_file_reports_header_row_offset(tmp_path: Path) -> None:
    path = tmp_path / "SOLUSDT_1h.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" f"{T0},1,2,0.5,1.5,1\n" f"{T0 + 3600},1,2,0.5,-1.5,1\n")
    with pytest.raises(DataError, match=r"SOLUSDT_1h\.csv: asset SOL: row 3: close=-1\.5"):
        read_table_file(path)
    path.write_text("timestamp,open,high,low,close,volume\nyesterday,1,2,0.5,1.5,1\n")
    with pytest.raises(DataError, match=r"row 2: timestamp='yesterday': expected Unix seconds or an ISO date"):
        read_table_file(path)


def test_corrupted_gzip_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "XBTUSD_60.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match=r"XBTUSD_60\.csv\.gz: cannot be read as CSV"):
        read_kraken_file(path)
