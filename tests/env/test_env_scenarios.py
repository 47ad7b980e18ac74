"""Hand-computed execution scenarios (ACC-2, ACC-6, ACC-8, ACC-10): every expected number
below is worked out by hand from the bars written in the test."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.data.market import PairInfo
from envs.kraken_spot import KrakenSpotEnv

EXACT = dict(
    window=1, start_mode="fixed", episode_hours=10, spread_floor=0.0, impact_k=0.0,
    participation_cap=None, order_type="market", record_history=True,
)


def flat_bars(prices: list[float], n_assets: int = 1) -> dict[str, np.ndarray]:
    """O=H=L=C bars (nothing trades through a limit), zero spread, large volume."""
    c = np.tile(np.asarray(prices, dtype=np.float64)[:, None], (1, n_assets))
    return dict(close=c, open=c.copy(), high=c.copy(), low=c.copy(), spread=np.zeros_like(c))


def make_env(tiny_market, bars: dict[str, np.ndarray], pairs=None, **cfg) -> KrakenSpotEnv:
    assets = tuple(f"A{i}" for i in range(bars["close"].shape[1]))
    market = tiny_market(assets=assets, pairs=pairs, **bars)
    env = KrakenSpotEnv(market, EnvConfig(**{**EXACT, **cfg}))
    env.reset(seed=0)
    return env


def act(env: KrakenSpotEnv, weights: list[float]) -> np.ndarray:
    return env.weights_to_action(np.asarray(weights, dtype=np.float64))


def test_market_buy_pays_exactly_040_percent_of_filled_notional(tiny_market):
    bars = flat_bars([100.0] * 5)
    bars["open"][1] = 101.0  # the fill happens at the open of bar t+1, not the close seen at t
    bars["high"][1] = 101.0
    env = make_env(tiny_market, bars)
    _, _, _, _, info = env.step(act(env, [0.5]))
    (fill,) = info["fills"]
    # target units = 0.5 * 10000 / 100 = 50; fill at open 101 -> notional 5050; fee 0.4% = 20.2
    assert fill["side"] == "buy" and fill["liquidity"] == "taker"
    assert fill["qty"] == 50.0 and fill["price"] == 101.0
    assert fill["fee"] == 0.004 * (50.0 * 101.0)
    assert fill["fee"] == pytest.approx(20.2, rel=1e-15)
    assert info["fees"] == fill["fee"]
    assert info["cash"] == pytest.approx(10000.0 - 5050.0 - 20.2, abs=1e-9)
    assert info["equity"] == pytest.approx(4929.8 + 50 * 100.0, abs=1e-9)  # marked at the close of t+1
    assert info["turnover"] == pytest.approx(0.505)


def test_market_buy_pays_half_spread_and_the_fee_on_the_slipped_notional(tiny_market):
    bars = flat_bars([100.0] * 5)
    bars["spread"][:] = 0.002  # 20 bp full spread -> 10 bp half spread against the buyer
    env = make_env(tiny_market, bars)
    _, _, _, _, info = env.step(act(env, [0.5]))
    (fill,) = info["fills"]
    assert fill["price"] == pytest.approx(100.1, rel=1e-15)
    assert fill["fee"] == pytest.approx(0.004 * 50 * 100.1, rel=1e-15)
    assert info["slippage"] == pytest.approx(50 * 0.1, rel=1e-12)


def test_limit_buy_not_traded_through_does_not_fill_then_falls_back_at_the_close(tiny_market):
    bars = flat_bars([100.0, 100.0, 102.0, 102.0, 102.0])
    bars["open"][2] = 100.0
    bars["low"][1] = 100.0  # bar 1 touches the limit (100) but does not trade through it
    bars["low"][2] = 100.0
    env = make_env(tiny_market, bars, order_type="limit", limit_fallback="market")
    _, _, _, _, info = env.step(act(env, [0.5]))
    (fill,) = info["fills"]
    # no maker fill in bar 1; the fallback market order fills at the close of bar 1 (100), taker
    assert fill["liquidity"] == "taker" and fill["price"] == 100.0 and fill["qty"] == 50.0


def test_limit_buy_traded_through_fills_at_the_limit_as_maker(tiny_market):
    bars = flat_bars([100.0] * 5)
    bars["low"][1] = 99.0
    env = make_env(tiny_market, bars, order_type="limit", limit_offset=50.0)  # 50 bp below the close
    _, _, _, _, info = env.step(act(env, [0.5]))
    (fill,) = info["fills"]
    assert fill["liquidity"] == "maker"
    assert fill["price"] == pytest.approx(99.5, rel=1e-15)
    assert fill["qty"] == 50.0  # sized at the decision close (100)
    assert fill["fee"] == pytest.approx(0.004 * 50 * 99.5, rel=1e-15)
    assert info["slippage"] == 0.0


def test_limit_with_cancel_fallback_and_time_to_live(tiny_market):
    bars = flat_bars([100.0] * 6)
    bars["low"][3] = 99.0  # only bar 3 trades through the limit at 100
    env = make_env(tiny_market, bars, order_type="limit", limit_ttl_bars=3, limit_fallback="cancel")
    hold = np.zeros(2)
    _, _, _, _, info1 = env.step(act(env, [0.5]))  # executes in bar 1: rests
    _, _, _, _, info2 = env.step(hold)  # bar 2: still resting (agent holds)
    _, _, _, _, info3 = env.step(hold)  # bar 3: trades through -> maker fill
    assert info1["fills"] == [] and info2["fills"] == []
    assert [f["liquidity"] for f in info3["fills"]] == ["maker"]
    env2 = make_env(tiny_market, flat_bars([100.0] * 6), order_type="limit", limit_fallback="cancel")
    _, _, _, _, info = env2.step(act(env2, [0.5]))
    assert info["fills"] == [] and env2.snapshot().cash == 10000.0  # cancelled, nothing spent


def test_lot_rounding_down_and_minimum_order_rejections(tiny_market):
    bars = flat_bars([30.0] * 5, n_assets=4)
    pairs = {
        "A0": PairInfo("A0", "A0USD", "A0", "A0/USD", "A0", "ZUSD", 2, 2, 0.01, 0.5, 0.01),  # 2 lot decimals
        "A1": PairInfo("A1", "A1USD", "A1", "A1/USD", "A1", "ZUSD", 2, 8, 50.0, 0.5, 0.01),  # ordermin 50 units
        "A2": PairInfo("A2", "A2USD", "A2", "A2/USD", "A2", "ZUSD", 2, 8, 0.0, 2000.0, 0.01),  # costmin 2000 USD
        "A3": PairInfo("A3", "A3USD", "A3", "A3/USD", "A3", "ZUSD", 2, 0, 0.0, 0.5, 0.01),  # whole units
    }
    bars["close"][:, 3] = bars["open"][:, 3] = bars["high"][:, 3] = bars["low"][:, 3] = 5000.0
    env = make_env(tiny_market, bars, pairs=pairs, maker_fee=0.0, taker_fee=0.0)
    _, _, _, _, info = env.step(act(env, [0.1, 0.1, 0.1, 0.1]))
    # A0: 1000 / 30 = 33.333.. -> 33.33; A1: 33.33 < ordermin 50; A2: 1000 USD < costmin 2000;
    # A3: 1000 / 5000 = 0.2 -> 0 whole units
    assert [(f["asset"], f["qty"]) for f in info["fills"]] == [("A0", 33.33)]
    assert {r["asset"]: r["reason"] for r in info["rejected"]} == {
        "A1": "ordermin", "A2": "costmin", "A3": "lot_size"
    }


@pytest.mark.parametrize("size", [0.1, 0.25, 0.5, 0.75, 0.99])
@pytest.mark.parametrize("fee", [0.004, 0.0])
def test_round_trip_costs_exactly_two_fees_at_constant_price(tiny_market, size, fee):
    """ACC-6 over 10 assets: buy then sell everything at a constant price, zero slippage."""
    prices = np.array([0.05, 0.3, 1.7, 9.0, 42.0, 133.0, 777.0, 2500.0, 31000.0, 65000.0])
    c = np.tile(prices, (6, 1))
    bars = dict(close=c, open=c.copy(), high=c.copy(), low=c.copy(), spread=np.zeros_like(c))
    env = make_env(tiny_market, bars, maker_fee=fee, taker_fee=fee)
    w = np.full(10, size / 10)
    _, _, _, _, buy = env.step(env.weights_to_action(w))
    _, _, _, _, sell = env.step(env.weights_to_action(np.zeros(10)))
    assert len(buy["fills"]) == 10 and len(sell["fills"]) == 10
    assert sum(f["qty"] for f in buy["fills"]) == pytest.approx(sum(f["qty"] for f in sell["fills"]), rel=1e-15)
    fee_buy = sum(Decimal(f["fee"]) for f in buy["fills"])
    fee_sell = sum(Decimal(f["fee"]) for f in sell["fills"])
    expected = Decimal(10000) - fee_buy - fee_sell
    assert abs(Decimal(sell["equity"]) - expected) <= Decimal("1e-9")
    assert np.all(env.snapshot().units == 0.0)
    if fee == 0.0:
        assert sell["equity"] == pytest.approx(10000.0, abs=1e-9)
    else:
        bought = sum(Decimal(f["qty"]) * Decimal(f["price"]) for f in buy["fills"])
        assert abs(fee_buy - Decimal("0.004") * bought) <= Decimal("1e-12")


def test_buys_are_capped_at_cash_after_fees_and_sells_at_holdings(tiny_market):
    env = make_env(tiny_market, flat_bars([100.0] * 5))
    _, _, _, _, info = env.step(act(env, [1.0]))  # 100% of equity plus the fee does not fit
    (fill,) = info["fills"]
    # qty = floor_8dp(10000 * (1 - 1e-10) / (100 * 1.004)) = floor_8dp(99.6015936155...) = 99.60159361
    assert fill["qty"] == pytest.approx(99.60159361, abs=1e-12)
    assert 0.0 <= info["cash"] < 0.01
    _, _, _, _, info = env.step(act(env, [0.0]))  # all cash: sell exactly what is held
    (sell,) = info["fills"]
    assert sell["qty"] == fill["qty"] and env.snapshot().units[0] == 0.0


def test_participation_cap_gives_a_partial_fill(tiny_market):
    bars = flat_bars([100.0] * 5)
    env = make_env(tiny_market, {**bars, "volume": np.full((5, 1), 200.0)}, participation_cap=0.1)
    _, _, _, _, info = env.step(act(env, [0.5]))
    (fill,) = info["fills"]
    assert fill["qty"] == 20.0  # 10% of the bar's 200 units, not the 50 ordered


def test_bar_without_trading_fills_nothing_and_reports_no_bar(tiny_market):
    bars = flat_bars([100.0] * 5)
    tradable = np.ones((5, 1), dtype=bool)
    tradable[1] = False
    env = make_env(tiny_market, {**bars, "tradable": tradable})
    _, _, _, _, info = env.step(act(env, [0.5]))
    assert info["fills"] == [] and info["rejected"] == [
        {"pair": "A0USD", "asset": "A0", "reason": "no_bar", "qty_unfilled": 50.0}
    ]
    assert info["equity"] == 10000.0


def test_keep_and_all_cash_actions(tiny_market):
    env = make_env(tiny_market, flat_bars([100.0] * 6, n_assets=2), maker_fee=0.0, taker_fee=0.0)
    env.step(act(env, [0.3, 0.3]))
    before = env.snapshot()
    _, _, _, _, info = env.step(np.zeros(3, dtype=np.float32))  # no entry > 0: keep current weights
    assert info["fills"] == [] and info["fees"] == 0.0
    np.testing.assert_array_equal(env.snapshot().units, before.units)
    assert np.array_equal(env.action_to_weights(np.full(3, -0.5)), before.weights)
    _, _, _, _, info = env.step(np.array([-1.0, -1.0, 1.0], dtype=np.float32))  # all cash
    assert {f["side"] for f in info["fills"]} == {"sell"} and np.all(env.snapshot().units == 0.0)


def test_kraken_tier_fees_depend_on_30_day_volume(tiny_market):
    bars = flat_bars([100.0] * 5)
    bars["low"][1] = 99.0
    base = make_env(tiny_market, bars, order_type="limit", fee_model="kraken_tiers")
    _, _, _, _, info = base.step(act(base, [0.5]))
    assert info["fills"][0]["fee"] == pytest.approx(0.0025 * 5000.0, rel=1e-15)  # maker, base tier
    tier2 = make_env(tiny_market, bars, order_type="market", fee_model="kraken_tiers", fee_volume_30d=60_000.0)
    _, _, _, _, info = tier2.step(act(tier2, [0.5]))
    assert info["fills"][0]["fee"] == pytest.approx(0.0024 * 5000.0, rel=1e-15)  # taker, >= 50k tier


def test_drawdown_halt_terminates_and_range_end_truncates(tiny_market):
    crash = flat_bars([100.0, 100.0, 50.0, 50.0, 50.0])  # bought in bar 1, marked at 50 in bar 2
    env = make_env(tiny_market, crash, halt_drawdown=0.2, maker_fee=0.0, taker_fee=0.0)
    env.step(act(env, [1.0]))
    _, _, terminated, truncated, info = env.step(np.zeros(2))
    assert terminated and not truncated and info["termination_reason"] == "halt_drawdown"
    env = make_env(tiny_market, flat_bars([100.0] * 4), episode_hours=100)
    flags = [env.step(np.zeros(2))[3] for _ in range(3)]
    assert flags == [False, False, True]
    assert env.history()["t"].tolist() == [1, 2, 3]
