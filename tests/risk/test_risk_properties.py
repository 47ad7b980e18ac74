"""Property tests of the projection over random markets, accounts, limits and proposals.

Post-conditions of TEST_PLAN section 2, checked by code written independently of
`RiskProjector.violation`: RISK-1/2 (every limit in force holds, exposure = weight at
current prices), RISK-5 (never above the proposal; idempotent; tightening never raises
total exposure), RISK-6 (malformed proposals are held, never raise), halt = flat,
kill switch engaged = no position grows.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.data.indicators import atr
from envs.data.market import HOUR, MarketData
from envs.snapshot import PortfolioSnapshot
from risk import SPEC_A, RiskDecision, RiskLimits, RiskProjector
from risk.cost_gate import CostInputs
from tests.conftest import gate_off

EXAMPLES = 2000  # TEST_PLAN section 2: 2,000 examples per property in PR runs
PROPS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
T0 = 1_600_000_000 // HOUR * HOUR


@lru_cache(maxsize=64)
def random_market(seed: int, n: int, n_bars: int, with_spread: bool, stress: bool = False) -> MarketData:
    """Factor-driven random walk (so clusters form), late listings, gaps, spread spikes.

    ``stress`` adds market-wide events: hours in which most of the universe spikes, and
    hours in which every pair lacks a bar (the backtest's exchange outage).
    """
    rng = np.random.default_rng(seed)
    vol = rng.uniform(0.002, 0.05, n)
    beta = rng.uniform(-0.5, 1.5, n)
    f = rng.normal(0, 0.01, (n_bars, 1))
    r = beta * f + rng.normal(0, 1, (n_bars, n)) * vol
    r[rng.random((n_bars, n)) < 0.01] *= 30  # occasional shocks
    if stress:
        wide = rng.random(n_bars) < 0.08
        r[wide] *= np.where(rng.random((int(wide.sum()), n)) < 0.7, 30.0, 1.0)  # market-wide spikes
    close = 100 * rng.uniform(0.01, 10, n) * np.exp(np.cumsum(r, axis=0))
    listing = np.where(rng.random(n) < 0.3, rng.integers(0, n_bars // 2, n), 0)
    for i in range(n):
        close[: listing[i], i] = np.nan
    tradable = np.isfinite(close) & (rng.random((n_bars, n)) > 0.03)
    if stress:
        tradable[rng.random(n_bars) < 0.08] = False  # hours without any bar: exchange down
    filled = np.isfinite(close) & ~tradable
    spread = None
    if with_spread:
        spread = rng.uniform(0.0005, 0.003, (n_bars, n))
        spread[rng.random((n_bars, n)) < 0.02] = 0.05
    return MarketData(
        assets=tuple(f"X{i}" for i in range(n)),
        timestamps=T0 + HOUR * np.arange(n_bars, dtype=np.int64),
        open=np.vstack([close[:1], close[:-1]]),
        high=close * (1 + rng.uniform(0, 0.02, (n_bars, n))),
        low=close * (1 - rng.uniform(0, 0.02, (n_bars, n))),
        close=close,
        volume=np.full((n_bars, n), 1e6),
        tradable=tradable,
        filled=filled,
        spread=spread,
    )


@st.composite
def limits_st(draw: st.DrawFn, band: float | None = None) -> RiskLimits:
    asset = draw(st.floats(0.02, 0.35))
    halt = draw(st.floats(0.03, 0.20))
    cut = draw(st.floats(0.02, 0.999)) * min(halt, 0.15)
    red = draw(st.floats(0.01, 0.999)) * min(cut, 0.10)
    lim = RiskLimits(
        max_positions=draw(st.integers(1, 10)),
        max_asset_weight=asset,
        max_gross_exposure=draw(st.floats(0.01, 1.0)),
        max_cluster_weight=draw(st.floats(asset, 0.70)),
        base_risk_fraction=draw(st.floats(0.001, 0.02)),
        atr_stop_multiple=draw(st.floats(1.0, 5.0)),
        dd_reduce=red,
        dd_cut=cut,
        dd_halt=halt,
        dd_reduce_size_factor=draw(st.floats(0.0, 0.5)),
        dd_cut_exposure_factor=draw(st.floats(0.0, 0.5)),
        dd_cut_rebalance_hours=draw(st.integers(6, 48)),
        cluster_distance=draw(st.floats(0.3, 1.5)),
        corr_window=48,
        cluster_refresh_hours=draw(st.integers(1, 24)),
        spread_window=24,
        vol_window=24,
        no_trade_band=draw(st.sampled_from([0.005, 0.01, 0.05])) if band is None else max(band, 0.005),
    )
    off = band == 0.0 or (band is None and draw(st.booleans()))
    return gate_off(lim) if off else lim


@st.composite
def case_st(draw: st.DrawFn, band: float | None = None, with_costs: bool = False):
    n = draw(st.integers(2, 12))
    n_bars = draw(st.integers(60, 90))
    market = random_market(draw(st.integers(0, 15)), n, n_bars, draw(st.booleans()), draw(st.booleans()))
    lim = draw(limits_st(band))
    t = draw(st.integers(0, n_bars - 1))
    raw = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    raw[np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))] = 0.0
    total = raw.sum()
    weights = raw / total * draw(st.floats(0, 1)) if total > 0 else raw
    listed = np.isfinite(market.close[t])
    weights = np.where(listed, weights, 0.0)
    equity = draw(st.floats(100, 1e6))
    dd = draw(st.one_of(st.floats(0, 0.3), st.sampled_from([lim.dd_reduce, lim.dd_cut, lim.dd_halt])))
    prices = np.where(listed, market.close[t], 1.0)
    tradable = market.tradable[t].copy()
    if draw(st.booleans()):  # held assets without a bar: their weights are locked
        tradable &= ~np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    snap = PortfolioSnapshot(
        t=t,
        timestamp=int(market.timestamps[t]),
        cash=equity * (1 - weights.sum()),
        units=weights * equity / prices,
        prices=prices,
        equity=equity,
        weights=weights,
        peak_equity=equity / (1 - dd),
        tradable=tradable,
    )
    costs = draw(costs_st(market)) if with_costs else None
    return market, lim, snap, draw(proposal_st(n)), draw(st.booleans()), costs


@st.composite
def costs_st(draw: st.DrawFn, market: MarketData) -> CostInputs | None:
    """None (band only), or the env's cost model with an expected-return signal (NaN gaps)
    and Kraken-like lot rules whose minimums bind on small accounts."""
    if not draw(st.booleans()):
        return None
    seed = draw(st.integers(0, 3))
    rng = np.random.default_rng(seed)
    shape = market.close.shape
    er = rng.normal(0, 0.02, shape)
    er[rng.random(shape) < 0.2] = np.nan
    lots = np.stack([10.0 ** rng.integers(0, 9, shape[1]), rng.choice([0.0, 0.01, 1.0], shape[1]),
                     rng.choice([0.0, 0.5, 5.0], shape[1])])
    return CostInputs.build(rng.uniform(1e-5, 1e-3, shape), rng.uniform(0.001, 0.05, shape),
                            rng.uniform(0, 1e7, shape), 0.004, 0.5, 0.05, er if draw(st.booleans()) else None,
                            "meta_h24_exp_return", lots)


def proposal_st(n: int) -> st.SearchStrategy:
    finite = st.lists(st.floats(-2, 2), min_size=n, max_size=n).map(np.array)
    huge = st.lists(st.sampled_from([0.0, 1e300, -1e300, 1e-300, 5.0]), min_size=n, max_size=n).map(np.array)
    bad_value = st.lists(st.sampled_from([0.1, np.nan, np.inf, -np.inf]), min_size=n, max_size=n).map(np.array)
    wrong_shape = st.integers(0, 14).filter(lambda k: k != n).map(lambda k: np.full(k, 0.1))
    other = st.sampled_from([None, "0.5", [[0.1, 0.2]], {"w": 1}])
    return st.one_of(finite, finite, huge, bad_value, wrong_shape, other)


def sanitised(proposal, current: np.ndarray) -> tuple[np.ndarray, bool]:
    """The proposal as the risk layer may read it, and whether it is a hold."""
    try:
        a = np.array(proposal, dtype=np.float64)
    except (TypeError, ValueError):
        return current, True
    if a.shape != current.shape or not np.all(np.isfinite(a)):
        return current, True
    a = np.clip(a, 0, None)
    return (a / a.sum() if a.sum() > 1 else a), False


def _locked(p: RiskProjector, snap: PortfolioSnapshot) -> np.ndarray:
    """Assets the env cannot trade at t: no bar, or a position too small to sell (dust)."""
    lots = p.costs.lot_table()
    units, prices = np.asarray(snap.units, dtype=float), np.asarray(snap.prices, dtype=float)
    dust = (units > 0) & ((units < lots[1]) | (units * prices < lots[2]))
    return ~np.asarray(snap.tradable, dtype=bool) | dust


def assert_all_limits(d: RiskDecision, p: RiskProjector, lim: RiskLimits, snap: PortfolioSnapshot) -> None:
    """Every limit in force holds for the executed target.

    An asset without a bar at t (``snap.tradable`` False) keeps its current weight: the env
    can neither buy nor sell it, so the target must say so. Caps bind the tradable weights;
    where the locked weights alone exceed a sum cap, no tradable weight may remain under it.
    """
    x, c, t = d.target, d.current, snap.t
    assert x.shape == c.shape and np.all(np.isfinite(x)) and np.all(x >= 0)  # RISK-1 long-only
    assert "invariant_fallback" not in d.rules
    locked = _locked(p, snap)
    free = ~locked
    np.testing.assert_array_equal(x[locked], c[locked])  # what the env will really hold
    xf = np.where(locked, 0.0, x)
    if d.halted:
        assert not np.any(xf)
        return
    m = p.market
    with np.errstate(invalid="ignore", divide="ignore"):
        vol_cap = lim.base_risk_fraction / (lim.atr_stop_multiple * atr(m, lim.atr_window)[t] / m.close[t])
    vol_cap = np.where(np.isfinite(vol_cap) & (vol_cap > 0), vol_cap, 0.0)
    n_locked = np.count_nonzero(x[locked])
    assert np.count_nonzero(xf) <= max(lim.max_positions - n_locked, 0)  # RISK-1
    assert np.all(xf <= lim.max_asset_weight) and np.all(xf <= vol_cap * (1 + 1e-12))  # RISK-2
    assert d.clusters is not None
    over = np.bincount(d.clusters, weights=x) > lim.max_cluster_weight
    assert not np.any(over & (np.bincount(d.clusters, weights=xf) > 0))  # RISK-2 clusters
    cap = lim.max_gross_exposure * (lim.dd_cut_exposure_factor if d.level >= 2 else 1.0)
    assert x.sum() <= cap or not np.any(xf)  # RISK-1 gross
    if d.level >= 1:
        bound = np.maximum(lim.dd_reduce_size_factor * np.minimum(vol_cap, lim.max_asset_weight), c)
        assert np.all(xf[free] <= bound[free] * (1 + 1e-12))
    if d.kill_switch_engaged:
        assert np.all(x <= c)


def _project(market, lim, snap, proposal, exchange_down: bool, costs=None) -> tuple[RiskProjector, RiskDecision]:
    p = RiskProjector(lim, market, costs)
    if exchange_down:
        p.kill_switch.report_exchange_down("test")
    return p, p.project(snap, proposal)


@PROPS
@given(case_st(with_costs=True))
def test_every_target_satisfies_every_limit(case) -> None:
    market, lim, snap, proposal, down, costs = case
    p, d = _project(market, lim, snap, proposal, down, costs)
    assert_all_limits(d, p, lim, snap)
    tradable = ~_locked(p, snap)
    if snap.equity <= snap.peak_equity * (1 - lim.dd_halt):
        assert d.halted and not np.any(d.target[tradable])  # halt means flat where a bar allows
    if down:
        assert d.kill_switch_engaged and np.all(d.target <= d.current)  # engaged: nothing grows
    t = snap.t
    if p.signals.market_wide[t] or p.signals.exchange_down[t]:  # market conditions, held or not
        assert d.kill_switch_engaged and np.all(d.target <= d.current)
        assert {h.reason for h in d.active_triggers} & {"volatility_spike", "spread_anomaly", "data_integrity",
                                                         "exchange_down"}
    blocked = p.signals.blocked(t) & tradable
    assert np.all(d.target[blocked] <= d.current[blocked])  # the asset's own trigger: no entry
    if sanitised(proposal, d.current)[1]:
        assert d.interventions[0].rule == "sanitise"  # RISK-6: recorded, never raised


@PROPS
@given(case_st())
def test_no_asset_ends_above_its_proposal(case) -> None:
    market, lim, snap, proposal, down, _ = case
    _, d = _project(market, lim, snap, proposal, down)
    p, _ = sanitised(proposal, d.current)
    p = p * (1 + 1e-12)  # our reference rescales a sum above 1 in its own rounding
    why = (proposal, p, d.current, d.target, d.rules)
    assert np.all(d.target <= np.maximum(p, d.current)), why
    if lim.no_trade_band == 0:  # with the cost gate off: never above the (held) proposal where a bar allows
        tradable = np.asarray(snap.tradable, dtype=bool)
        assert np.all(d.target[tradable] <= p[tradable]), why


@PROPS
@given(case_st(with_costs=True))
def test_projection_is_idempotent(case) -> None:
    market, lim, snap, proposal, down, costs = case
    p, d = _project(market, lim, snap, proposal, down, costs)
    again = p.project(snap, d.target)
    np.testing.assert_array_equal(again.target, d.target)
    assert again.level == d.level and again.kill_switch_engaged == d.kill_switch_engaged


def _gate_on(lim: RiskLimits) -> RiskLimits:
    return RiskLimits(**{**lim.to_dict(), "no_trade_band": 0.005})


@st.composite
def tightened_st(draw: st.DrawFn, lim: RiskLimits) -> RiskLimits:
    """A random tightening of ``lim`` (every capped field at least as tight; the gate stays off if it was)."""
    if lim.no_trade_band == 0:
        return gate_off(draw(tightened_st(_gate_on(lim))))
    f = lambda: draw(st.floats(0.3, 1.0))  # noqa: E731
    keep = lambda: draw(st.booleans())  # noqa: E731
    asset = lim.max_asset_weight if keep() else lim.max_asset_weight * f()
    halt = lim.dd_halt if keep() else lim.dd_halt * f()
    cut = min(lim.dd_cut, halt * draw(st.floats(0.5, 0.99)))
    red = min(lim.dd_reduce, cut * draw(st.floats(0.5, 0.99)))
    return lim.tighten(
        max_positions=lim.max_positions if keep() else draw(st.integers(1, lim.max_positions)),
        max_asset_weight=asset,
        max_gross_exposure=lim.max_gross_exposure if keep() else lim.max_gross_exposure * f(),
        max_cluster_weight=lim.max_cluster_weight if keep() else max(asset, lim.max_cluster_weight * f()),
        base_risk_fraction=lim.base_risk_fraction if keep() else lim.base_risk_fraction * f(),
        atr_stop_multiple=lim.atr_stop_multiple if keep() else lim.atr_stop_multiple / f(),
        dd_halt=halt,
        dd_cut=cut,
        dd_reduce=red,
        dd_reduce_size_factor=lim.dd_reduce_size_factor * (1 if keep() else f()),
        dd_cut_exposure_factor=lim.dd_cut_exposure_factor * (1 if keep() else f()),
        cluster_distance=min(2.0, lim.cluster_distance / (1 if keep() else f())),
        spread_multiple=lim.spread_multiple * (1 if keep() else f()),
        vol_multiple=lim.vol_multiple * (1 if keep() else f()),
        max_price_jump=lim.max_price_jump * (1 if keep() else f()),
    )


@PROPS
@given(case_st(band=0.0), st.data())
def test_tightening_never_raises_total_exposure(case, data) -> None:
    market, lim, snap, proposal, down, _ = case
    tight = data.draw(tightened_st(lim))
    assert tight.is_tighter_or_equal(lim)
    _, loose_d = _project(market, lim, snap, proposal, down)
    _, tight_d = _project(market, tight, snap, proposal, down)
    assert tight_d.target.sum() <= loose_d.target.sum() + 1e-12
    if tight.dd_cut_rebalance_hours == lim.dd_cut_rebalance_hours:
        assert tight_d.level >= loose_d.level


def test_spec_presets_pass_the_same_checks() -> None:
    market = random_market(1, 6, 80, True)
    rng = np.random.default_rng(0)
    for lim in (replace(SPEC_A, corr_window=48), replace(SPEC_A, corr_window=48, max_gross_exposure=0.2)):
        for t in range(0, 80, 7):
            w = rng.dirichlet(np.ones(6)) * 0.9
            snap = PortfolioSnapshot(
                t=t,
                timestamp=int(market.timestamps[t]),
                cash=100.0,
                units=w,
                prices=np.ones(6),
                equity=1000.0,
                weights=w,
                peak_equity=1000.0,
                tradable=np.ones(6, dtype=bool),
            )
            p, d = _project(market, lim, snap, rng.uniform(-1, 1, 6), False)
            assert_all_limits(d, p, lim, snap)


def test_scaling_to_a_subnormal_cap_terminates() -> None:
    """Regression (found by random search): a cap of 5e-324 once looped forever when the
    rounding guard multiplied subnormal weights by (1 - 1e-15), which leaves them unchanged."""
    from risk.projection import _cap_groups, _cap_total

    w = np.array([0.3, 0.4, 0.2])
    labels = np.array([0, 0, 1])
    for cap in (5e-324, 1e-310, 0.0, 1e-300, 0.5):
        assert _cap_total(w, cap).sum() <= cap
        assert np.all(np.bincount(labels, weights=_cap_groups(w, labels, cap)) <= cap)


# ------------------------------------------------- kernel vs numpy reference
PERTURBATIONS = ("none", "engaged", "halted", "weights_nan", "equity_inf", "timestamp", "units_nan", "all_held")


def _perturb(snap: PortfolioSnapshot, how: str) -> PortfolioSnapshot:
    fields = dict(snap.__dict__)
    if how == "weights_nan":
        fields["weights"] = np.where(np.arange(snap.weights.size) == 0, np.nan, snap.weights)
    elif how == "equity_inf":
        fields["equity"] = np.inf
    elif how == "timestamp":
        fields["timestamp"] = snap.timestamp + HOUR
    elif how == "units_nan":
        fields["units"] = np.where(np.arange(snap.units.size) == 0, np.nan, snap.units)
    elif how == "all_held":  # units in every asset, listed or not (NaN-close and stale triggers)
        fields["units"] = snap.units + 1e-6
    return PortfolioSnapshot(**fields)


def _account(market: MarketData, lim: RiskLimits, how: str, down: bool, costs=None) -> RiskProjector:
    p = RiskProjector(lim, market, costs)
    if how == "engaged":  # engaged earlier, no trigger active now
        p.kill_switch.report_exchange_down("earlier", timestamp=1)
        p.kill_switch.report_exchange_up()
    if how == "halted":
        p.ladder.halted, p.ladder.halted_at = True, 1
    if down:
        p.kill_switch.report_exchange_down("test")
    return p


def _is_vector(proposal, n: int) -> bool:
    try:
        return np.array(proposal, dtype=np.float64).shape == (n,)
    except (TypeError, ValueError):
        return False


def _same_decision(fast: RiskDecision, ref: RiskDecision) -> None:
    # bit for bit: the kernel keeps the reference's floating-point operations and their order
    assert fast.target.tobytes() == ref.target.tobytes(), (fast.target, ref.target)
    assert fast.current.tobytes() == ref.current.tobytes()
    np.testing.assert_array_equal(fast.proposed, ref.proposed)
    assert [iv.to_dict() for iv in fast.interventions] == [iv.to_dict() for iv in ref.interventions]
    assert (fast.t, fast.timestamp, fast.level, fast.drawdown, fast.halted) == (
        ref.t, ref.timestamp, ref.level, ref.drawdown, ref.halted,
    )  # fmt: skip
    assert (fast.kill_switch_engaged, fast.kill_switch_reasons, fast.engaged_now) == (
        ref.kill_switch_engaged, ref.kill_switch_reasons, ref.engaged_now,
    )  # fmt: skip
    assert repr([h.to_dict() for h in fast.active_triggers]) == repr([h.to_dict() for h in ref.active_triggers])
    np.testing.assert_array_equal(fast.clusters, ref.clusters)
    assert repr(fast.to_info()) == repr(ref.to_info())


@pytest.mark.equivalence
@PROPS
@given(case_st(with_costs=True), st.sampled_from(PERTURBATIONS))
def test_kernel_gives_the_numpy_reference_decision_bit_for_bit(case, how: str) -> None:
    """`project` (numba kernel) == `project_reference` (numpy), over two consecutive decisions:
    same executed target (bitwise), same binding rules with the same assets and amounts,
    same ladder/kill-switch outputs and the same account state afterwards."""
    market, lim, snap, proposal, down, costs = case
    snap = _perturb(snap, how)
    fast, ref = _account(market, lim, how, down, costs), _account(market, lim, how, down, costs)
    first = _decide_both(fast, ref, snap, proposal)
    # second decision: the account state carried over, a new proposal
    _decide_both(fast, ref, snap, np.roll(first.target, 1) * 3.0 - 0.05)


def _decide_both(fast: RiskProjector, ref: RiskProjector, snap: PortfolioSnapshot, prop) -> RiskDecision:
    fast_d = fast._project_fast(snap, prop)
    # the kernel decides every (N,)-shaped numeric proposal; the rest stays on the reference path
    assert (fast_d is not None) == _is_vector(prop, fast.n_assets), prop
    if fast_d is None:
        fast_d = fast.project_reference(snap, prop)
    ref_d = ref.project_reference(snap, prop)
    _same_decision(fast_d, ref_d)
    assert repr(fast.state_dict()) == repr(ref.state_dict())
    return ref_d


@pytest.mark.equivalence
def test_pairwise_sum_is_numpys_sum() -> None:
    from risk.kernels import pwsum

    rng = np.random.default_rng(7)
    for n in [*range(0, 40), 127, 128, 129, 255, 256, 300, 1000, 1031]:
        for _ in range(20):
            a = rng.normal(size=n) * 10.0 ** rng.integers(-8, 8, size=n)
            assert pwsum(a) == a.sum(), n


@pytest.mark.equivalence
@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(-3, 3), st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e300])), min_size=1, max_size=14
    )
)
def test_clip_action_matches_numpy(values: list[float]) -> None:
    from risk.kernels import clip_action

    a = np.array(values)
    got = a.copy()
    amount = clip_action(got, np.empty(a.size))
    if not np.all(np.isfinite(a)):
        assert amount == -1.0
        return
    clipped = np.clip(a, -1.0, 1.0)
    assert got.tobytes() == clipped.tobytes()
    assert amount == (float(np.abs(a - clipped).sum()) if np.any(np.abs(a) > 1.0) else 0.0)


@pytest.mark.equivalence
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=14),
    st.data(),
    st.one_of(st.floats(0, 1), st.sampled_from([0.0, 5e-324, 1e-310, 1e-300, 0.35, 0.7])),
)
def test_kernel_caps_match_the_numpy_caps_bit_for_bit(values: list[float], data, cap: float) -> None:
    """The two rescaling rules on their own (they bind rarely in the decision-level test)."""
    from risk.kernels import _cap_groups as k_cap_groups
    from risk.kernels import _cap_total as k_cap_total
    from risk.projection import _cap_groups, _cap_total

    w = np.array(values)
    n = w.size
    labels = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n)), dtype=np.int64)
    locked = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n))) & data.draw(st.booleans())
    got = w.copy()
    scratch = [np.empty(n + 1) for _ in range(3)]
    k_cap_groups(got, labels, cap, locked, *scratch, np.empty(n + 1, dtype=bool))
    assert got.tobytes() == _cap_groups(w, labels, cap, locked).tobytes()
    got = w.copy()
    k_cap_total(got, cap, locked, np.empty(n + 1))
    assert got.tobytes() == _cap_total(w, cap, locked).tobytes()
