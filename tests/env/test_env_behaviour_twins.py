"""Hand-computed behaviours that single-point mutants of the execution step survived (issue 8).

Each scenario is worked out by hand from the bars written in the test and checked in the env
(numba kernel) and, where the rule lives in a twin too, in the numpy reference and the exact
Decimal reference, so a bug written into every twin is caught here and not only by the
twin-equivalence tests:

- the equity peak rises after a gain (drawdown, the halt and the drawdown reward are measured
  from the peak, not from the initial cash);
- flat maker and taker rates are not interchangeable (maker 0.0016, taker 0.0026);
- a 30-day volume exactly on a tier threshold gets that tier;
- the halt fires at exactly ``drawdown == halt_drawdown`` and not just below;
- a sell limit does not fill when the bar's high only touches it;
- ``truncated`` is never set together with ``terminated``.
- (after run) a market order on a bar without volume pays the slippage cap; an order of exactly
  ``ordermin`` units is sent; a new episode starts with its own equity peak; a held asset without
  a bar keeps its weight out of the new targets.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.kraken_spot import KrakenSpotEnv
from tests.conftest import make_tiny_market
from tests.env.twins import decimal_twin, numpy_fills, numpy_twin

EXACT = dict(window=1, start_mode="fixed", episode_hours=10, spread_floor=0.0, impact_k=0.0,
             participation_cap=None, order_type="market", maker_fee=0.0, taker_fee=0.0)


def bars(prices: list[float]) -> dict[str, np.ndarray]:
    c = np.asarray(prices, dtype=np.float64)[:, None]
    return dict(close=c, open=c.copy(), high=c.copy(), low=c.copy(), spread=np.zeros_like(c))


def make_env(b: dict[str, np.ndarray], **cfg) -> KrakenSpotEnv:
    market = make_tiny_market(b.pop("close"), assets=("A0",), **b)
    env = KrakenSpotEnv(market, EnvConfig(**{**EXACT, **cfg}))
    env.reset(seed=0)
    return env


def w(env: KrakenSpotEnv, x: float) -> np.ndarray:
    return env.weights_to_action(np.array([x]))


KEEP = np.zeros(2)


# ---------------------------------------------------------------- peak after a gain
@pytest.mark.parametrize("reward", ["log_growth", "drawdown_penalised"])
def test_drawdown_halt_and_penalty_are_measured_from_the_peak_after_a_gain(reward):
    """Buy 50 units at 100 (cash 5,000); 100 -> 200 (equity 15,000, the new peak) -> 150 (12,500).

    Drawdown 1 − 12,500/15,000 = 1/6 ≥ halt 0.1 → terminated. Measured from the initial cash
    it would be 1 − 12,500/10,000 < 0 (no halt, no penalty).
    """
    env = make_env(bars([100.0, 100.0, 200.0, 150.0, 150.0]), halt_drawdown=0.1, reward=reward)
    twin = numpy_twin(env)
    steps = [w(env, 0.5), KEEP, KEEP]
    results = []
    for a in steps:
        results.append(env.step(a))
        twin_out = twin.step(a[None, :])
    _, r, terminated, truncated, info = results[-1]
    dd = 1.0 - 12_500.0 / 15_000.0
    assert info["equity"] == 12_500.0 and env.snapshot().peak_equity == 15_000.0
    assert info["drawdown"] == pytest.approx(dd, rel=1e-15)
    assert terminated and not truncated and info["termination_reason"] == "halt_drawdown"
    growth = math.log(12_500.0 / 15_000.0)
    expected = growth - dd if reward == "drawdown_penalised" else growth  # the step's drawdown rose 0 -> 1/6
    assert r == pytest.approx(expected, rel=1e-12)
    # the numpy twin: same peak, same drawdown, same reward and halt
    _, _, twin_reward, twin_term, twin_trunc, _ = twin_out
    assert twin.led.peak[0] == 15_000.0 and twin.led.equity[0] == 12_500.0
    assert twin_reward[0] == pytest.approx(expected, rel=1e-12)
    assert bool(twin_term[0]) and not bool(twin_trunc[0])


# ---------------------------------------------------------------- maker vs taker flat rates
def test_flat_maker_and_taker_rates_are_charged_on_the_right_fills():
    """Maker 0.16 %, taker 0.26 %: a traded-through limit pays maker, a fallback and a market order taker."""
    rates = dict(maker_fee=0.0016, taker_fee=0.0026)
    dip = bars([100.0] * 4)
    dip["low"][1] = 99.0  # bar 1 trades through the buy limit at 100
    cases = [
        (make_env(dip, order_type="limit", **rates), "maker", 0.0016 * 5_000.0),
        (make_env(bars([100.0] * 4), order_type="limit", **rates), "taker", 0.0026 * 5_000.0),  # fallback
        (make_env(bars([100.0] * 4), order_type="market", **rates), "taker", 0.0026 * 5_000.0),
    ]
    for env, liquidity, fee in cases:
        np_twin, dec_twin = numpy_twin(env), decimal_twin(env)
        _, _, _, _, info = env.step(w(env, 0.5))
        _, out, *_ = np_twin.step(w(env, 0.5)[None, :])
        (exact,) = dec_twin.step(np.array([0.5]))
        for f in (info["fills"][0], numpy_fills(out)[0]):
            assert (f["liquidity"], f["qty"], f["price"]) == (liquidity, 50.0, 100.0)
            assert f["fee"] == pytest.approx(fee, rel=1e-15)
        assert exact.liquidity == liquidity and float(exact.fee) == pytest.approx(fee, rel=1e-15)


# ---------------------------------------------------------------- tier threshold
@pytest.mark.parametrize(("volume", "maker"), [(10_000.0, 0.0020), (9_999.99, 0.0025), (50_000.0, 0.0014)])
def test_30_day_volume_exactly_on_a_tier_threshold_gets_that_tier(volume, maker):
    """Kraken tiers start at 10,000 and 50,000 USD: a volume equal to a threshold is in that tier."""
    dip = bars([100.0] * 4)
    dip["low"][1] = 99.0
    env = make_env(dip, order_type="limit", fee_model="kraken_tiers", fee_volume_30d=volume)
    np_twin, dec_twin = numpy_twin(env), decimal_twin(env)
    _, _, _, _, info = env.step(w(env, 0.5))
    _, out, *_ = np_twin.step(w(env, 0.5)[None, :])
    (exact,) = dec_twin.step(np.array([0.5]))
    for f in (info["fills"][0], numpy_fills(out)[0]):
        assert f["liquidity"] == "maker" and f["fee"] == pytest.approx(maker * 5_000.0, rel=1e-15)
    assert float(exact.fee) == pytest.approx(maker * 5_000.0, rel=1e-15)


# ---------------------------------------------------------------- halt edge
@pytest.mark.parametrize(("halt", "stops"), [(0.25, True), (0.25 + 1e-12, False)])
def test_halt_fires_at_exactly_the_halt_drawdown_and_not_just_below(halt, stops):
    """50 units at 100 + 5,000 cash; the price halves: equity 7,500, drawdown 0.25 exactly."""
    env = make_env(bars([100.0, 100.0, 50.0, 50.0, 50.0]), halt_drawdown=halt)
    env.step(w(env, 0.5))
    _, _, terminated, truncated, info = env.step(KEEP)
    assert info["equity"] == 7_500.0 and info["drawdown"] == 0.25
    assert terminated is stops and not truncated
    assert ("termination_reason" in info) is stops


# ---------------------------------------------------------------- sell limit touching
@pytest.mark.parametrize(("high", "liquidity"), [(100.0, "taker"), (100.5, "maker")])
def test_sell_limit_fills_only_when_the_high_trades_through_it(high, liquidity):
    """Hold 50 units; sell all at a limit of 100 (the decision close). Bar 3's high decides:
    touching (high == 100) is not a fill, the order falls back to a market sell at the close
    (taker); high 100.5 trades through and fills at the limit (maker)."""
    b = bars([100.0] * 6)
    b["high"][3] = high
    env = make_env(b, order_type="limit", limit_fallback="market", maker_fee=0.0016, taker_fee=0.0026)
    np_twin, dec_twin = numpy_twin(env), decimal_twin(env)
    for a, target in ((w(env, 0.5), np.array([0.5])), (KEEP, None)):  # buy (fallback at the close of bar 1), hold
        env.step(a)
        np_twin.step(a[None, :])
        dec_twin.step(target)
    sell = np.array([0.0, 1.0])
    _, _, _, _, info = env.step(sell)
    _, out, *_ = np_twin.step(sell[None, :])
    (exact,) = dec_twin.step(np.array([0.0]))
    rate = 0.0016 if liquidity == "maker" else 0.0026
    for f in (info["fills"][0], numpy_fills(out)[0]):
        assert (f["side"], f["liquidity"], f["price"], f["qty"]) == ("sell", liquidity, 100.0, 50.0)
        assert f["fee"] == pytest.approx(rate * 5_000.0, rel=1e-15)
    assert (exact.side, exact.liquidity) == ("sell", liquidity)


def test_sell_limit_touched_with_cancel_fallback_does_not_fill_at_all():
    b2 = bars([100.0] * 6)
    b2["low"][1] = 99.0  # the buy fills as maker in bar 1
    b2["high"][3] = 100.0
    env = make_env(b2, order_type="limit", limit_fallback="cancel")
    env.step(w(env, 0.5))
    env.step(KEEP)
    _, _, _, _, info = env.step(np.array([0.0, 1.0]))
    assert info["fills"] == [] and env.snapshot().units[0] == 50.0


# ---------------------------------------------------------------- flags
def test_truncated_is_never_set_together_with_terminated():
    """The halt lands on the last step of a 2-step episode: terminated only."""
    env = make_env(bars([100.0, 100.0, 50.0, 50.0]), halt_drawdown=0.2, episode_hours=2)
    _, _, terminated, truncated, _ = env.step(w(env, 0.5))
    assert not terminated and not truncated
    _, _, terminated, truncated, info = env.step(KEEP)
    assert terminated and not truncated and info["termination_reason"] == "halt_drawdown"
    env2 = make_env(bars([100.0, 100.0, 100.0, 100.0]), halt_drawdown=0.2, episode_hours=2)
    env2.step(w(env2, 0.5))
    _, _, terminated, truncated, info = env2.step(KEEP)  # the same episode end without the crash
    assert truncated and not terminated and info["termination_reason"] == "episode_length"


# ---------------------------------------------------------------- impact on a bar without volume
def test_market_order_on_a_bar_without_volume_pays_the_slippage_cap():
    """No participation cap, no spread, impact_k 0: a market buy filled on a bar that traded
    nothing has no volume to measure impact against and pays the cap (1 %): 100 -> 101."""
    b = bars([100.0] * 4)
    b["volume"] = np.zeros((4, 1))
    env = make_env(b, max_slippage=0.01)
    np_twin, dec_twin = numpy_twin(env), decimal_twin(env)
    _, _, _, _, info = env.step(w(env, 0.5))
    _, out, *_ = np_twin.step(w(env, 0.5)[None, :])
    (exact,) = dec_twin.step(np.array([0.5]))
    for f in (info["fills"][0], numpy_fills(out)[0]):
        assert f["price"] == pytest.approx(101.0, rel=1e-15)
    assert float(exact.price) == pytest.approx(101.0, rel=1e-15)


# ---------------------------------------------------------------- ordermin is inclusive
def test_an_order_of_exactly_ordermin_units_is_sent_and_one_lot_less_is_refused():
    """ordermin 50 units, 0 lot decimals: 50 % of 10,000 at 100 is exactly 50 units, sent and
    filled; 49 % is 49 units, refused as ``ordermin``. In every twin."""
    from tests.conftest import pair_info

    for weight, qty in ((0.5, 50.0), (0.49, 0.0)):
        b = bars([100.0] * 4)
        market = make_tiny_market(b.pop("close"), assets=("A0",), pairs={"A0": pair_info("A0", 0, 50.0, 0.5)}, **b)
        env = KrakenSpotEnv(market, EnvConfig(**EXACT))
        env.reset(seed=0)
        np_twin, dec_twin = numpy_twin(env), decimal_twin(env)
        _, _, _, _, info = env.step(w(env, weight))
        _, out, *_ = np_twin.step(w(env, weight)[None, :])
        exact = dec_twin.step(np.array([weight]))
        assert [f["qty"] for f in info["fills"]] == [f["qty"] for f in numpy_fills(out)] == ([qty] if qty else [])
        assert [float(f.qty) for f in exact] == ([qty] if qty else [])
        if not qty:
            assert [r["reason"] for r in info["rejected"]] == ["ordermin"]


# ---------------------------------------------------------------- a new episode's peak
def test_a_new_episode_starts_with_its_own_equity_peak():
    """Buy 50 units at 100, the price doubles: peak 15,000. After reset the new account's peak
    is its initial cash again (no drawdown carried over from the last episode)."""
    env = make_env(bars([100.0, 100.0, 200.0, 200.0, 200.0, 200.0]))
    env.step(w(env, 0.5))
    env.step(KEEP)
    assert env.snapshot().peak_equity == 15_000.0
    _, info = env.reset(seed=0)
    snap = env.snapshot()
    assert snap.equity == snap.peak_equity == 10_000.0 and info["drawdown"] == 0.0


# ---------------------------------------------------------------- a held asset without a bar
def test_a_held_asset_without_a_bar_keeps_its_weight_out_of_the_new_targets():
    """Half the account in A1, which has no bar at the decision: an action putting everything
    into A0 targets A0 at the other half (A1's weight stays as held), in the env and the numpy twin."""
    from envs.execution.ledger_numpy import numpy_action_to_weights

    c = np.full((6, 2), 100.0)
    tradable = np.ones(c.shape, dtype=bool)
    tradable[2, 1] = False
    market = make_tiny_market(c, assets=("A0", "A1"), open=c.copy(), high=c.copy(), low=c.copy(),
                              spread=np.zeros_like(c), tradable=tradable)
    env = KrakenSpotEnv(market, EnvConfig(**EXACT))
    env.reset(seed=0)
    env.step(env.weights_to_action(np.array([0.0, 0.5])))
    env.step(np.zeros(3))
    snap = env.snapshot()
    assert not snap.tradable[1] and snap.weights.tolist() == [0.0, 0.5]
    action = np.array([1.0, 0.0, 0.0])
    assert env.action_to_weights(action).tolist() == [0.5, 0.5]
    w_np, hold = numpy_action_to_weights(action[None, :], snap.weights[None, :], snap.tradable[None, :])
    assert w_np[0].tolist() == [0.5, 0.5] and not hold[0]
