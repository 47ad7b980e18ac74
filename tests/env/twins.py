"""The execution step's twins side by side, for tests that must hold in every one of them.

`NumpyStepper` is the numpy formulation of a whole env step (action mapping, ledger, reward,
flags) over the same precomputed arrays as an env's `BatchCore`; `decimal_twin` is the exact
`Decimal` reference of one account. A behavioural test that runs the env (numba kernel) and
these on the same scenario fails when a rule is broken in any one twin, not only when the
twins disagree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.config import EnvConfig
from envs.execution.fees import make_fee_model
from envs.execution.ledger_numpy import NumpyLedger, numpy_action_to_weights
from envs.execution.reference import ReferenceLedger
from envs.kraken_spot import KrakenSpotEnv
from envs.observation import portfolio_block
from envs.rewards import RewardState, compute_reward


class NumpyStepper:
    """The numpy formulation of a whole env step (action mapping, ledger, reward, flags)."""

    def __init__(self, env_core: Any, cfg: EnvConfig, rows: int) -> None:
        self.cfg, self.a = cfg, env_core.arrays
        fees = make_fee_model(cfg.fee_model, cfg.maker_fee, cfg.taker_fee)
        self.led = NumpyLedger(env_core.arrays, env_core.rules, fees, cfg, rows)
        self.led.reset_rows(np.arange(rows), env_core.ledger.t.copy())
        self.rs = RewardState(rows)
        self.length = env_core.length.copy()

    def step(self, actions: np.ndarray) -> tuple:
        """One step on (B, N+1) actions, or (B, 2N+1) execution-mode actions (weights, then urgencies)."""
        led = self.led
        n = led.units.shape[1]
        actions = np.asarray(actions, dtype=np.float64).reshape(led.n, -1)
        urgency = actions[:, n + 1 :] if self.cfg.action_mode == "execution" else None
        target, hold = numpy_action_to_weights(actions[:, : n + 1], led.weights(), self.a.tradable[led.t])
        dd_before = 1.0 - led.equity / led.peak
        out = led.step(target, hold, urgency)
        dd_after = 1.0 - led.equity / led.peak
        reward = compute_reward(self.cfg, self.rs, out.equity_before, out.equity, dd_before, dd_after)
        terminated = out.equity <= 0.0
        if self.cfg.halt_drawdown is not None:
            terminated |= dd_after >= self.cfg.halt_drawdown
        truncated = (led.steps >= self.length) & ~terminated
        age = np.minimum(led.t - led.last_trade, self.cfg.trade_age_scale_hours)
        pf = portfolio_block(led.weights(), led.cash, led.equity, led.peak, age, self.cfg.trade_age_scale_hours)
        return target, out, reward, terminated, truncated, pf


def numpy_twin(env: KrakenSpotEnv) -> NumpyStepper:
    """A one-row numpy twin of ``env``, at the env's current (freshly reset) decision bar."""
    return NumpyStepper(env.core, env.config, 1)


def decimal_twin(env: KrakenSpotEnv) -> ReferenceLedger:
    """The exact Decimal twin of ``env``, at the env's current (freshly reset) decision bar."""
    cfg, core = env.config, env.core
    fees = make_fee_model(cfg.fee_model, cfg.maker_fee, cfg.taker_fee)
    return ReferenceLedger(core.arrays, core.rules, fees, cfg, int(core.ledger.t[0]))


def numpy_fills(out: Any, row: int = 0) -> list[dict[str, Any]]:
    """The numpy twin's fills of one row as (asset index, side, qty, price, fee, liquidity) dicts."""
    rows = []
    for ph in out.phases:
        for i in np.flatnonzero(ph.qty[row]):
            rows.append({"asset": int(i), "side": "buy" if out.is_buy[row, i] else "sell", "qty": float(ph.qty[row, i]),
                         "price": float(ph.price[row, i]), "fee": float(ph.fee[row, i]),
                         "liquidity": "maker" if ph.maker else "taker"})
    return rows
