"""`BatchCore`: the env logic shared by the single env (B = 1) and the vector env.

It owns the precomputed arrays, the `BatchLedger`, the reward state and the episode
bounds, and maps actions to target weights. Writing this once is what makes the vector
env match the single env bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from envs.config import EnvConfig
from envs.data.align import iso
from envs.data.loaders import to_unix
from envs.data.market import MarketData
from envs.errors import ConfigError
from envs.execution import kernels as K
from envs.execution.arrays import build_exec_arrays
from envs.execution.fees import make_fee_model
from envs.execution.ledger import BatchLedger
from envs.execution.orders import lot_rules
from envs.execution.slippage import make_slippage_model
from envs.numba_utils import compiled_entry
from envs.observation import build_features, observation_space, prepare_signals
from envs.rewards import RewardState, compute_reward


def _bar_at(market: MarketData, when: str | None, side: str, field: str) -> int | None:
    if when is None:
        return None
    try:
        ts = to_unix(when)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"env.{field}: expected an ISO date/time, got {when!r}") from exc
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
        self.slippage = make_slippage_model(config)
        self.fee_model = make_fee_model(config.fee_model, config.maker_fee, config.taker_fee)
        self.arrays = build_exec_arrays(market, config, self.slippage)
        self.rules = lot_rules(market, config)
        self.features = build_features(market, config)
        self.signals = prepare_signals(signals, market, config)
        k = 0 if self.signals is None else self.signals.shape[2] - 1  # the last channel is the availability flag
        names = list(signal_names) if signal_names is not None else [f"signal_{j}" for j in range(k)]
        if len(names) != k:
            raise ConfigError(f"signal_names: expected {k} names, got {len(names)}")
        self.signal_names = (*names, "signals_available") if self.signals is not None else ()
        self.pair_names = tuple(
            market.pairs[a].altname if a in market.pairs else f"{a}USD" for a in market.assets
        )
        self.observation_space = observation_space(config, self.n_assets, len(self.signal_names))
        self.ledger = BatchLedger(self.arrays, self.rules, self.fee_model, config, n, self.slippage)
        self.reward_state = RewardState(n)
        self.length = self.ledger.length  # (B,) episode lengths (a view of the ledger state)
        self._reward = np.zeros(n)
        # weights mode: N+1 entries per row; execution mode: 2N+1 (the same N+1, then one urgency per asset)
        self.action_width = self.ledger.action_width
        self._action_shape = (n, self.action_width)
        self._flat_action_shape = (self.action_width,) if n == 1 else None
        self._action_buf = np.zeros(self._action_shape)
        # hot-path constants (the ledger's buffers are never rebound, so views stay valid)
        self._kernel, self._kernel_args = K.step_rows, self.ledger.kernel_args
        self._entry: Callable[..., None] | None = None  # `step_rows` compiled for the action buffer's types
        self._ratio, self._penalty = self.ledger.of[:, K.O_RATIO], self.ledger.of[:, K.O_PENALTY]
        self._reward_kind = ("log_growth", "drawdown_penalised", "differential_sharpe").index(config.reward)
        self._reward_scale = config.reward_scale
        self._window_offsets = np.arange(1 - config.window, 1)
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

    def start_bar(self, value: object) -> int:
        """The decision bar of a ``reset(options={"start": value})``: a bar index, or an ISO date/time
        (the first bar starting at or after it); ValueError unless it leaves a bar to execute in."""
        m = self.market
        bad = f"reset option 'start': expected a bar index or an ISO date/time, got {value!r}"
        if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
            bar = int(value)
        elif isinstance(value, str):
            try:
                ts = int(to_unix(value) or 0)
            except (ValueError, TypeError) as exc:
                raise ValueError(bad) from exc
            bar = int(np.searchsorted(m.timestamps, ts, side="left"))
        else:
            raise ValueError(bad)
        lo, hi = self.first_bar, self.last_bar - 1
        if not lo <= bar <= hi:
            raise ValueError(
                f"reset option 'start': {value!r} is bar {bar}; expected a decision bar in [{lo}, {hi}] "
                f"({iso(int(m.timestamps[lo]))} .. {iso(int(m.timestamps[hi]))} UTC: after the first feature "
                f"window, inside env.start/end, before the last bar)"
            )
        return bar

    def reset_rows(self, rows: np.ndarray, starts: np.ndarray) -> None:
        """Fresh accounts at ``starts``; an episode ends after `episode_len` steps or at the range end."""
        self.ledger.length[rows] = np.minimum(self.episode_len, self.last_bar - np.asarray(starts))
        self.ledger.reset_rows(rows, starts)
        self.reward_state.reset_rows(rows)

    # -------------------------------------------------------------- actions
    def as_actions(self, action: np.ndarray) -> np.ndarray:
        """Any action input -> the (B, W) float64 C-contiguous array the kernels read (W = `action_width`).

        Real-valued arrays of shape (B, W) (or (W,) when B = 1) are copied into a
        reused buffer (float32 -> float64 is exact); anything else goes through
        ``np.asarray(..., float64).reshape`` (which raises on a wrong size).
        """
        a = action
        if type(a) is np.ndarray and a.dtype.kind in "fiub":
            if a.shape == self._action_shape:
                buf = self._action_buf
                buf[...] = a
                return buf
            if a.shape == self._flat_action_shape:
                buf = self._action_buf
                buf[0] = a
                return buf
        return np.ascontiguousarray(np.asarray(a, dtype=np.float64).reshape(self._action_shape))

    def action_to_weights(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, N+1) actions -> (B, N) target weights and the (B,) "keep current weights" mask.

        In execution mode a full (B, 2N+1) action works too (its urgencies do not change weights).
        """
        k = self.n_assets + 1
        if self.action_width != k:
            a = np.asarray(action, dtype=np.float64)
            if a.shape[-1:] == (k,):  # the weights part alone
                return self.ledger.action_to_weights(np.ascontiguousarray(a.reshape(self.n, k)))
        return self.ledger.action_to_weights(self.as_actions(action))

    @staticmethod
    def weights_to_action(weights: np.ndarray) -> np.ndarray:
        w = np.asarray(weights, dtype=np.float64)
        cash = np.maximum(1.0 - w.sum(-1, keepdims=True), 0.0)
        return np.concatenate([w, cash], axis=-1)

    # ----------------------------------------------------------------- step
    def step(self, action: np.ndarray) -> np.ndarray:
        """One bar for every row; returns the (B,) reward (flags and info are in the ledger's outputs).

        The kernel leaves ``max(E_{t+1}, tiny) / E_t`` in ``of[:, O_RATIO]``; its log is taken
        here with numpy so that rewards stay bit-identical to the numpy formulation.
        """
        act = self.as_actions(action)
        if act is self._action_buf:  # the usual case: call the compiled code without numba's type dispatch
            entry = self._entry
            if entry is None:
                entry = self._entry = compiled_entry(self._kernel, (act, *self._kernel_args))
            entry(act, *self._kernel_args)
        else:
            self._kernel(act, *self._kernel_args)
        reward = self._reward
        np.log(self._ratio, out=reward)
        kind = self._reward_kind
        if kind == 0:  # log_growth
            pass
        elif kind == 1:  # drawdown_penalised
            np.subtract(reward, self._penalty, out=reward)
        else:
            of = self.ledger.of
            eq_before, eq, dd = of[:, K.O_EQ_BEFORE], of[:, K.O_EQUITY], of[:, K.O_DD]
            return compute_reward(self.cfg, self.reward_state, eq_before, eq, dd, dd)
        if self._reward_scale != 1.0:
            np.multiply(reward, self._reward_scale, out=reward)
        return reward

    # ---------------------------------------------------------- observation
    def portfolio(self) -> np.ndarray:
        """(B, N + 3) float32 portfolio block at each row's decision bar (a copy)."""
        return self.ledger.pf.copy()

    def observation(self) -> dict[str, np.ndarray]:
        """Batched observation (B, ...) gathered at each row's decision bar."""
        t = self.ledger.t
        # np.take of (B, window) bar indices is a plain gather (faster than fancy indexing)
        obs = {"features": np.take(self.features, t[:, None] + self._window_offsets, axis=0),
               "portfolio": self.ledger.pf.copy()}
        if self.signals is not None:
            obs["signals"] = self.signals[t]
        return obs

    def observation_single(self) -> dict[str, np.ndarray]:
        """Row 0's observation by slicing (copies: callers keep what they are given)."""
        t = int(self.ledger.t[0])
        obs = {"features": self.features[t + 1 - self.cfg.window : t + 1].copy(), "portfolio": self.ledger.pf[0].copy()}
        if self.signals is not None:
            obs["signals"] = self.signals[t].copy()
        return obs
