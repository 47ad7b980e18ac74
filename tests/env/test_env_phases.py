"""One phase at a time: the kernel's inlined phase helpers against the numpy twin's methods of the same name.

The whole-step equivalence tests (`test_env_kernels.py`) say *that* the kernel and the numpy
formulation differ; these say *where*. Each drives one phase of `envs.execution.kernels`
(through a small jitted loop over rows) and the `NumpyLedger` method with the same name from
the same random account state, and compares every array the phase writes, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from envs.config import EnvConfig
from envs.execution import kernels as K
from envs.execution.core import BatchCore
from envs.execution.ledger_numpy import NumpyLedger
from tests.conftest import make_tiny_market

ROWS = 16


@njit(cache=False)
def _kernel_size_orders(hold, urgency, inp, st, out, scr, rej, short, buy, qty, n_urg):
    wk = K.work(scr)
    for b in range(out.w.shape[0]):
        n_urg[b] = K.size_orders(b, hold[b] != 0, urgency[b], 0, st.fst[K.S_EQUITY, b], inp, st, out.target[b], wk)
        for i in range(rej.shape[1]):
            rej[b, i], short[b, i], buy[b, i], qty[b, i] = wk.rej[i], wk.short[i], wk.buy[i], wk.qty[i]


@njit(cache=False)
def _kernel_fee_rates(inp, st, maker, taker):
    for b in range(maker.shape[0]):
        maker[b], taker[b] = K.fee_rates(b, inp, st)


def random_accounts(order_type: str, seed: int, **cfg) -> tuple[BatchCore, NumpyLedger, np.random.Generator]:
    """A core of ROWS accounts and its numpy twin, both in the same random state (units, equity, resting orders)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    close = 100.0 * (np.arange(n) + 1.0) * np.exp(np.cumsum(rng.normal(0, 0.02, (40, n)), axis=0))
    tradable = rng.random((40, n)) > 0.15
    tradable[:, 0] = True
    close = np.where(tradable, close, np.nan)
    market = make_tiny_market(close, assets=tuple(f"A{i}" for i in range(n)), tradable=tradable, seed=seed, pairs={})
    config = EnvConfig(window=1, order_type=order_type, action_mode="execution", limit_offset=float(rng.uniform(0, 50)),
                       min_order_fraction=float(rng.choice([0.0, 1e-7])),
                       default_ordermin=float(rng.choice([0.0, 0.05, 1.0])),
                       default_costmin=float(rng.choice([0.5, 50.0, 400.0])),
                       default_lot_decimals=int(rng.integers(0, 4)), **cfg)
    core = BatchCore(market, config, ROWS)
    led = core.ledger
    starts = rng.integers(0, 38, ROWS)
    core.reset_rows(np.arange(ROWS), starts)
    scale = core.rules.scale
    led.units[:] = np.floor(rng.uniform(0, 30, (ROWS, n)) * (rng.random((ROWS, n)) < 0.6) * scale) / scale
    led.cash[:] = rng.uniform(0, 5_000, ROWS)
    led.equity[:] = led.cash + (led.units * core.arrays.mark[starts]).sum(1)
    led.pend[:] = rng.uniform(-5, 5, (ROWS, n)) * (rng.random((ROWS, n)) < 0.5)
    led.pend_px[:] = rng.uniform(50, 500, (ROWS, n))
    led.age[:] = rng.integers(0, 3, (ROWS, n))
    led.steps[:] = rng.integers(0, 1_500, ROWS)
    led.vol30[:] = rng.choice([0.0, 5_000.0, 60_000.0, 2e6, -1e-9], ROWS)
    twin = NumpyLedger(core.arrays, core.rules, core.fee_model, config, ROWS)
    twin.reset_rows(np.arange(ROWS), starts)
    for name in ("units", "cash", "equity", "pend", "pend_px", "age", "steps", "vol30"):
        setattr(twin, name, getattr(led, name).copy())
    return core, twin, rng


@pytest.mark.equivalence
@pytest.mark.parametrize("order_type", ["limit", "market"])
@pytest.mark.parametrize("seed", range(12))
def test_size_orders_phase_equals_the_numpy_twin(order_type, seed):
    core, twin, rng = random_accounts(order_type, seed)
    led = core.ledger
    n = led.units.shape[1]
    target = rng.dirichlet(np.ones(n + 1), ROWS)[:, :n] * (rng.random((ROWS, n)) < 0.8)
    target[0] = 0.0  # sell everything
    hold = rng.random(ROWS) < 0.25
    # row 2 asks for 0.4 lot more of asset 0: refused (lot_size)
    hold[2] = False
    t2, scale0 = led.t[2], core.rules.scale[0]
    target[2, 0] = (led.units[2, 0] + 0.4 / scale0) * core.arrays.price[t2, 0] / led.equity[2]
    urgency = rng.uniform(-1, 1, (ROWS, n))
    urgency[1, 0] = np.nan
    led.target[:] = target
    eq_before = led.equity.copy()
    rej, short, qty = np.zeros((ROWS, n), np.int64), np.zeros((ROWS, n)), np.zeros((ROWS, n))
    buy, n_urg = np.zeros((ROWS, n), np.int64), np.zeros(ROWS, np.int64)
    _kernel_size_orders(hold.astype(np.int64), urgency, *led.kernel_args, rej, short, buy, qty, n_urg)
    bar = twin.size_orders(target, hold, eq_before, urgency)
    assert np.array_equal(led.pend, twin.pend)
    assert np.array_equal(led.age, twin.age)
    if order_type == "limit":
        assert np.array_equal(led.pend_px, twin.pend_px)
    assert np.array_equal(rej, bar.reject) and np.array_equal(short, bar.unfilled)
    assert np.array_equal(buy != 0, bar.is_buy) and np.array_equal(qty, bar.qty)
    urgent = np.zeros((ROWS, n), bool) if bar.urgent is None else bar.urgent
    assert np.array_equal(n_urg, urgent.sum(1) if order_type == "limit" else np.zeros(ROWS))
    assert (bar.reject != 0).any() and (led.pend != 0).any()  # the case exercises sizing and refusals


@pytest.mark.equivalence
@pytest.mark.parametrize("fee_model", ["flat", "kraken_tiers", "kraken_legacy_base"])
@pytest.mark.parametrize("seed", range(4))
def test_fee_rates_phase_equals_the_numpy_twin(fee_model, seed):
    core, twin, _ = random_accounts("limit", seed, fee_model=fee_model, fee_volume_30d=float(seed) * 40_000.0)
    maker, taker = np.zeros(ROWS), np.zeros(ROWS)
    _kernel_fee_rates(core.ledger.kernel_args[0], core.ledger.kernel_args[1], maker, taker)
    expect = twin.fee_rates()
    assert np.array_equal(maker, expect[0]) and np.array_equal(taker, expect[1])
    if fee_model == "kraken_tiers" and seed > 0:
        assert len(np.unique(taker)) > 1  # several tiers in play
