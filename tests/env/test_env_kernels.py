"""The numba kernels against the numpy formulation (`envs.execution.ledger_numpy`), bit for bit.

The env steps through `envs.execution.kernels`; the numpy `NumpyLedger` is the readable
specification it replaced. Over random markets, configs and action sequences every number
the env reports (orders, fills, fees, slippage, cash, units, equity, reward, portfolio
observation, flags) must be identical, not merely close. Also: the pairwise sum equals
numpy's ``sum`` exactly, stepping past the data raises instead of reading out of bounds,
and the kernels still work where numba cannot write its cache.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.config import EnvConfig
from envs.execution import kernels as K
from envs.execution.orders import REASON_SLOTS, REASONS
from envs.kraken_spot import KrakenSpotEnv
from envs.vector import KrakenSpotVectorEnv
from tests.conftest import env_scenario, make_tiny_market, random_case
from tests.env.twins import NumpyStepper

scenario = env_scenario(
    5,
    reward=st.sampled_from(["log_growth", "differential_sharpe", "drawdown_penalised"]),
    halt_drawdown=st.sampled_from([None, 0.02]),
)


def build(s: dict, n_bars: int = 50) -> tuple[EnvConfig, object, np.ndarray]:
    market, fields, rng = random_case(s, n_bars)
    n = market.n_assets
    cfg = EnvConfig(**fields, reward=s["reward"], halt_drawdown=s["halt_drawdown"])
    actions = rng.uniform(-1, 1, size=(n_bars, n + 1))
    actions[rng.random(n_bars) < 0.2] = 0.0  # "keep current weights"
    actions[rng.random(n_bars) < 0.1, :n] = 0.0  # all cash
    return cfg, market, actions


def fills_of(out, row: int, assets: tuple[str, ...]) -> list[tuple]:
    rows = []
    for ph in out.phases:
        for i in np.flatnonzero(ph.qty[row]):
            rows.append((assets[i], "buy" if out.is_buy[row, i] else "sell", float(ph.qty[row, i]),
                         float(ph.price[row, i]), float(ph.fee[row, i]), "maker" if ph.maker else "taker"))
    return rows


@pytest.mark.equivalence
@settings(derandomize=True, max_examples=120, deadline=None)
@given(scenario)
def test_single_env_kernel_equals_the_numpy_formulation_bit_for_bit(s):
    cfg, market, actions = build(s)
    env = KrakenSpotEnv(market, cfg)
    env.reset(seed=s["seed"] % 997)
    ref = NumpyStepper(env.core, cfg, 1)
    for k, a in enumerate(actions):
        action = a.astype(np.float32) if k % 2 else a
        target, out, reward, term, trunc, pf = ref.step(np.asarray(action, dtype=np.float64)[None, :])
        obs, r, terminated, truncated, info = env.step(action)
        assert np.array_equal(info["target_weights"], target[0])
        assert info["equity"] == out.equity[0] and info["cash"] == ref.led.cash[0]
        assert info["fees"] == out.fees[0] and info["slippage"] == out.slippage[0]
        eb = out.equity_before[0]
        assert info["turnover"] == (out.traded[0] / eb if eb > 0 else 0.0)
        mine = [(f["asset"], f["side"], f["qty"], f["price"], f["fee"], f["liquidity"]) for f in info["fills"]]
        assert mine == fills_of(out, 0, market.assets)
        rejected = [(market.assets[i], REASONS[code], q) for i, code, q in out.records(0)]
        assert [(x["asset"], x["reason"], x["qty_unfilled"]) for x in info["rejected"]] == rejected
        assert np.array_equal(env.snapshot().units, ref.led.units[0])
        assert np.array_equal(info["weights"], ref.led.weights()[0])
        assert r == reward[0] or (r != r and reward[0] != reward[0])
        assert np.array_equal(obs["portfolio"], pf[0])
        assert (terminated, truncated) == (bool(term[0]), bool(trunc[0]))
        assert env.core.ledger.cum_fees[0] == ref.led.cum_fees[0]
        assert env.core.ledger.vol30[0] == ref.led.vol30[0]
        if terminated or truncated:
            break


@pytest.mark.equivalence
@settings(derandomize=True, max_examples=40, deadline=None)
@given(scenario)
def test_vector_kernel_equals_the_numpy_formulation_with_mixed_hold_rows(s):
    """B = 3 rows at different bars, some holding while others trade (the masked numpy branch)."""
    cfg, market, actions = build(s)
    venv = KrakenSpotVectorEnv(3, market=market, config=cfg)
    venv.reset(seed=s["seed"] % 991)
    ref = NumpyStepper(venv.core, cfg, 3)
    rng = np.random.default_rng(s["seed"])
    for a in actions:
        batch = np.stack([a, rng.uniform(-1, 1, a.shape), np.roll(a, 1)])
        batch[rng.random(3) < 0.3] = 0.0
        target, out, reward, term, trunc, pf = ref.step(batch)
        obs, r, terminated, truncated, info = venv.step(batch)
        assert np.array_equal(info["target_weights"], target)
        assert np.array_equal(info["equity"], out.equity) and np.array_equal(info["fees"], out.fees)
        assert np.array_equal(info["slippage"], out.slippage)
        assert np.array_equal(venv.core.ledger.units, ref.led.units)
        assert np.array_equal(r, reward, equal_nan=True) and np.array_equal(obs["portfolio"], pf)
        assert np.array_equal(info["n_fills"], sum(np.count_nonzero(ph.qty, axis=1) for ph in out.phases))
        assert info["n_rejected"].tolist() == [len(out.records(row)) for row in range(3)]
        for row in range(3):
            n_rec = int(info["n_rejected"][row])
            led = venv.core.ledger
            mine = list(zip((led.rc[row, :n_rec] % REASON_SLOTS).tolist(), led.rq[row, :n_rec].tolist(), strict=True))
            assert mine == [(code, q) for _, code, q in out.records(row)]
        assert np.array_equal(terminated, term) and np.array_equal(truncated, trunc)
        if terminated.any() or truncated.any():
            break  # the next step autoresets those rows; the numpy stepper has no autoreset


@pytest.mark.equivalence
@pytest.mark.parametrize("n", [*range(0, 40), 127, 128, 129, 200, 256, 257, 1000, 1031, 4099])
def test_pairwise_sum_is_numpys_sum_exactly(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n) * 10.0 ** rng.uniform(-8, 8, size=n)
    assert K._pwsum(x, n, np.zeros((4, 64))) == x.sum()


def test_stepping_past_the_last_bar_raises_instead_of_reading_out_of_bounds():
    env = KrakenSpotEnv(make_tiny_market(n_bars=30), window=4, episode_hours=10, start_mode="fixed")
    env.reset(seed=0)
    with pytest.raises(IndexError, match="last bar"):
        for _ in range(40):
            env.step(np.ones(env.n_assets + 1))
    assert int(env.core.ledger.t[0]) == 29  # the last bar: no bar t+1 to execute in


def test_kernels_work_where_numba_cannot_cache():
    """No writable cache location: numba raises at decoration; the kernels fall back to no cache."""
    code = (
        "import numba.core.caching as c\n"
        "c.CacheImpl._locator_classes = []\n"
        "import numpy as np\n"
        "from envs.execution import kernels as K\n"
        "x = np.arange(300.0)\n"
        "assert K._pwsum(x, 300, np.zeros((4, 64))) == x.sum()\n"
        "print('ok')\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert "compiling without cache" in done.stderr
