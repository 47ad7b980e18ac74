"""Hand-built scenarios: each ladder level and each kill-switch trigger, exact weights (RISK-3/4/8).

The market is flat (constant prices, high/low 0.05% around the close) so that no limit
other than the one under test binds: ATR/price = 0.001 gives an ATR size cap of
0.02 / (2 x 0.001) = 10, returns are 0 (no volatility trigger, every asset its own
cluster), and the Corwin-Schultz spread stays far below 5 x the 30 bp floor.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from envs.data.market import HOUR, MarketData
from envs.snapshot import PortfolioSnapshot
from risk import SPEC_A, ReactivationRefused, RiskLimits, RiskProjector, ladder_level, ladder_level_of
from tests.conftest import gate_off

T0 = 1_700_000_000 // HOUR * HOUR  # 22:00 UTC, so bar 50 starts at 00:00 (a rebalance hour)
ASSETS = ("A", "B", "C", "D")
PRICES = np.array([100.0, 50.0, 10.0, 1.0])
PEAK = 10_000.0
CUR = np.array([0.10, 0.20, 0.0, 0.0])
PROP = np.array([0.30, 0.10, 0.40, 0.20])
# the spec-A limits with a 48-hour correlation window: on this 60-bar market every asset then
# has known (zero) correlations and sits in its own cluster (with 720 h all four would share
# the conservative "unknown" cluster, capped at 0.70)
LIM = replace(SPEC_A, corr_window=48)


def flat_market(
    n_bars: int = 60,
    close: np.ndarray | None = None,
    spread: np.ndarray | None = None,
    tradable: np.ndarray | None = None,
) -> MarketData:
    c = np.tile(PRICES, (n_bars, 1)) if close is None else close
    return MarketData(
        assets=ASSETS,
        timestamps=T0 + HOUR * np.arange(n_bars, dtype=np.int64),
        open=np.vstack([c[:1], c[:-1]]),
        high=c * 1.0005,
        low=c * 0.9995,
        close=c,
        volume=np.full(c.shape, 1e6),
        tradable=np.isfinite(c) if tradable is None else tradable,
        filled=np.zeros(c.shape, dtype=bool),
        spread=spread,
    )


def snap(
    market: MarketData, t: int, weights: np.ndarray = CUR, equity: float = PEAK, peak: float = PEAK
) -> PortfolioSnapshot:
    prices = np.nan_to_num(market.close[t], nan=1.0)
    units = weights * equity / prices
    return PortfolioSnapshot(
        t=t,
        timestamp=int(market.timestamps[t]),
        cash=equity * (1 - weights.sum()),
        units=units,
        prices=prices,
        equity=equity,
        weights=weights.copy(),
        peak_equity=peak,
        tradable=market.tradable[t].copy(),
    )


def rules(decision) -> dict[str, tuple[list[str], float]]:
    return {iv["rule"]: (iv["assets"], iv["amount"]) for iv in decision.to_info()["interventions"]}


# ------------------------------------------------------------------ ladder
@pytest.mark.parametrize(("thr_name", "level"), [("dd_reduce", 1), ("dd_cut", 2), ("dd_halt", 3)])
def test_ladder_thresholds_below_at_above(thr_name: str, level: int) -> None:
    thr = getattr(SPEC_A, thr_name)
    assert ladder_level(thr - 1e-9, SPEC_A) == level - 1
    assert ladder_level(thr, SPEC_A) == level
    assert ladder_level(thr + 1e-9, SPEC_A) == level
    assert ladder_level_of(PEAK * (1 - thr + 1e-9), PEAK, SPEC_A) == level - 1
    assert ladder_level_of(PEAK * (1 - thr), PEAK, SPEC_A) == level
    assert ladder_level_of(PEAK * (1 - thr - 1e-9), PEAK, SPEC_A) == level
    # through the projector, from a fresh account each time
    m = flat_market()
    for eq, expect in [
        (PEAK * (1 - thr + 1e-9), level - 1),
        (PEAK * (1 - thr), level),
        (PEAK * (1 - thr - 1e-9), level),
    ]:
        d = RiskProjector(LIM, m).project(snap(m, 50, equity=eq), PROP)
        assert d.level == expect and d.to_info()["ladder_level"] == expect


def test_level0_only_the_asset_cap_binds() -> None:
    m = flat_market()
    d = RiskProjector(LIM, m).project(snap(m, 50, equity=PEAK * 0.9 + 1e-3), PROP)
    np.testing.assert_array_equal(d.target, [0.30, 0.10, 0.35, 0.20])
    assert rules(d) == {"asset_cap": (["C"], pytest.approx(0.05))}
    info = d.to_info()
    assert info["ladder_level"] == 0 and info["ladder_state"] == "normal" and info["halt"] is False
    np.testing.assert_array_equal(info["proposed"], PROP)
    assert info["kill_switch"]["engaged"] is False


def test_level1_new_sizes_scaled_by_half_existing_kept() -> None:
    m = flat_market()
    d = RiskProjector(LIM, m).project(snap(m, 50, equity=PEAK * 0.9), PROP)
    # size bound = max(0.5 x min(10, 0.35), current) = (0.175, 0.20, 0.175, 0.175)
    np.testing.assert_allclose(d.target, [0.175, 0.10, 0.175, 0.175], rtol=0, atol=1e-15)
    r = rules(d)
    assert r["asset_cap"] == (["C"], pytest.approx(0.05))
    assert r["ladder_size"] == (["A", "C", "D"], pytest.approx(0.125 + 0.175 + 0.025))
    assert d.level == 1 and d.to_info()["ladder_state"] == "reduce_size"
    # a position already above the reduced size (B at 0.20) is not forced down
    keep = RiskProjector(LIM, m).project(snap(m, 50, equity=PEAK * 0.9), np.array([0.1, 0.2, 0, 0]))
    np.testing.assert_array_equal(keep.target, [0.1, 0.2, 0, 0])


def test_level2_exposure_cut_on_rebalance_hours_reduce_only_otherwise() -> None:
    m = flat_market()
    assert (int(m.timestamps[50]) // HOUR) % 24 == 0
    d = RiskProjector(LIM, m).project(snap(m, 50, equity=PEAK * 0.85), PROP)
    # level-1 result (0.175, 0.10, 0.175, 0.175) sums to 0.625 > 0.5 x 1.0 -> scaled by 0.8
    np.testing.assert_allclose(d.target, [0.14, 0.08, 0.14, 0.14], rtol=1e-12)
    assert d.target.sum() <= 0.5
    r = rules(d)
    assert r["exposure_cap"][0] == ["A", "B", "C", "D"]
    assert r["exposure_cap"][1] == pytest.approx(0.125)
    off = RiskProjector(LIM, m).project(snap(m, 51, equity=PEAK * 0.85), PROP)
    np.testing.assert_array_equal(off.target, [0.10, 0.10, 0.0, 0.0])  # reduce-only: min(p, current)
    assert rules(off)["ladder_schedule"][0] == ["A", "C", "D"]
    assert off.level == 2


def test_level3_halt_all_cash_latched_until_manual_reset() -> None:
    m = flat_market()
    p = RiskProjector(LIM, m)
    d = p.project(snap(m, 50, equity=PEAK * 0.8), PROP)
    np.testing.assert_array_equal(d.target, np.zeros(4))
    assert d.halted and d.level == 3 and rules(d)["halt"][0] == ["A", "B", "C", "D"]
    assert d.to_info()["halt"] is True
    # equity recovers (drawdown 5%): still halted, no new entries
    for t in range(51, 55):
        again = p.project(snap(m, t, weights=np.zeros(4), equity=PEAK * 0.95), PROP)
        assert again.halted and not np.any(again.target)
    with pytest.raises(ReactivationRefused):
        p.ladder.reset("", "no operator", equity=PEAK * 0.95)
    p.ladder.reset("alice", "post-mortem done", equity=PEAK * 0.95)
    resumed = p.project(snap(m, 56, weights=np.zeros(4), equity=PEAK * 0.95, peak=PEAK), PROP)
    # the high-water mark restarts at 9,500, the snapshot's own peak (10,000) is folded in: dd 5%
    assert resumed.level == 0 and not resumed.halted and resumed.target.sum() > 0
    assert [a["event"] for a in p.ladder.audit] == ["halt", "ladder_reset"]


def test_halt_state_survives_a_restart_through_state_dict() -> None:
    m = flat_market()
    p = RiskProjector(LIM, m)
    p.project(snap(m, 50, equity=PEAK * 0.79), PROP)
    state = json.loads(json.dumps(p.state_dict()))
    q = RiskProjector(LIM, m)
    q.load_state_dict(state)
    d = q.project(snap(m, 51, weights=np.zeros(4), equity=PEAK, peak=PEAK), PROP)
    assert d.halted and not np.any(d.target)


# ------------------------------------------------------------- kill switch
def _engaged_case(p: RiskProjector, m: MarketData, t: int = 50):
    d = p.project(snap(m, t), np.array([0.30, 0.10, 0.20, 0.0]))
    return d


def test_spread_anomaly_below_and_above_threshold() -> None:
    base = np.full((60, 4), 0.001)
    # reference = max(median 0.001, floor 0.003) = 0.003; threshold = 5 x 0.003 = 0.015
    for value, fires in [(0.015 - 1e-9, False), (0.015, False), (0.015 + 1e-9, True)]:
        s = base.copy()
        s[50, 1] = value
        m = flat_market(spread=s)
        d = _engaged_case(RiskProjector(LIM, m), m)
        assert d.kill_switch_engaged is fires
        if fires:
            np.testing.assert_array_equal(d.target, [0.10, 0.10, 0.0, 0.0])
            info = d.to_info()["kill_switch"]
            assert info["reasons"] == ["spread_anomaly"] and info["engaged_now"] is True
            assert info["active_triggers"][0]["asset"] == "B"
            assert rules(d)["kill_switch"][0] == ["A", "C"]
        else:
            np.testing.assert_array_equal(d.target, [0.30, 0.10, 0.20, 0.0])


def test_volatility_spike_below_and_above_threshold() -> None:
    rng = np.random.default_rng(3)
    steps = rng.normal(0.0, 0.002, size=(60, 4))
    close = PRICES * np.exp(np.cumsum(steps, axis=0))
    r = np.diff(np.log(close[:50, 0]))
    sigma = np.std(r[~np.isnan(r)], ddof=1)  # returns of bars 1..49, the trailing window at t=50
    results = {}
    for factor in (1 - 1e-6, 1 + 1e-6):
        c = close.copy()
        c[50:, 0] = c[49, 0] * np.exp(-10.0 * sigma * factor)
        m = flat_market(close=c)
        p = RiskProjector(LIM, m)
        assert p.signals.sigma[50, 0] == pytest.approx(sigma, rel=1e-9)
        results[factor] = _engaged_case(p, m)
    assert not results[1 - 1e-6].kill_switch_engaged
    d = results[1 + 1e-6]
    assert d.kill_switch_engaged and d.kill_switch_reasons == ["volatility_spike"]
    assert all(d.target <= d.current)


@pytest.mark.parametrize(("jump", "fires"), [(0.5 - 1e-6, False), (0.5 + 1e-6, True)])
def test_price_jump_is_a_data_integrity_failure(jump: float, fires: bool) -> None:
    c = np.tile(PRICES, (60, 1))
    c[50:, 1] = PRICES[1] * np.exp(jump)
    m = flat_market(close=c)
    d = _engaged_case(RiskProjector(LIM, m), m)
    assert d.kill_switch_engaged is fires
    if fires:
        assert d.kill_switch_reasons == ["data_integrity"]
        assert d.to_info()["kill_switch"]["active_triggers"][0]["detail"] == "price jump"


@pytest.mark.parametrize(("missing", "fires"), [(6, False), (7, True)])
def test_stale_held_asset_is_a_data_integrity_failure(missing: int, fires: bool) -> None:
    tradable = np.ones((60, 4), dtype=bool)
    tradable[51 - missing : 51, 1] = False  # B (held) has no real bar in the last `missing` hours
    m = flat_market(tradable=tradable)
    d = RiskProjector(LIM, m).project(snap(m, 50), np.array([0.30, 0.10, 0.20, 0.0]))
    assert d.kill_switch_engaged is fires
    if fires:
        assert "stale" in d.to_info()["kill_switch"]["active_triggers"][0]["detail"]
        # B has no bar: the env can neither sell nor buy it, so it keeps 0.20 (the proposal's
        # 0.10 is not pretended); A and C cannot grow (kill switch)
        np.testing.assert_array_equal(d.target, [0.10, 0.20, 0.0, 0.0])


def test_nan_bar_of_a_held_asset_is_a_data_integrity_failure() -> None:
    c = np.tile(PRICES, (60, 1))
    c[50, 1] = np.nan
    m = flat_market(close=c)
    d = _engaged_case(RiskProjector(LIM, m), m)
    assert d.kill_switch_engaged and d.kill_switch_reasons == ["data_integrity"]


def test_snapshot_out_of_step_with_market_engages() -> None:
    m = flat_market()
    s = snap(m, 50)
    bad = PortfolioSnapshot(**{**s.__dict__, "timestamp": s.timestamp + HOUR})
    d = RiskProjector(LIM, m).project(bad, PROP)
    assert d.kill_switch_engaged and d.kill_switch_reasons == ["data_integrity"]


def test_exchange_down_engages_and_blocks_reactivation_until_up() -> None:
    m = flat_market()
    p = RiskProjector(LIM, m)
    p.kill_switch.report_exchange_down("HTTP 503 maintenance", timestamp=int(m.timestamps[50]))
    d = _engaged_case(p, m)
    assert d.kill_switch_reasons == ["exchange_down"]
    np.testing.assert_array_equal(d.target, [0.10, 0.10, 0.0, 0.0])
    with pytest.raises(ReactivationRefused, match="exchange_down"):
        p.kill_switch.reactivate("alice", "looks fine")
    p.kill_switch.report_exchange_up()
    assert p.kill_switch.engaged  # coming back up does not disengage it
    p.kill_switch.reactivate("alice", "exchange back, checked balances")
    assert not p.kill_switch.engaged


def test_simultaneous_triggers_give_one_engagement_event() -> None:
    s = np.full((60, 4), 0.001)
    s[50, 1] = 0.05
    c = np.tile(PRICES, (60, 1))
    c[50:, 0] = PRICES[0] * np.exp(0.6)
    m = flat_market(close=c, spread=s)
    p = RiskProjector(LIM, m)
    d = _engaged_case(p, m)
    assert d.kill_switch_reasons == ["data_integrity", "spread_anomaly"]
    assert [a["event"] for a in p.kill_switch.audit] == ["engaged"]


def test_only_manual_reactivation_disengages() -> None:
    s = np.full((60, 4), 0.001)
    s[50, 1] = 0.05
    m = flat_market(spread=s)
    p = RiskProjector(LIM, m)
    _engaged_case(p, m, 50)
    with pytest.raises(ReactivationRefused, match="spread_anomaly"):  # trigger still active at t=50
        p.kill_switch.reactivate("alice", "spread normal again")
    for t in range(51, 60):  # calm hours, proposals to buy: stays engaged, nothing grows
        d = p.project(snap(m, t), PROP)
        assert d.kill_switch_engaged and np.all(d.target <= CUR)
    # a restart (state round trip) and a reset of the ladder do not clear it either
    q = RiskProjector(LIM, m)
    q.load_state_dict(json.loads(json.dumps(p.state_dict())))
    q.ladder.reset("bob", "unrelated", equity=PEAK)
    assert q.project(snap(m, 59), PROP).kill_switch_engaged
    with pytest.raises(ReactivationRefused):
        q.kill_switch.reactivate("", "")
    q.kill_switch.reactivate("alice", "spread normal again")
    d = q.project(snap(m, 59), PROP)
    assert not d.kill_switch_engaged
    np.testing.assert_array_equal(d.target, [0.30, 0.10, 0.35, 0.20])
    events = [a["event"] for a in q.kill_switch.audit]
    assert events == ["engaged", "reactivation_refused", "reactivation_refused", "reactivated"]
    assert q.kill_switch.audit[-1]["operator"] == "alice"


def test_malformed_proposals_hold_current_weights_with_a_reason() -> None:
    m = flat_market()
    for bad, why in [
        (np.array([np.nan, 0.1, 0.1, 0.1]), "NaN/inf"),
        (np.array([np.inf, 0, 0, 0]), "NaN/inf"),
        (np.ones(5), "wrong shape"),
        ("buy!", "not numeric"),
        (None, "wrong shape"),
        ({"a": 1}, "not numeric"),
    ]:
        d = RiskProjector(LIM, m).project(snap(m, 50), bad)
        np.testing.assert_array_equal(d.target, CUR)
        assert rules(d)["sanitise"] and why in d.interventions[0].detail


def test_negative_and_oversized_proposals_are_sanitised_with_reasons() -> None:
    m = flat_market()
    lim = gate_off(RiskLimits())
    d = RiskProjector(lim, m).project(snap(m, 50), np.array([-1.0, 3.0, 1.0, 0.0]))
    assert "negative" in d.interventions[0].detail and "scaled to 1" in d.interventions[0].detail
    np.testing.assert_allclose(d.target, [0.0, 0.35, 0.25, 0.0])


def test_ladder_keeps_its_own_high_water_mark_when_a_snapshot_reports_a_lower_peak() -> None:
    """Paper trading restarts from a snapshot whose peak is its current equity: the ladder's
    persisted high-water mark (10,000) still measures the drawdown (15 %), not the snapshot's."""
    from risk.ladder import DrawdownLadder

    ladder = DrawdownLadder()
    assert ladder.update(10_000.0, 10_000.0, 0, SPEC_A) == (0, 0.0)
    level, dd = ladder.update(8_500.0, 8_500.0, 3600, SPEC_A)
    assert dd == pytest.approx(0.15, rel=1e-12) and ladder.peak_equity == 10_000.0
    assert level == ladder_level_of(8_500.0, 10_000.0, SPEC_A) >= 1
