"""Property tests (hypothesis, derandomized) over random markets, configs and action sequences:
ACC-1 (reconciliation), ACC-2 (fee = rate × notional), ACC-3 (no negative balances),
ACC-4 (conservation), ACC-7 (slippage direction, cap, monotone), ACC-9 (Decimal reference),
and "doing nothing costs nothing"."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.config import EnvConfig
from envs.execution.fees import make_fee_model
from envs.execution.reference import ReferenceLedger
from envs.execution.slippage import slippage_rate
from envs.kraken_spot import KrakenSpotEnv
from tests.conftest import env_scenario, random_case

SETTINGS = settings(derandomize=True, max_examples=200, deadline=None)  # ACC-1: 200 sequences per PR run

scenario = env_scenario(4)


def build(s: dict, n_bars: int = 40) -> tuple[KrakenSpotEnv, np.ndarray]:
    """A random market + config + action sequence from one hypothesis draw."""
    market, fields, rng = random_case(s, n_bars)
    n = market.n_assets
    cfg = EnvConfig(**fields)
    actions = rng.uniform(-1, 1, size=(n_bars, n + 1))
    actions[rng.random(n_bars) < 0.2] = 0.0  # some "keep current weights" steps
    return KrakenSpotEnv(market, cfg), actions


@SETTINGS
@given(scenario)
def test_money_reconciles_and_nothing_goes_negative_at_every_step(s):
    env, actions = build(s)
    env.reset(seed=s["seed"] % 1000)
    mark = env.core.arrays.mark
    for a in actions:
        before = env.snapshot()
        _, reward, terminated, truncated, info = env.step(a.astype(np.float32))
        after = env.snapshot()
        # ACC-3: no negative cash or units
        assert after.cash >= 0.0 and np.all(after.units >= 0.0)
        # ACC-1: equity recomputed from scratch equals the maintained value
        recomputed = after.cash + float(np.dot(after.units, mark[after.t]))
        assert abs(recomputed - info["equity"]) <= 1e-9 * max(abs(info["equity"]), 1.0)
        # ACC-2: every fill pays rate x notional, fees >= 0
        assert info["fees"] >= 0.0 and info["slippage"] >= 0.0
        for f in info["fills"]:
            assert f["qty"] > 0.0 and f["price"] > 0.0 and f["fee"] >= 0.0
            assert f["fee"] <= 0.0041 * f["qty"] * f["price"] * (1 + 1e-12)
        assert abs(sum(f["fee"] for f in info["fills"]) - info["fees"]) <= 1e-9 * max(info["fees"], 1.0)
        # ACC-4: cash moves only by fills; units move only by fills
        flow = sum(
            (f["qty"] * f["price"] - f["fee"]) if f["side"] == "sell" else -(f["qty"] * f["price"] + f["fee"])
            for f in info["fills"]
        )
        assert abs(before.cash + flow - after.cash) <= 1e-9 * max(before.equity, 1.0)
        moved = np.zeros(env.n_assets)
        for f in info["fills"]:
            moved[env.market.assets.index(f["asset"])] += f["qty"] if f["side"] == "buy" else -f["qty"]
        scale = 1e-12 * max(1.0, float(np.max(before.units + after.units)))
        np.testing.assert_allclose(after.units - before.units, moved, rtol=1e-9, atol=scale)
        assert np.isfinite(reward)
        if terminated or truncated:
            break


@SETTINGS
@given(scenario)
def test_doing_nothing_pays_nothing(s):
    env, actions = build(s)
    env.reset(seed=1)
    for _ in range(len(actions)):
        _, reward, terminated, truncated, info = env.step(np.zeros(env.n_assets + 1, dtype=np.float32))
        assert info["fills"] == [] and info["fees"] == 0.0 and info["slippage"] == 0.0
        assert info["equity"] == env.config.initial_cash and reward == 0.0
        if terminated or truncated:
            break


@pytest.mark.equivalence
@settings(derandomize=True, max_examples=40, deadline=None)
@given(scenario)
def test_float_ledger_matches_the_exact_decimal_reference(s):
    """ACC-9: same action sequence -> equity within 1e-9 relative, identical fill and position counts,
    the same shortfall records (asset, reason) with unfilled quantities within 1e-9 (+ one lot: a
    cash-scaled buy is floored to the lot grid from a float or an exact scale factor)."""
    env, actions = build(s)
    env.reset(seed=2)
    core = env.core
    ref = ReferenceLedger(core.arrays, core.rules, make_fee_model(env.config.fee_model, 0.004, 0.004),
                          env.config, int(core.ledger.t[0]))
    for a in actions:
        w, hold = core.action_to_weights(a[None, :])
        ref_fills = ref.step(None if hold[0] else w[0])
        _, _, terminated, truncated, info = env.step(a)
        assert len(info["fills"]) == len(ref_fills)
        assert abs(Decimal(info["equity"]) - ref.equity) <= Decimal("1e-9") * ref.equity
        units = env.snapshot().units
        assert int(np.count_nonzero(units)) == sum(1 for x in ref.units if x != 0)
        for mine, exact in zip(units, ref.units, strict=True):
            assert abs(Decimal(mine) - exact) <= Decimal("1e-9") * max(exact, Decimal("1e-6"))
        # shortfall records: same assets and reasons, unfilled quantities within 1e-9
        assert [(r["asset"], r["reason"]) for r in info["rejected"]] == [
            (env.market.assets[i], reason) for i, reason, _ in ref.shortfalls
        ]
        for r, (i, _, q) in zip(info["rejected"], ref.shortfalls, strict=True):
            lot = Decimal(1) / Decimal(10) ** int(core.rules.lot_decimals[i])  # float vs exact floor of a cash scaling
            assert abs(Decimal(r["qty_unfilled"]) - q) <= Decimal("1e-9") * max(q, Decimal("1e-6")) + lot, r
        if terminated or truncated:
            break


@settings(derandomize=True, max_examples=1000, deadline=None)
@given(
    st.floats(0.0, 0.01), st.floats(0.0, 0.1), st.floats(1.0, 1e7), st.floats(1.0, 1e7), st.floats(0.0, 2.0),
    st.floats(0.001, 0.2), st.floats(1.0, 1e5),
)
def test_slippage_is_against_the_trader_capped_and_monotone(half, sigma, notional, dollar_volume, k, cap, ref):
    """ACC-7: buy price >= reference >= sell price, rate <= cap, larger orders never pay less."""
    rate = slippage_rate(np.array([half]), np.array([sigma]), np.array([notional, 2 * notional]),
                         np.array([dollar_volume]), k, cap)
    assert np.all(rate >= 0.0) and np.all(rate <= cap)
    assert rate[1] >= rate[0]
    assert ref * (1 + rate[0]) >= ref >= ref * (1 - rate[0])
