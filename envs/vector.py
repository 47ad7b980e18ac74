"""`KrakenSpotVectorEnv`: many KrakenSpot accounts stepped in one compiled call.

The arithmetic is `BatchCore`'s, the same code the single env runs with B = 1, so sub-env
i seeded ``seed + i`` reproduces ``KrakenSpotEnv`` reset with ``seed + i`` bit for bit.
Autoreset follows gymnasium 1.x ``NEXT_STEP``: the step after a sub-env terminates or
truncates resets it (its action is ignored, reward 0, both flags False).

``reset(options={"start": x})`` takes one start (bar index or ISO time) for every sub-env or
a sequence of one per sub-env (autoresets draw as usual); other keys raise ``ValueError``.

Info holds numeric arrays only (the hot path): ``equity``, ``cash``, ``weights``,
``target_weights``, ``fees``, ``slippage``, ``turnover``, ``n_fills``, ``n_rejected``,
``drawdown``, ``t``; per-fill detail is what the single env (and `snapshot(i)`) is for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.config import EnvConfig
from envs.data.market import MarketData
from envs.execution import kernels as K
from envs.execution.core import BatchCore
from envs.execution.kernels import Q_TERMINATED, Q_TRUNCATED
from envs.kraken_spot import default_market, reset_options, snapshot_of
from envs.snapshot import PortfolioSnapshot


class KrakenSpotVectorEnv(VectorEnv):
    """``num_envs`` independent KrakenSpot accounts over one market (see `KrakenSpotEnv`)."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012 - gymnasium API

    def __init__(
        self,
        num_envs: int,
        market: MarketData | None = None,
        config: EnvConfig | Mapping[str, Any] | None = None,
        signals: np.ndarray | None = None,
        signal_names: Sequence[str] | None = None,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs: expected >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.config = EnvConfig.from_mapping(config)
        self.market = default_market() if market is None else market
        self.core = BatchCore(self.market, self.config, num_envs, signals, signal_names)
        self.n_assets = self.market.n_assets
        self.single_action_space = spaces.Box(-1.0, 1.0, (self.n_assets + 1,), np.float32)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.single_observation_space = self.core.observation_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self._prev_done = np.zeros(num_envs, dtype=bool)
        self._all = np.arange(num_envs)

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed: expected {self.num_envs} seeds, got {len(seeds)}")
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
        opts = reset_options(options)
        starts = self._starts(opts["start"]) if "start" in opts else self._draw(self._all)
        self.core.reset_rows(self._all, starts)
        self._prev_done[:] = False
        led = self.core.ledger
        return self.core.observation(), {"equity": led.equity.copy(), "t": led.t.copy()}

    def _starts(self, value: Any) -> np.ndarray:
        """``options["start"]``: one bar index / ISO time for every sub-env, or one per sub-env."""
        values = list(value) if isinstance(value, list | tuple | np.ndarray) else [value] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"reset option 'start': expected one value or {self.num_envs}, got {len(values)}")
        return np.array([self.core.start_bar(v) for v in values], dtype=np.int64)

    def _draw(self, rows: np.ndarray) -> np.ndarray:
        return np.array([self.core.draw_start(self._rngs[i]) for i in rows], dtype=np.int64)

    def end_episodes(self, mask: np.ndarray) -> None:
        """Make these sub-envs autoreset at the next step (a wrapper that ends an episode, e.g. on a risk halt)."""
        self._prev_done = self._prev_done | np.asarray(mask, dtype=bool)

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        core = self.core
        led = core.ledger
        done = self._prev_done
        restart = np.flatnonzero(done) if done.any() else None
        if restart is not None:
            starts = self._draw(restart)
            core.reset_rows(restart, starts)
            led.force_hold[restart] = 1
        reward = core.step(actions).copy()
        ints = led.oi.T.copy()  # one copy of the per-row outputs; info entries are its rows
        terminated = ints[Q_TERMINATED] != 0
        truncated = ints[Q_TRUNCATED] != 0
        if restart is not None:
            core.reset_rows(restart, starts)
            reward[restart] = 0.0
            terminated[restart] = False
            truncated[restart] = False
        self._prev_done = terminated | truncated
        floats = led.of.T.copy()
        state = led.fst[: K.S_PEAK + 1].copy()  # cash, equity, peak after any autoreset
        info = {
            "equity": state[K.S_EQUITY],
            "cash": state[K.S_CASH],
            "weights": led.w.copy(),
            "target_weights": led.target.copy(),
            "fees": floats[K.O_FEES],
            "slippage": floats[K.O_SLIP],
            "turnover": floats[K.O_TURNOVER],
            "n_fills": ints[K.Q_N_FILLS],
            "n_rejected": ints[K.Q_N_REJECTED],
            "drawdown": 1.0 - state[K.S_EQUITY] / state[K.S_PEAK],
            "t": led.t.copy(),
        }
        return core.observation(), reward, terminated, truncated, info

    # ---------------------------------------------------------- helpers
    def snapshot(self, i: int) -> PortfolioSnapshot:
        return snapshot_of(self.core, i)

    def action_to_weights(self, actions: np.ndarray) -> np.ndarray:
        """(num_envs, N) target weights of a batch of actions (current weights where "keep")."""
        return self.core.action_to_weights(np.asarray(actions, dtype=np.float64))[0]

    def weights_to_action(self, weights: np.ndarray) -> np.ndarray:
        return BatchCore.weights_to_action(weights)
