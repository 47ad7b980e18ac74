"""The fee seam: every fee model is a tier table the kernel reads; a schedule is one class.

Hand-computed fees of the second real schedule (``kraken_legacy_base``: 0.16% maker / 0.26%
taker, added without a kernel edit), a schedule registered from outside the package that
the kernel, the numpy twin and the Decimal reference all charge, and the flat preset as a
one-row table that gives exactly the configured rates at every volume.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.errors import ConfigError
from envs.execution.fees import (
    FeeModel,
    FlatFees,
    KrakenLegacyBase,
    KrakenTiers,
    TieredFees,
    fee_model_names,
    fee_table,
    make_fee_model,
    register_fee_model,
)
from envs.kraken_spot import KrakenSpotEnv
from tests.env.twins import decimal_twin, numpy_fills, numpy_twin

EXACT = dict(window=1, start_mode="fixed", episode_hours=10, spread_floor=0.0, impact_k=0.0,
             participation_cap=None)


def flat_bars(prices: list[float]) -> dict[str, np.ndarray]:
    c = np.asarray(prices, dtype=np.float64)[:, None]
    return dict(close=c, open=c.copy(), high=c.copy(), low=c.copy(), spread=np.zeros_like(c))


def one_buy(tiny_market, bars, **cfg) -> dict:
    env = KrakenSpotEnv(tiny_market(assets=("A0",), **bars), EnvConfig(**{**EXACT, **cfg}))
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.weights_to_action(np.array([0.5])))
    (fill,) = info["fills"]
    assert info["fees"] == fill["fee"]
    return fill


def test_legacy_kraken_base_tier_charges_026_percent_taker(tiny_market):
    bars = flat_bars([100.0] * 5)
    fill = one_buy(tiny_market, bars, order_type="market", fee_model="kraken_legacy_base")
    # 0.5 * 10,000 / 100 = 50 units at the open 100: notional 5,000, taker 0.26% = 13 USD
    assert (fill["qty"], fill["price"], fill["liquidity"]) == (50.0, 100.0, "taker")
    assert fill["fee"] == 5000.0 * 0.0026
    assert fill["fee"] == pytest.approx(13.0, rel=1e-15)


def test_legacy_kraken_base_tier_charges_016_percent_maker(tiny_market):
    bars = flat_bars([100.0] * 5)
    bars["low"][1] = 99.0  # bar t+1 trades through the limit at the decision close 100
    fill = one_buy(tiny_market, bars, order_type="limit", fee_model="kraken_legacy_base")
    # the limit buy at 100 fills as maker: 50 units, 5,000 USD, 0.16% = 8 USD
    assert (fill["qty"], fill["price"], fill["liquidity"]) == (50.0, 100.0, "maker")
    assert fill["fee"] == 5000.0 * 0.0016
    assert fill["fee"] == pytest.approx(8.0, rel=1e-15)


def test_legacy_schedule_is_a_class_and_a_name_not_a_kernel_change():
    model = make_fee_model("kraken_legacy_base", 0.004, 0.004)  # flat's maker/taker do not apply to it
    assert isinstance(model, KrakenLegacyBase) and isinstance(model, FeeModel)
    assert fee_table(model).tolist() == [[0.0], [0.0016], [0.0026]]
    assert {"flat", "kraken_tiers", "kraken_legacy_base"} <= set(fee_model_names())
    assert EnvConfig(fee_model="kraken_legacy_base").fee_model == "kraken_legacy_base"
    with pytest.raises(ConfigError, match=r"fee_model.*kraken_legacy_base"):
        EnvConfig(fee_model="binance")


class TwoTier(TieredFees):
    """A schedule defined outside the package: 1% / 2% below 1,000 USD of 30-day volume, 0.1% / 0.2% above."""

    def __init__(self) -> None:
        super().__init__([(0.0, 0.01, 0.02), (1_000.0, 0.001, 0.002)])


def _two_tier(maker: float, taker: float) -> FeeModel:
    return TwoTier()


def test_a_schedule_registered_from_outside_reaches_the_kernel_and_both_twins(tiny_market):
    register_fee_model("test_two_tier", _two_tier)
    register_fee_model("test_two_tier", _two_tier)  # the same factory again is fine
    with pytest.raises(ConfigError, match="already registered"):
        register_fee_model("test_two_tier", lambda maker, taker: TwoTier())
    prices = [100.0] * 6
    bars = flat_bars(prices)
    env = KrakenSpotEnv(tiny_market(assets=("A0",), **bars),
                        EnvConfig(**{**EXACT, "order_type": "market", "fee_model": "test_two_tier"}))
    env.reset(seed=0)
    twin, exact = numpy_twin(env), decimal_twin(env)
    fees = []
    for w in (0.5, 0.2, 0.6):  # 5,000 USD at 2% (below the tier), then sells and buys at 0.2%
        a = env.weights_to_action(np.array([w]))
        _, _, _, _, info = env.step(a)
        _, out, *_ = twin.step(a[None, :])
        ref = exact.step(np.array([w]))
        (fill,) = info["fills"]
        assert numpy_fills(out) == [{k: fill[k] for k in ("side", "qty", "price", "fee", "liquidity")} | {"asset": 0}]
        assert float(ref[0].fee) == pytest.approx(fill["fee"], rel=1e-9)  # ACC-9 tolerance (exact sizing)
        fees.append((fill["side"], fill["qty"] * fill["price"], fill["fee"]))
    assert fees[0] == ("buy", 5000.0, 5000.0 * 0.02)
    assert fees[1][0] == "sell" and fees[1][2] == fees[1][1] * 0.002
    assert fees[2][0] == "buy" and fees[2][2] == fees[2][1] * 0.002


@pytest.mark.parametrize("rates", [(0.004, 0.004), (0.0016, 0.0026), (0.0, 0.1), (0.001, 0.0)])
def test_flat_fees_are_a_one_row_table_with_exactly_the_configured_rates(rates):
    model = FlatFees(*rates)
    assert fee_table(model).shape == (3, 1)
    volumes = np.array([0.0, -1e-9, 1.0, 9_999.99, 1e7, 1e300, np.inf, np.nan])
    maker, taker = model.rates(volumes)
    assert np.all(maker == rates[0]) and np.all(taker == rates[1])


def test_kraken_tiers_step_down_with_volume():
    maker, taker = KrakenTiers().rates(np.array([0.0, 9_999.0, 10_000.0, 60_000.0, 1e8, -1e-9]))
    assert maker.tolist() == [0.0025, 0.0025, 0.0020, 0.0014, 0.0, 0.0025]
    assert taker.tolist() == [0.0040, 0.0040, 0.0035, 0.0024, 0.0010, 0.0040]


def test_bad_schedules_are_refused_naming_the_problem():
    with pytest.raises(ConfigError, match="starting at 0"):
        TieredFees([(10.0, 0.001, 0.002)])
    with pytest.raises(ConfigError, match="rates in"):
        TieredFees([(0.0, -0.001, 0.002)])
    with pytest.raises(ConfigError, match="expected one of"):
        make_fee_model("nope", 0.004, 0.004)


def test_the_hydra_preset_selects_the_legacy_schedule():
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    conf = Path(__file__).resolve().parents[2] / "conf" / "env"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(config_name="kraken_legacy_base")
    built = instantiate(cfg)
    assert built == EnvConfig(fee_model="kraken_legacy_base")


@pytest.mark.parametrize(("model", "taker"), [("flat", 0.004), ("kraken_tiers", 0.004), ("kraken_legacy_base", 0.0026)])
def test_the_cost_gate_and_the_baselines_read_the_fee_model_not_the_config(tiny_market, model, taker):
    """Outside the kernel the taker rate comes from the fee model's table too (base tier)."""
    from agents.baselines import BuyAndHold
    from risk.cost_gate import cost_inputs_from_env

    env = KrakenSpotEnv(tiny_market(seed=1, n_bars=80), window=4, fee_model=model)
    assert cost_inputs_from_env(env, 24).fee == taker
    assert BuyAndHold().bind(env).taker_fee == taker
