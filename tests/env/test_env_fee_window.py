"""Issue 8, item 4: the 30-day fee volume credited before the episode ages out of the window.

`fee_volume_30d` is taken as traded evenly over the 720 hours before the episode starts, so
1/720 of it leaves the trailing 30-day window each hour and none is left after 720 steps.
Every check runs in all three twins (numba kernel via the env, numpy reference, exact
Decimal reference). Regression: before the fix the volume never expired (a fill after 800
idle hours still paid the tier-1 maker rate 0.0020 instead of the base 0.0025).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.kraken_spot import KrakenSpotEnv
from tests.conftest import make_tiny_market
from tests.env.twins import decimal_twin, numpy_fills, numpy_twin

N_BARS = 830


def flat_market(dip_at: int | None = None):
    """One asset at 100 (O=H=L=C, zero spread, deep volume); bar ``dip_at`` trades down to 99."""
    c = np.full((N_BARS, 1), 100.0)
    low = c.copy()
    if dip_at is not None:
        low[dip_at] = 99.0
    return make_tiny_market(c, assets=("A0",), open=c.copy(), high=c.copy(), low=low, spread=np.zeros_like(c))


def env_for(market, **cfg) -> KrakenSpotEnv:
    base = dict(window=1, start_mode="fixed", episode_hours=N_BARS - 2, spread_floor=0.0, impact_k=0.0,
                participation_cap=None, fee_model="kraken_tiers", fee_volume_30d=20_000.0)
    env = KrakenSpotEnv(market, EnvConfig(**{**base, **cfg}))
    env.reset(seed=0)
    return env


def fill_after_idle(idle: int, order_type: str, **cfg) -> list[dict]:
    """Fee rate (fee / notional) of the first fill after ``idle`` do-nothing steps, in each twin."""
    market = flat_market(dip_at=idle + 1)
    env = env_for(market, order_type=order_type, **cfg)
    np_twin, dec_twin = numpy_twin(env), decimal_twin(env)
    keep = np.zeros(2)
    buy = env.weights_to_action(np.array([0.5]))
    for _ in range(idle):
        env.step(keep)
        np_twin.step(keep[None, :])
        dec_twin.step(None)
    _, _, _, _, info = env.step(buy)
    _, out, *_ = np_twin.step(buy[None, :])
    exact = dec_twin.step(np.array([0.5]))
    rates = []
    for fills in (info["fills"], numpy_fills(out)):
        (f,) = fills
        rates.append({"rate": f["fee"] / (f["qty"] * f["price"]), "liquidity": f["liquidity"]})
    (f,) = exact
    rates.append({"rate": float(f.fee / (f.qty * f.price)), "liquidity": f.liquidity})
    return rates


def test_pre_episode_volume_has_expired_after_800_idle_hours_in_every_twin():
    """The issue's reproduction: 20,000 USD before the start, 800 idle hours, then a maker fill."""
    for twin in fill_after_idle(800, "limit"):
        assert twin["liquidity"] == "maker"
        assert twin["rate"] == pytest.approx(0.0025, rel=1e-12)  # base tier, not tier 1 (0.0020)


@pytest.mark.parametrize(
    ("idle", "taker"),
    [
        (0, 0.0035),  # 20,000 in the window: tier 1 (>= 10,000)
        (359, 0.0035),  # 20,000 x 361/720 = 10,027.8 left
        (360, 0.0035),  # 20,000 x 360/720 = 10,000 exactly: still tier 1 (>= threshold)
        (361, 0.0040),  # 20,000 x 359/720 = 9,972.2 left: base tier
        (719, 0.0040),
    ],
)
def test_pre_episode_volume_expires_evenly_one_720th_per_hour(idle, taker):
    for twin in fill_after_idle(idle, "market"):
        assert twin["liquidity"] == "taker"
        assert twin["rate"] == pytest.approx(taker, rel=1e-12)


