"""Integrity checks: injected faults are flagged, clean real data stays quiet, the mask engages the kill switch."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from envs.data.integrity import IntegrityConfig, Reference, check_market, reference_from_market, run_lengths
from envs.data.loaders import load_csv_dir, load_kraken_dir
from envs.errors import ConfigError
from tests.conftest import SHARED_DATA, make_tiny_market

ASSETS = ["BTC", "ETH", "LTC", "XRP", "BCH"]


def _pair(n: int = 400, seed: int = 1):
    """A Kraken-like market and a reference close to it (0.01 % noise, inside its own hourly range)."""
    m = make_tiny_market(n_bars=n, assets=("BTC", "ETH"), seed=seed)
    rng = np.random.default_rng(seed)
    ref_close = m.close * np.exp(rng.normal(0, 1e-4, m.close.shape))
    ref = Reference(close=ref_close, high=ref_close * 1.0005, low=ref_close * 0.9995)
    return m, ref


def test_run_lengths() -> None:
    f = np.array([[0, 1], [1, 1], [1, 0], [1, 1]], dtype=bool)
    np.testing.assert_array_equal(run_lengths(f), [[0, 1], [1, 2], [2, 0], [3, 1]])


def test_injected_discrepancy_gap_stale_and_spike_are_flagged(tmp_path: Path) -> None:
    m, ref = _pair()
    clean = check_market(m, {"binance": ref})
    assert not clean.discrepancy.any() and clean.ok.all() and not clean.spike.any()
    close, high, low, vol = m.close.copy(), m.high.copy(), m.low.copy(), m.volume.copy()
    filled, tradable = m.filled.copy(), m.tradable.copy()
    # BTC: Kraken 1 % above the reference for 5 hours (200..204), whole bar shifted
    for a in (close, high, low):
        a[200:205, 0] *= 1.01
    # ETH: a 2-hour gap (gap-filled) at 100..101 and a frozen feed for 8 hours at 300..307
    for t in (100, 101, *range(300, 308)):
        close[t, 1] = high[t, 1] = low[t, 1] = close[t - 1, 1]
        vol[t, 1] = 0.0
    filled[100:102, 1] = True
    tradable[100:102, 1] = False
    # ETH: a one-bar bad print +30 % at 350 that the reference does not show
    close[350, 1] *= 1.3
    high[350, 1] = close[350, 1]
    opn = m.open.copy()
    opn[1:] = close[:-1]
    opn[300:308, 1] = close[300:308, 1]
    high, low = np.maximum(high, np.maximum(opn, close)), np.minimum(low, np.minimum(opn, close))
    bad = replace(m, open=opn, close=close, high=high, low=low, volume=vol, filled=filled, tradable=tradable)
    rep = check_market(bad, {"binance": ref}, IntegrityConfig(min_run=3, stale_hours=6))
    assert np.flatnonzero(rep.discrepancy[:, 0]).tolist() == list(range(200, 205))
    assert np.flatnonzero(~rep.ok[:, 0]).tolist() == [202, 203, 204]  # from the 3rd hour of the run on
    assert np.flatnonzero(rep.gap[:, 1]).tolist() == [100, 101]
    assert np.flatnonzero(rep.stale[:, 1]).tolist() == [305, 306, 307]  # the 6th flat hour on
    assert rep.spike[350, 1] and not rep.ok[350, 1] and rep.spike.sum() == 1
    table = rep.table()
    assert table.loc["BTC", "flagged"] == 5 and table.loc["BTC", "runs_ge_3h"] == 1 and table.loc["BTC", "longest_run_h"] == 5
    assert table.loc["ETH", "gap_hours"] == 2 and table.loc["ETH", "gaps"] == 1 and table.loc["ETH", "spikes"] == 1
    kinds = rep.events().groupby("kind").size().to_dict()
    assert kinds["discrepancy"] >= 1 and kinds["gap"] == 1 and kinds["stale"] == 1 and kinds["spike"] == 1
    png = rep.plot(tmp_path / "integrity.png")
    assert png.stat().st_size > 10_000
    # a spike the reference confirms (both venues moved) is a market move, not a data error
    ref2 = Reference(close=bad.close.copy(), high=bad.high.copy(), low=bad.low.copy())
    assert not check_market(bad, {"binance": ref2}).spike[350, 1]
    marked = rep.apply()
    assert marked.integrity_ok is not None and marked.slice(200, 210).integrity_ok.shape == (10, 2)
    with pytest.raises(ConfigError, match=r"integrity\.threshold"):
        IntegrityConfig(threshold=0.0)


def test_clean_real_data_false_flag_rate() -> None:
    """Kraken vs Binance hourly closes, 2019-01 .. 2022-06, five pairs, default threshold 0.2 %."""
    kw = {"assets": ASSETS, "start": "2019-01-01", "end": "2022-06-30T23:00:00Z"}
    km = load_kraken_dir(SHARED_DATA / "kraken" / "ohlcvt_1h", **kw)
    bm = load_csv_dir(SHARED_DATA / "binance" / "spot_1h", **kw)
    rep = check_market(km, {"binance": reference_from_market(bm, km)})
    assert rep.config.threshold == 0.002
    flag, not_ok = rep.flag_rate(), rep.not_ok_rate()
    raw = check_market(km, {"binance": reference_from_market(bm, km)}, IntegrityConfig(use_range=False, basis_window=0))
    print(f"\nfalse-flag rate at 0.2 %: {100 * flag:.3f} % of {int(np.isfinite(rep.deviation).sum())} compared bars; "
          f"integrity_ok False on {100 * not_ok:.3f} %; close-vs-median alone (no basis, no range): "
          f"{100 * raw.flag_rate():.1f} %")  # fmt: skip
    print(rep.table().to_string())
    assert flag < 0.01 and not_ok < 0.005  # the stated rates: < 1 % flagged, < 0.5 % masked
    assert raw.flag_rate() > 0.1  # why the basis and range rules exist


def test_integrity_mask_engages_the_kill_switch() -> None:
    from risk.kernels import F_HELD, F_MARKET
    from risk.kill_switch import MarketSignals
    from risk.limits import RiskLimits

    m = make_tiny_market(n_bars=200, assets=("BTC", "ETH", "SOL", "ADA", "XRP"), seed=3)  # 1 of 5 < breadth 0.25
    ok = np.ones(m.close.shape, dtype=bool)
    ok[150, 1] = False
    market = replace(m, integrity_ok=ok)
    limits = RiskLimits()
    sig = MarketSignals(market, limits)
    plain = MarketSignals(m, limits)
    assert sig.flags[150, 1] & F_HELD and sig.flags[150, 1] & F_MARKET and not plain.flags[150, 1] & F_HELD
    assert sig.blocked(150)[1] and not sig.blocked(149)[1]
    held = np.array([False, True, False, False, False])
    hits = sig.hits(150, held, limits)
    assert [(h.reason, h.asset) for h in hits] == [("data_integrity", "ETH")]
    assert sig.hits(150, ~held, limits) == []  # not held: blocks entries in ETH only
    assert sig.asset_hits(150, 1, limits)[0].detail.startswith("integrity check failed")
    from risk.kill_switch import KillSwitch

    switch = KillSwitch()
    assert switch.update(hits, int(market.timestamps[150])) and switch.engaged and switch.reasons == ["data_integrity"]


def test_one_assets_integrity_failure_is_not_a_market_wide_event() -> None:
    """A failed check on one unheld asset blocks that asset only, even where one asset is above
    the breadth share (2 assets: 1 of 2 >= 0.25): breadth counts the market triggers alone."""
    from risk.kill_switch import MarketSignals
    from risk.limits import RiskLimits

    m = make_tiny_market(n_bars=200, assets=("BTC", "ETH"), seed=3)
    ok = np.ones(m.close.shape, dtype=bool)
    ok[150, 1] = False
    sig = MarketSignals(replace(m, integrity_ok=ok), RiskLimits())
    plain = MarketSignals(m, RiskLimits())
    np.testing.assert_array_equal(sig.engage, plain.engage)
    np.testing.assert_array_equal(sig.n_firing, plain.n_firing)
    assert sig.blocked(150)[1] and not sig.blocked(150)[0]


def test_integrity_mask_uses_no_future_bars() -> None:
    """The mask at bar t is the same whether the data ends at t or runs on (time contract)."""
    m, ref = _pair(n=700, seed=4)
    close = m.close.copy()
    close[600:604, 0] *= 1.02  # a discrepancy run
    close[650, 1] *= 1.5  # a spike the reference does not confirm
    market = replace(m, close=close, high=np.maximum(m.high, close), low=np.minimum(m.low, close))
    full = check_market(market, {"binance": ref}).ok
    for end in (560, 601, 603, 620, 651, 690):
        cut = market.slice(0, end + 1)
        part = Reference(close=ref.close[: end + 1], high=ref.high[: end + 1], low=ref.low[: end + 1])
        np.testing.assert_array_equal(check_market(cut, {"binance": part}).ok, full[: end + 1], err_msg=f"end={end}")
    assert not full.all()  # the injected faults were flagged


def test_a_jump_after_a_flat_stretch_is_a_spike_and_gap_fills_are_not_stale() -> None:
    m, ref = _pair(n=600, seed=5)
    close = m.close.copy()
    close[100:460, 0] = close[99, 0]  # 360 hours without a price change (MAD 0) ...
    close[460:, 0] = close[99, 0] * 1.5  # ... then +50 %, which the reference does not show
    market = replace(m, close=close, open=close, high=close, low=close)
    report = check_market(market, {"binance": ref})
    assert not report.ok[460, 0]

    filled = m.filled.copy()
    filled[300:310, 1] = True  # a 10-hour gap, marked as the loaders mark it: flat, zero volume
    c = m.close.copy()
    c[300:310, 1] = c[299, 1]
    vol = m.volume.copy()
    vol[300:310, 1] = 0.0
    gap = replace(m, close=c, open=np.where(filled, c, m.open), high=np.where(filled, c, m.high),
                  low=np.where(filled, c, m.low), volume=vol, filled=filled)
    assert check_market(gap, {}).ok[300:310, 1].all()  # the kill switch's max_stale_hours owns gaps


def test_integrity_overrides_are_checked_like_every_config() -> None:
    with pytest.raises(ConfigError, match=r"data.integrity: unknown keys \['treshold'\]"):
        IntegrityConfig.from_mapping({"treshold": 0.01}, section="data.integrity")
    with pytest.raises(ConfigError, match=r"data\.integrity\.threshold"):
        IntegrityConfig.from_mapping({"threshold": "0.01"}, section="data.integrity")
    assert IntegrityConfig.from_mapping({"threshold": 0.005}).threshold == 0.005
