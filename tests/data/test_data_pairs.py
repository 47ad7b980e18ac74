"""Kraken pair metadata: coverage, name normalisation, recorded values, fee schedule."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from envs.data.pairs import (
    PAIRS_FILE,
    canonical_asset,
    fee_schedule,
    fee_schedule_source,
    load_pairs,
    pair_info,
    pair_record,
)
from envs.data.synthetic import DEFAULT_UNIVERSE
from envs.errors import DataError

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
RECORDED = SHARED_DATA / "kraken" / "api_fixtures" / "nautilus_trader" / "public_rest_recorded" / "http_asset_pairs.json"
NUMERIC = ("pair_decimals", "lot_decimals", "cost_decimals", "ordermin", "costmin", "tick_size")

REST_NAMES = {
    "BTC": "XXBTZUSD", "ETH": "XETHZUSD", "XRP": "XXRPZUSD", "LTC": "XLTCZUSD", "XLM": "XXLMZUSD",
    "SOL": "SOLUSD", "ADA": "ADAUSD", "DOT": "DOTUSD", "LINK": "LINKUSD", "BCH": "BCHUSD",
    "ATOM": "ATOMUSD", "AVAX": "AVAXUSD",
}


def _recorded_xbtusdt() -> dict:
    with RECORDED.open() as fh:
        return json.load(fh)["result"]["XBTUSDT"]


def test_every_default_asset_has_a_sane_usd_pair() -> None:
    pairs = load_pairs()
    for asset in DEFAULT_UNIVERSE:
        p = pairs[asset]
        assert p.asset == asset
        assert p.rest_name == REST_NAMES[asset]
        assert p.quote == "ZUSD" and p.wsname.endswith("/USD")
        assert 0 <= p.price_decimals <= 8 and 0 <= p.lot_decimals <= 8
        assert p.tick_size == pytest.approx(10.0 ** -p.price_decimals)
        assert p.ordermin > 0 and p.costmin > 0
    assert pairs["BTC"].altname == "XBTUSD" and pairs["BTC"].wsname == "XBT/USD" and pairs["BTC"].base == "XXBT"


def test_optional_pairs_present() -> None:
    assert {"DOGE", "XTZ", "NEAR", "ETC", "UNI", "AAVE", "USDT", "USDC", "DAI"} <= set(load_pairs())
    assert pair_info("XDG").altname == "XDGUSD"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("XBT", "BTC"), ("XXBT", "BTC"), ("xbt", "BTC"), ("XBTUSD", "BTC"), ("XXBTZUSD", "BTC"),
        ("XBT/USD", "BTC"), ("BTC/USD", "BTC"), ("XBTUSD_60", "BTC"), ("BTCUSDT_1h", "BTC"),
        ("BTC-USD", "BTC"), ("XBT.F", "BTC"), ("ETH.M", "ETH"), ("ETHUSD", "ETH"), ("XETHZUSD", "ETH"),
        ("ETHUSD_1", "ETH"), ("ETHUSDC", "ETH"), ("XDG", "DOGE"), ("XXDG", "DOGE"), ("XDGUSD", "DOGE"),
        ("ZUSD", "USD"), ("USD", "USD"), ("USDT", "USDT"), ("USDTZUSD", "USDT"), ("USDCUSD", "USDC"),
        ("TUSD", "TUSD"), ("PYUSD", "PYUSD"), ("XLMUSD", "XLM"), ("XXLMZUSD", "XLM"), ("XTZ", "XTZ"),
        ("SOLUSD_1440", "SOL"), ("LINK", "LINK"), (" atomusd ", "ATOM"), ("BTC_USDT-1h", "BTC"),
        ("ETH_USDT", "ETH"), ("BTCUSDT-1h", "BTC"), ("XBTUSDC_5", "BTC"),
    ],
)
def test_canonical_asset_table(raw: str, expected: str) -> None:
    assert canonical_asset(raw) == expected


@pytest.mark.parametrize("name", ["BTC", "btc", "XBT", "XBTUSD", "xbtusd", "XXBTZUSD", "XBT/USD", "BTCUSD_60"])
def test_pair_info_accepts_every_btc_spelling(name: str) -> None:
    assert pair_info(name) == load_pairs()["BTC"]


def test_unknown_pair_raises_naming_it() -> None:
    with pytest.raises(DataError, match=r"FOOBAR.*expected one of .*'BTC'"):
        pair_info("FOOBAR")
    with pytest.raises(DataError, match="asset name"):
        canonical_asset("  ")


def test_xbtusdt_equals_the_recorded_response() -> None:
    rec = _recorded_xbtusdt()
    p = pair_info("XBTUSDT")
    assert (p.asset, p.altname, p.wsname, p.base, p.quote) == ("BTC", rec["altname"], rec["wsname"],
                                                             rec["base"], rec["quote"])
    assert p.price_decimals == rec["pair_decimals"]
    assert p.lot_decimals == rec["lot_decimals"]
    assert p.ordermin == float(rec["ordermin"])
    assert p.costmin == float(rec["costmin"])
    assert p.tick_size == float(rec["tick_size"])
    assert pair_record("XBTUSDT")["cost_decimals"] == rec["cost_decimals"]


def test_fee_schedule_matches_recording_and_is_monotone() -> None:
    sched = fee_schedule()
    rec = _recorded_xbtusdt()
    assert sched[0] == (0.0, 0.0025, 0.0040)
    got = [x for v, m, t in sched for x in (v, m * 100, t * 100)]
    want = [float(x) for (v, t), (_, m) in zip(rec["fees"], rec["fees_maker"], strict=True) for x in (v, m, t)]
    assert got == pytest.approx(want)
    vols = [v for v, _, _ in sched]
    assert vols == sorted(vols) and len(set(vols)) == len(vols)
    for (_, m0, t0), (_, m1, t1) in itertools.pairwise(sched):
        assert m1 <= m0 and t1 <= t0
    assert all(m <= t for _, m, t in sched)
    source, date = fee_schedule_source()
    assert "S1" in source and date == "2025-11-11"


def test_json_provenance_is_complete_and_honest() -> None:
    doc = json.loads(PAIRS_FILE.read_text())
    assert doc["source"] and doc["source_date"]
    for rec in [*doc["pairs"], *doc["reference_pairs"]]:
        fields = set(rec["verified_fields"]) | set(rec["unverified_fields"])
        assert fields == set(NUMERIC), rec["altname"]
        assert not set(rec["verified_fields"]) & set(rec["unverified_fields"])
        assert set(rec["sources"]) <= set(doc["sources"]), rec["altname"]
        if rec["verified_fields"]:
            assert rec["sources"], rec["altname"]  # a verified value names where it came from
    fully = {r["asset"] for r in doc["pairs"] if not r["unverified_fields"]}
    assert fully == {"BTC", "SOL", "DOGE"}
