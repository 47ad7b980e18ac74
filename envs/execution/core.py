"""`BatchCore`: the env logic shared by the single env (B = 1) and the vector env.

It owns the precomputed arrays, the `BatchLedger`, the reward state and the episode
bounds, and maps actions to target weights. Writing this once is what makes the vector
env match the single env bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from envs.config import EnvConfig
from envs.data.market import MarketData
from envs.errors import ConfigError
from envs.execution.arrays import build_exec_arrays
from envs.execution.fees import make_fee_model
from envs.execution.ledger import BatchLedger, StepOut
from envs.execution.orders import lot_rules
from envs.observation import build_features, observation_space, portfolio_block, prepare_signals
from envs.rewards import RewardState, compute_reward


def _bar_at(market: MarketData, when: str | None, side: str, field: str) -> int | None:
    if when is None:
        return None
    try:
        stamp = pd.Timestamp(when)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"env.{field}: expected an ISO date/time, got {when!r}") from exc
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    ts = int(stamp.timestamp())
    return int(np.searchsorted(market.timestamps, ts, side=side))  # type: ignore[call-overload]


class BatchCore:
    """B accounts trading one market; see `KrakenSpotEnv` for the semantics."""

    def __init__(
        self,
        market: MarketData,
        config: EnvConfig,
        n: int,
        signals: np.ndarray | None = None,
        signal_names: Sequence[str] | None = None,
    ) -> None:
        self.market, self.cfg, self.n = market, config, n
        self.n_assets = market.n_assets
        self.arrays = build_exec_arrays(market, config)
        self.rules = lot_rules(market, config)
        self.features = build_features(market, config)
        self.signals = prepare_signals(signals, market, config)
        k = 0 if self.signals is None else self.signals.shape[2]
        names = list(signal_names) if signal_names is not None else [f"signal_{j}" for j in range(k)]
        if len(names) != k:
            raise ConfigError(f"signal_names: expected {k} names, got {len(names)}")
        self.signal_names = tuple(names)
        self.pair_names = tuple(
            market.pairs[a].altname if a in market.pairs else f"{a}USD" for a in market.assets
        )
        self.observation_space = observation_space(config, self.n_assets, k)
        self.ledger = BatchLedger(self.arrays, self.rules, make_fee_model(config.fee_model, config.maker_fee,
                                                                          config.taker_fee), config, n)
        self.reward_state = RewardState(n)
        self.length = np.zeros(n, dtype=np.int64)
        self._set_bounds()

    # ------------------------------------------------------------- episodes
    def _set_bounds(self) -> None:
        m, c = self.market, self.cfg
        lo = _bar_at(m, c.start, "left", "start")
        hi = _bar_at(m, c.end, "right", "end")
        lo = max(c.window - 1, 0 if lo is None else lo)
        hi = m.n_bars - 1 if hi is None else min(hi - 1, m.n_bars - 1)
        if hi - lo < 1:
            raise ConfigError(
                f"env.start/end: expected at least 2 bars from bar {lo} (window {c.window}) to bar {hi} "
                f"of market {m.source!r} ({m.n_bars} bars), got {max(hi - lo + 1, 0)}"
            )
        self.first_bar, self.last_bar = lo, hi
        self.episode_len = min(c.episode_hours, hi - lo)

    def draw_start(self, rng: np.random.Generator) -> int:
        if self.cfg.start_mode == "fixed":
            return self.first_bar
        return int(rng.integers(self.first_bar, self.last_bar - self.episode_len + 1))

    def reset_rows(self, rows: np.ndarray, starts: np.ndarray) -> None:
        self.ledger.reset_rows(rows, starts)
        self.reward_state.reset_rows(rows)
        self.length[rows] = self.episode_len

    # -------------------------------------------------------------- actions
    def action_to_weights(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, N+1) actions -> (B, N) target weights and the (B,) "keep current weights" mask."""
        n = self.n_assets
        a = np.asarray(action, dtype=np.float64).reshape(self.n, n + 1)
        pos = np.where(a > 0.0, a, 0.0)  # NaN compares False: a NaN entry counts as 0
        cur = self.ledger.weights()
        tradable = self.arrays.tradable[self.ledger.t]
        held = np.where(tradable, 0.0, cur).sum(1)
        free = np.where(tradable, pos[:, :n], 0.0).sum(1) + pos[:, n]
        hold = ~(free > 0.0)
        w = pos[:, :n] * ((1.0 - held) / np.where(hold, 1.0, free))[:, None]
        w = np.where(tradable & ~hold[:, None], w, cur)
        return w, hold

    @staticmethod
    def weights_to_action(weights: np.ndarray) -> np.ndarray:
        w = np.asarray(weights, dtype=np.float64)
        cash = np.maximum(1.0 - w.sum(-1, keepdims=True), 0.0)
        return np.concatenate([w, cash], axis=-1)

    # ----------------------------------------------------------------- step
    def step(self, target: np.ndarray, hold: np.ndarray) -> tuple[StepOut, np.ndarray, np.ndarray, np.ndarray]:
        """One bar for every row: (ledger output, reward, terminated, truncated)."""
        led = self.ledger
        dd_before = 1.0 - led.equity / led.peak
        out = led.step(target, hold)
        dd_after = 1.0 - led.equity / led.peak
        reward = compute_reward(self.cfg, self.reward_state, out.equity_before, out.equity, dd_before, dd_after)
        terminated = out.equity <= 0.0
        if self.cfg.halt_drawdown is not None:
            terminated |= dd_after >= self.cfg.halt_drawdown
        truncated = (led.steps >= self.length) & ~terminated
        return out, reward, terminated, truncated

    # ---------------------------------------------------------- observation
    def portfolio(self) -> np.ndarray:
        led = self.ledger
        age = np.minimum(led.t - led.last_trade, self.cfg.trade_age_scale_hours)
        return portfolio_block(led.weights(), led.cash, led.equity, led.peak, age, self.cfg.trade_age_scale_hours)

    def observation(self) -> dict[str, np.ndarray]:
        """Batched observation (B, ...) gathered at each row's decision bar."""
        t = self.ledger.t
        idx = t[:, None] + np.arange(1 - self.cfg.window, 1)
        obs = {"features": self.features[idx], "portfolio": self.portfolio()}
        if self.signals is not None:
            obs["signals"] = self.signals[t]
        return obs

    def observation_single(self) -> dict[str, np.ndarray]:
        """Row 0's observation by slicing (copies: callers keep what they are given)."""
        t = int(self.ledger.t[0])
        obs = {"features": self.features[t + 1 - self.cfg.window : t + 1].copy(), "portfolio": self.portfolio()[0]}
        if self.signals is not None:
            obs["signals"] = self.signals[t].copy()
        return obs
