"""Rewards, batched over B accounts (equity is net of every fee and slippage already).

- ``log_growth`` (default): ``log(E_{t+1} / E_t)``;
- ``differential_sharpe``: Moody & Saffell's differential Sharpe ratio of the simple
  return, with EMA rate ``dsr_eta`` (0 until the variance estimate is positive);
- ``drawdown_penalised``: log growth minus ``drawdown_penalty`` × the increase of the
  drawdown from peak in this step.

All are multiplied by ``reward_scale``.
"""

from __future__ import annotations

import numpy as np

from envs.config import EnvConfig

TINY = 1e-300


class RewardState:
    """EMA moments of the differential Sharpe ratio, per row."""

    def __init__(self, n: int) -> None:
        self.a = np.zeros(n)
        self.b = np.zeros(n)

    def reset_rows(self, rows: np.ndarray) -> None:
        self.a[rows] = 0.0
        self.b[rows] = 0.0


def compute_reward(
    config: EnvConfig,
    state: RewardState,
    eq_before: np.ndarray,
    eq_after: np.ndarray,
    dd_before: np.ndarray,
    dd_after: np.ndarray,
) -> np.ndarray:
    growth = np.log(np.maximum(eq_after, TINY) / eq_before)
    kind = config.reward
    if kind == "log_growth":
        reward = growth
    elif kind == "drawdown_penalised":
        reward = growth - config.drawdown_penalty * np.maximum(dd_after - dd_before, 0.0)
    else:
        r = eq_after / eq_before - 1.0
        a, b = state.a, state.b
        da, db = r - a, r * r - b
        var = b - a * a
        with np.errstate(divide="ignore", invalid="ignore"):
            dsr = (b * da - 0.5 * a * db) / var**1.5
        reward = np.where(var > 1e-12, dsr, 0.0)
        state.a = a + config.dsr_eta * da
        state.b = b + config.dsr_eta * db
    return reward * config.reward_scale if config.reward_scale != 1.0 else reward
