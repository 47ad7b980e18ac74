"""Issue 8, item 7: the spread the env charges is quoted where known, estimated only as a fallback.

- the per-pair table (``envs/data/kraken_spreads.json``) covers every Kraken USD pair of the
  metadata, and its measured values are recomputed here from the recorded book and tickers;
- ``spread_source="auto"`` takes a spread column, else the table (never below one tick),
  else the Abdi-Ranaldo estimate, and labels which per asset;
- zero-range bars are missing for both estimators, not zero estimates;
- Abdi-Ranaldo recovers a known spread on simulated bars where Corwin-Schultz overstates it;
- regression: on Kraken BTC 2023 Q1 the env charged a Corwin-Schultz half-spread of ~7 bp
  (quoted: below 0.05 bp); it now charges the quoted spread.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.data.indicators import abdi_ranaldo_spread, corwin_schultz_spread, ranged_pairs
from envs.data.loaders import load_kraken_dir
from envs.data.pairs import load_pairs
from envs.data.spreads import (
    book_spread_stats,
    quoted_spreads,
    reference_spreads,
    spread_model,
    ticker_spread,
)
from envs.errors import ConfigError
from envs.kraken_spot import KrakenSpotEnv
from tests.conftest import make_tiny_market


# ---------------------------------------------------------------- the table
def test_table_covers_every_kraken_usd_pair_with_source_date_and_kind():
    table = quoted_spreads()
    assert set(table) == set(load_pairs())
    for asset, q in table.items():
        assert q.altname == load_pairs()[asset].altname
        assert q.kind in ("measured", "estimate") and q.sources and q.date and len(q.note) > 40
        assert 1e-7 < q.spread < 1e-2
    assert table["BTC"].kind == "measured"
    assert all(q.kind == "estimate" for a, q in table.items() if a != "BTC")  # no other recorded quote exists


def test_btc_value_is_the_recorded_order_book_mean(shared_data):
    stats = book_spread_stats(shared_data / "kraken" / "orderbook"
                              / "execedge_kraken_BTCUSD_book_snapshots_2026-08-06.jsonl.gz")
    assert stats["snapshots"] == 258
    assert quoted_spreads()["BTC"].spread == pytest.approx(stats["mean"], rel=1e-3)
    assert stats["median"] == pytest.approx(0.1 / 64_331.7, rel=0.01)  # one $0.10 tick: ~0.016 bp


def test_xbt_usdt_reference_is_the_recorded_ticker(shared_data):
    fixtures = shared_data / "kraken" / "api_fixtures"
    recorded = json.loads((fixtures / "nautilus_trader" / "public_rest_recorded" / "http_ticker.json").read_text())
    (ref,) = reference_spreads()
    assert ref.altname == "XBTUSDT"
    assert ref.spread == pytest.approx(ticker_spread(recorded)["XBTUSDT"], rel=1e-3)  # 0.0094 bp
    cases = json.loads((fixtures / "ccxt" / "kraken_http_responses.json").read_text())["cases"]
    (ccxt,) = [c for c in cases if c["method"] == "fetchTicker"]
    assert ticker_spread(ccxt["httpResponse"])["XBTUSDT"] == pytest.approx(0.1 / 73_380.65, rel=1e-6)


# ---------------------------------------------------------------- choosing the source
def _market(spread: np.ndarray | None = None, assets=("BTC", "ZZZ"), close: float = 20_000.0):
    c = np.full((60, len(assets)), close) * np.exp(np.random.default_rng(0).normal(0, 0.01, (60, len(assets))))
    return make_tiny_market(c, assets=assets, spread=spread)


def test_auto_prefers_a_spread_column():
    col = np.full((60, 2), 0.0007)
    model = spread_model(_market(col), "auto", 24)
    assert model.sources == ("column", "column") and np.array_equal(model.spread, col)


def test_auto_uses_the_table_never_below_one_tick_and_labels_the_estimator_fallback(caplog):
    market = _market()
    with caplog.at_level(logging.WARNING):
        model = spread_model(market, "auto", 24)
    assert model.sources == ("table", "abdi_ranaldo")
    assert "ZZZ" in caplog.text and "Abdi-Ranaldo" in caplog.text
    tick = market.pairs["BTC"].tick_size  # 0.01 in the tiny market's pair rules
    expected = np.fmax(quoted_spreads()["BTC"].spread, tick / market.close[:, 0])
    np.testing.assert_array_equal(model.spread[:, 0], expected)
    np.testing.assert_array_equal(model.spread[:, 1], abdi_ranaldo_spread(market, 24)[:, 1])
    cheap = _market(close=1.0)  # at 1 USD a 0.01 tick is a 100 bp spread: the tick binds
    assert np.all(spread_model(cheap, "auto", 24).spread[:, 0] >= 0.01 / cheap.close[:, 0])


def test_explicit_sources_fail_loudly_when_they_cannot_apply():
    with pytest.raises(ConfigError, match="ZZZ"):
        spread_model(_market(), "table", 24)
    with pytest.raises(ConfigError, match="no spread column"):
        spread_model(_market(), "column", 24)
    with pytest.raises(ConfigError, match="spread_source"):
        EnvConfig(spread_source="quoted")
    model = spread_model(_market(), "corwin_schultz", 24)
    assert model.sources == ("corwin_schultz",) * 2


def test_env_reports_the_source_and_floors_the_spread():
    env = KrakenSpotEnv(_market(), EnvConfig(window=4, spread_floor=1e-3, pair_spread_floor={"ZZZ": 0.0}))
    assert env.core.arrays.spread_source == ("table", "abdi_ranaldo")
    half = env.core.arrays.half_spread
    assert np.all(half[:, 0] == 0.5e-3)  # the 10 bp floor dominates BTC's quote
    assert np.all(half[:, 1] >= 0.0)


# ---------------------------------------------------------------- estimators
def test_zero_range_bars_are_missing_not_zero_estimates():
    c = np.full((40, 1), 100.0)
    flat = make_tiny_market(c, assets=("A0",), open=c.copy(), high=c.copy(), low=c.copy())
    assert not ranged_pairs(flat).any()
    assert np.isnan(corwin_schultz_spread(flat, 4)).all()  # the old estimator gave 0.0 here
    assert np.isnan(abdi_ranaldo_spread(flat, 4)).all()
    # one zero-range bar inside ranged ones: its two pairs drop out of the mean
    market = make_tiny_market(n_bars=40, assets=("A0",), seed=4)
    high, low = market.high.copy(), market.low.copy()
    high[20] = low[20] = market.close[20]
    gapped = make_tiny_market(market.close, assets=("A0",), open=market.open, high=high, low=low)
    cs_pairs = corwin_schultz_spread(gapped, 2)  # window 2: each value is the mean of two pairs
    assert np.isnan(cs_pairs[20:22]).all()  # pairs (19,20), (20,21) and their window are missing
    assert np.isfinite(cs_pairs[19]) and np.isfinite(cs_pairs[23])


def simulated(spread: float, vol: float, bars: int = 20_000, sub: int = 60, seed: int = 0):
    """Hourly bars of trades at bid or ask (random side) around a random-walk mid, 60 per bar."""
    rng = np.random.default_rng(seed)
    mid = 100.0 * np.exp(np.cumsum(rng.normal(0, vol / np.sqrt(sub), bars * sub))).reshape(bars, sub)
    px = mid * (1.0 + rng.choice([-1.0, 1.0], size=mid.shape) * spread / 2)
    return make_tiny_market(px[:, -1:], assets=("A0",), open=px[:, :1], high=px.max(1, keepdims=True),
                            low=px.min(1, keepdims=True))


def test_abdi_ranaldo_recovers_a_known_spread_where_corwin_schultz_overstates_it():
    """10 bp quoted, 0.5 % hourly volatility, 20,000 bars: AR over the whole sample is within
    20 % of the truth, CS about twice it (it mostly measures volatility)."""
    market = simulated(0.001, 0.005)
    n = market.n_bars
    ar = abdi_ranaldo_spread(market, n)[-1, 0]
    cs = corwin_schultz_spread(market, n)[-1, 0]
    assert ar == pytest.approx(0.001, rel=0.2)
    assert cs > 1.5 * 0.001


# ---------------------------------------------------------------- the reproduction
def test_env_charges_the_quoted_btc_spread_on_kraken_2023_not_a_volatility_estimate(shared_data):
    market = load_kraken_dir(shared_data / "kraken" / "ohlcvt_1h", assets=["BTC", "ETH"], start="2023-01-01",
                             end="2023-03-31T23:00")
    env = KrakenSpotEnv(market, EnvConfig())
    half = env.core.arrays.half_spread
    btc, eth = market.assets.index("BTC"), market.assets.index("ETH")
    assert env.core.arrays.spread_source == ("table",) * 2
    # BTC: max(0.086 bp, one 0.1 USD tick at 16,500-29,000 USD) / 2 < 0.05 bp; it was ~7 bp with Corwin-Schultz
    assert np.all(half[:, btc] < 0.5e-5)
    assert np.all(half[:, btc] >= 0.5 * 0.1 / market.close[:, btc] * (1 - 1e-12))
    assert np.all(half[:, eth] == 0.5 * quoted_spreads()["ETH"].spread)
    legacy = KrakenSpotEnv(market, EnvConfig(spread_source="corwin_schultz", spread_window=24))
    assert np.median(legacy.core.arrays.half_spread[24:, btc]) > 5e-4  # the overstated cost the issue measured
