"""`envs.execution.execute_hour`: one account's hour outside the env is the env's own step.

Paper trading calls `execute_hour` with an account, the target weights and the market; the
env steps with actions. Stepping an env N times and threading its starting account through N
calls of `execute_hour` (with the targets the env derived from its actions) must give the same
cash, units, resting orders, fees, fills and shortfalls, bit for bit, in every order mode.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.data.synthetic import generate_synthetic_market
from envs.execution import AccountState, Executor, execute_hour
from envs.execution import kernels as K
from envs.kraken_spot import KrakenSpotEnv

STEPS = 300


@pytest.fixture(scope="module")
def market():
    return generate_synthetic_market(assets=("BTC", "ETH", "SOL", "XRP"), n_bars=STEPS + 80, seed=11)


def _assert_same_account(state: AccountState, led, where: str) -> None:
    exp = AccountState.from_ledger(led)
    for name in ("cash", "equity", "peak_equity", "volume_30d", "hours", "last_trade"):
        assert getattr(state, name) == getattr(exp, name), f"{where}: {name}"
    for name in ("units", "pending", "pending_price", "age", "traded_window"):
        assert np.array_equal(getattr(state, name), getattr(exp, name)), f"{where}: {name}"


@pytest.mark.equivalence
@pytest.mark.parametrize(("order_type", "action_mode", "fee_model"), [
    ("limit", "weights", "kraken_tiers"),
    ("market", "weights", "flat"),
    ("limit", "execution", "kraken_legacy_base"),
])
def test_execute_hour_threaded_equals_the_env_bit_for_bit(market, order_type, action_mode, fee_model):
    cfg = dict(order_type=order_type, action_mode=action_mode, fee_model=fee_model, start_mode="fixed",
               episode_hours=STEPS, fee_volume_30d=60_000.0, participation_cap=0.002, limit_offset=2.0,
               limit_ttl_bars=2, window=8)
    env = KrakenSpotEnv(market, **cfg)
    executor = Executor(market, env.config)
    env.reset(seed=3)
    t = int(env.core.ledger.t[0])
    state = executor.initial_state(t)
    _assert_same_account(state, env.core.ledger, "reset")
    rng = np.random.default_rng(5)
    n = market.n_assets
    seen = {"fills": 0, "shortfalls": 0, "holds": 0, "maker": 0, "taker": 0}
    for step in range(STEPS - 1):
        action = rng.uniform(-1.0, 1.0, env.action_space.shape)
        if rng.random() < 0.15:
            action[: n + 1] = 0.0  # hold: resting orders keep working
        _, _, terminated, truncated, info = env.step(action)
        led = env.core.ledger
        hold = bool(led.oi[0, K.Q_HOLD])
        urgency = action[n + 1 :] if action_mode == "execution" else None
        res = execute_hour(state, None if hold else led.target[0].copy(), executor, t, urgency=urgency)
        _assert_same_account(res.state, led, f"step {step}")
        assert res.t == t + 1 == int(led.t[0])
        assert (res.fees, res.slippage, res.equity) == (info["fees"], info["slippage"], info["equity"])
        assert res.fills == [(market.assets.index(f["asset"]), f["side"], f["qty"], f["price"], f["fee"],
                               f["liquidity"]) for f in info["fills"]]
        assert res.shortfalls == [(market.assets.index(r["asset"]), r["reason"], r["qty_unfilled"])
                                  for r in info["rejected"]]
        seen["fills"] += len(res.fills)
        seen["shortfalls"] += len(res.shortfalls)
        seen["holds"] += hold
        seen["maker"] += sum(f[5] == "maker" for f in res.fills)
        seen["taker"] += sum(f[5] == "taker" for f in res.fills)
        state, t = res.state, res.t
        assert not (terminated or truncated)
    assert seen["fills"] > 50 and seen["shortfalls"] > 5 and seen["holds"] > 10, seen
    assert seen["taker"] > 0 and (seen["maker"] > 0 or order_type == "market"), seen


def test_execute_hour_on_market_data_prepares_the_same_executor(market):
    cfg = {"fee_model": "kraken_tiers", "window": 8}
    executor = Executor(market, cfg)
    state = executor.initial_state(20)
    target = np.array([0.3, 0.2, 0.1, 0.0])
    a = execute_hour(state, target, executor, 20)
    b = execute_hour(state, target, market, 20, cfg)
    assert a.fills and a.fills == b.fills and a.state.cash == b.state.cash
    assert np.array_equal(a.state.units, b.state.units)
    # a limit buy at the decision close fills as maker at 0.25% (Kraken's base tier)
    for _asset, side, qty, price, fee, liq in a.fills:
        assert (side, liq) == ("buy", "maker") and fee == qty * price * 0.0025
    # the input state is not changed; the same call again gives the same result
    assert state.cash == 10_000.0 and not state.units.any()
    assert execute_hour(state, target, executor, 20).fills == a.fills


def test_execute_hour_rejects_bad_input_naming_it(market):
    executor = Executor(market, {"window": 8})
    state = executor.initial_state(20)
    with pytest.raises(ValueError, match="target_weights"):
        execute_hour(state, np.array([0.5, 0.6, 0.0, 0.0]), executor, 20)  # sums to 1.1
    with pytest.raises(ValueError, match="target_weights"):
        execute_hour(state, np.array([0.5, 0.5]), executor, 20)
    with pytest.raises(ValueError, match="no bar t\\+1"):
        execute_hour(state, None, executor, market.n_bars - 1)
    with pytest.raises(ValueError, match="urgency"):
        execute_hour(state, np.zeros(4), executor, 20, urgency=np.ones(4))
    with pytest.raises(ValueError, match=r"AccountState\.units"):
        execute_hour(AccountState.initial(executor.config, 3, 20), None, executor, 20)
    with pytest.raises(ValueError, match="config differs"):
        execute_hour(state, None, executor, 20, {"window": 9})


def test_execute_hour_rejects_an_inconsistent_account_naming_the_field(market):
    from dataclasses import replace

    executor = Executor(market, {"window": 8})
    state = executor.initial_state(20)
    n = market.n_assets
    bad = {
        "units": replace(state, units=np.r_[np.nan, np.zeros(n - 1)]),
        "pending_price": replace(state, pending=np.r_[1.0, np.zeros(n - 1)], pending_price=np.zeros(n)),
        "age": replace(state, age=np.r_[-1, np.zeros(n - 1, np.int64)]),
        "volume_30d": replace(state, volume_30d=1e9),
    }
    for field, account in bad.items():
        with pytest.raises(ValueError, match=rf"AccountState\.{field}"):
            execute_hour(account, None, executor, 20)
