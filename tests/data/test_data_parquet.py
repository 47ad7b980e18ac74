"""Parquet cache: bit-for-bit round trip, atomic write, speed, bad files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from envs.data.parquet_cache import load_parquet, save_parquet
from envs.data.synthetic import generate_synthetic_market
from envs.errors import DataError


def test_round_trip_is_bit_for_bit_and_fast(tmp_path: Path) -> None:
    market = generate_synthetic_market(n_bars=8760, seed=3)
    assert market.n_assets == 12
    path = save_parquet(market, tmp_path / "m.parquet")
    assert not list(tmp_path.glob("*.tmp"))
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        back = load_parquet(path)
        best = min(best, time.perf_counter() - t)
    assert back.equals(market)
    print(f"parquet load, 1 year x 12 assets: {best * 1000:.1f} ms")
    assert best < 0.5


def test_real_market_round_trip(tmp_path: Path) -> None:
    from envs.data.loaders import load_kraken_dir

    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    market = load_kraken_dir(shared / "kraken" / "ohlcvt_1h", start="2022-05-01", end="2022-05-31")
    assert load_parquet(save_parquet(market, tmp_path / "k.parquet")).equals(market)


def test_not_a_market_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"x\.parquet: cannot be read"):
        load_parquet(bad)
    import pandas as pd

    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(DataError, match="expected krakenrl market metadata"):
        load_parquet(tmp_path / "plain.parquet")