@pytest.mark.equivalence
def test_equivalence_holds_with_pre_episode_volume_across_more_than_720_steps():
    """Kernel, numpy and Decimal twins over 800 mostly idle steps with fee_volume_30d > 0.

    All three share the expiry rule, so a fix (or a bug) written into only one of them makes
    this test fail: fees bit for bit kernel vs numpy, and within 1e-9 of the exact ledger.
    """
    rng = np.random.default_rng(8)
    n = 2
    steps = 800
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, (N_BARS, n)), axis=0))
    market = make_tiny_market(close, assets=("A0", "A1"), seed=3, volume=np.full((N_BARS, n), 1e5))
    env = env_for(market, order_type="market", fee_volume_30d=20_000.0, initial_cash=300.0, spread_floor=0.0002,
                  impact_k=0.5)
    np_twin, dec_twin = numpy_twin(env), decimal_twin(env)
    actions = rng.uniform(-1, 1, size=(steps, n + 1))
    actions[np.arange(steps) % 40 != 7] = 0.0  # rebalance every 40 hours, hold otherwise
    rates_seen = set()
    for a in actions:
        w, hold = env.core.action_to_weights(a[None, :])
        exact = dec_twin.step(None if hold[0] else w[0])
        _, out, *_ = np_twin.step(a[None, :])
        _, _, terminated, truncated, info = env.step(a)
        assert info["fees"] == out.fees[0]
        assert [(f["qty"], f["price"], f["fee"]) for f in info["fills"]] == [
            (f["qty"], f["price"], f["fee"]) for f in numpy_fills(out)
        ]
        assert len(exact) == len(info["fills"])
        exact = sorted(exact, key=lambda f: (f.asset, f.side))
        for mine, ref in zip(sorted(info["fills"], key=lambda f: (f["asset"], f["side"])), exact, strict=True):
            assert (mine["asset"], mine["side"]) == (market.assets[ref.asset], ref.side)
            assert abs(Decimal(mine["fee"]) - ref.fee) <= Decimal("1e-9") * max(ref.fee, Decimal(1))
            rates_seen.add(round(mine["fee"] / (mine["qty"] * mine["price"]), 6))
        assert not (terminated or truncated)
    assert rates_seen == {0.0035, 0.004}  # both tiers were paid: the credit expired mid-run


def rate_after_round_trip(idle: int) -> list[float]:
    """No credit before the episode: buy 90 % (~9,000 USD) and sell it back (~18,000 USD
    traded, tier 1), then ``idle`` do-nothing steps, then a market buy; its fee rate in
    each twin."""
    env = env_for(flat_market(), order_type="market", fee_volume_30d=0.0)
    np_twin, dec_twin = numpy_twin(env), decimal_twin(env)
    keep = np.zeros(2)
    for w in (0.9, 0.0):
        a = env.weights_to_action(np.array([w]))
        env.step(a)
        np_twin.step(a[None, :])
        dec_twin.step(np.array([w]))
    for _ in range(idle):
        env.step(keep)
        np_twin.step(keep[None, :])
        dec_twin.step(None)
    buy = env.weights_to_action(np.array([0.5]))
    _, _, _, _, info = env.step(buy)
    _, out, *_ = np_twin.step(buy[None, :])
    (exact,) = dec_twin.step(np.array([0.5]))
    rates = [f["fee"] / (f["qty"] * f["price"]) for fills in (info["fills"], numpy_fills(out)) for f in fills]
    return [*rates, float(exact.fee / (exact.qty * exact.price))]


@pytest.mark.parametrize(("idle", "taker"), [(600, 0.0035), (720, 0.0040)])
def test_episode_trades_leave_the_30_day_window_after_720_hours(idle, taker):
    """The round trip at steps 0 and 1 is in the window at step 602 (tier 1) and has left it
    at step 722 (the window holds the last 720 steps): base tier again, in every twin."""
    rates = rate_after_round_trip(idle)
    assert len(rates) == 3
    assert rates == pytest.approx([taker] * 3, rel=1e-12)
