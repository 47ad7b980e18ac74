"""`KrakenSpotVectorEnv`: many KrakenSpot accounts stepped in one compiled call.

The arithmetic is `BatchCore`'s, the same code the single env runs with B = 1, so sub-env
i seeded ``seed + i`` reproduces ``KrakenSpotEnv`` reset with ``seed + i`` bit for bit.
Autoreset (``autoreset_mode``, an attribute and in ``metadata``) is gymnasium 1.x
``NEXT_STEP`` by default: the step after a sub-env terminates or truncates resets it (its
action is ignored, reward 0, both flags False). ``autoreset_mode="disabled"`` (what
TorchRL's ``GymWrapper`` requires) never resets by itself: ``reset(options={"reset_mask":
mask})`` restarts the ended sub-envs, and stepping one that ended without it raises.

``reset(options={"start": x})`` takes one start (bar index or ISO time) for every sub-env or
a sequence of one per sub-env (autoresets draw as usual); ``reset_mask`` selects the
sub-envs to reset; other keys raise ``ValueError``.

Arguments are the single env's: ``KrakenSpotVectorEnv(num_envs, market=None, config=None,
signals=None, signal_names=None, max_episode_steps=None, autoreset_mode=NEXT_STEP,
**config_overrides)``, so ``gym.make_vec("KrakenSpot-v0", 4, episode_hours=50)`` works
like ``gym.make``. Actions are (num_envs, N+1), or (num_envs, 2N+1) with
``action_mode="execution"`` (the single env's action per row).
``max_episode_steps`` (what ``gym.make_vec`` passes on) truncates an episode after that
many steps, like gymnasium's ``TimeLimit``, with ``termination_reason="time_limit"``.

Info has the single env's keys, one entry per sub-env, so code moves from
``SyncVectorEnv`` unchanged:

- arrays of shape (num_envs,) or (num_envs, N): ``equity``, ``cash``, ``weights``,
  ``target_weights``, ``fees``, ``slippage``, ``turnover``, ``drawdown``, ``t``,
  ``timestamp`` (Unix seconds of the new bar), ``n_fills``, ``n_rejected``;
- ``termination_reason``: (num_envs,) object array of str, ``""`` where the episode
  did not end at this step;
- ``fills`` and ``rejected``: sequences of num_envs lists of the single env's dicts
  (`envs.step_info.PerEnvRecords`), each list built when first read.

`risk.hours` steps the same ledger from compiled code, several hours per call and without
infos; ``hours_ready`` says when it may, ``last_info`` gives the info of its last hour.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.arguments import build_config, resolve_market
from envs.config import EnvConfig
from envs.data.market import MarketData
from envs.execution import kernels as K
from envs.execution.core import BatchCore
from envs.execution.kernels import Q_TERMINATED, Q_TRUNCATED
from envs.kraken_spot import check_action, reset_options, snapshot_of
from envs.snapshot import PortfolioSnapshot
from envs.spec import KrakenSpotSpec
from envs.step_info import PerEnvRecords, StepLabels, end_reason


class KrakenSpotVectorEnv(VectorEnv):
    """``num_envs`` independent KrakenSpot accounts over one market (see `KrakenSpotEnv`).

    ``observations`` (attribute, default True): set to False, ``reset`` and ``step`` return
    None in place of the observation and skip building it (the feature windows are the
    largest copy of a step). For a caller that builds its own views from the env's arrays
    (`agents.vec.LevelVecEnv`); everything else in the step is unchanged.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012 - gymnasium API

    def __init__(
        self,
        num_envs: int,
        market: MarketData | Mapping[str, Any] | None = None,
        config: EnvConfig | Mapping[str, Any] | None = None,
        signals: np.ndarray | None = None,
        signal_names: Sequence[str] | None = None,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **config_overrides: Any,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs: expected an integer >= 1, got {num_envs!r}")
        if max_episode_steps is not None and (
            isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, int) or max_episode_steps < 1
        ):
            raise ValueError(f"max_episode_steps: expected None or an integer >= 1, got {max_episode_steps!r}")
        num_envs = int(num_envs)
        self.num_envs = num_envs
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.config = build_config(config, config_overrides, "KrakenSpotVectorEnv")
        self.market = resolve_market(market)
        self.max_episode_steps = max_episode_steps
        self.core = BatchCore(self.market, self.config, num_envs, signals, signal_names)
        self.n_assets = self.market.n_assets
        self.action_mode = self.config.action_mode
        self.single_action_space = spaces.Box(-1.0, 1.0, (self.core.action_width,), np.float32)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.single_observation_space = self.core.observation_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self._prev_done = np.zeros(num_envs, dtype=bool)
        self._all = np.arange(num_envs)
        self._labels = StepLabels(self.core.pair_names, self.market.assets)
        self._timestamps = self.market.timestamps
        self._action_shape = (num_envs, self.core.action_width)
        self._no_reasons = np.full(num_envs, "", dtype=object)  # copied per step (np.full of objects is slower)
        self._last_records: tuple[weakref.ref[PerEnvRecords], ...] = ()
        self.observations = True

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
        opts = dict(options or {})
        mask = opts.pop("reset_mask", None)
        opts = reset_options(opts)
        rows = self._all if mask is None else self._masked(mask)
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed: expected {self.num_envs} seeds, got {len(seeds)}")
            for i in rows.tolist():
                self._rngs[i] = seeding.np_random(seeds[i])[0]
        starts = self._starts(opts["start"])[rows] if "start" in opts else self._draw(rows)
        self._reset_rows(rows, starts)
        self._prev_done[rows] = False
        led = self.core.ledger
        return self._observation(), {"equity": led.equity.copy(), "t": led.t.copy()}

    def _starts(self, value: Any) -> np.ndarray:
        """``options["start"]``: one bar index / ISO time for every sub-env, or one per sub-env."""
        values = list(value) if isinstance(value, list | tuple | np.ndarray) else [value] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"reset option 'start': expected one value or {self.num_envs}, got {len(values)}")
        return np.array([self.core.start_bar(v) for v in values], dtype=np.int64)

    def _masked(self, mask: Any) -> np.ndarray:
        """Rows of ``options["reset_mask"]`` (gymnasium 1.1+: reset only these sub-envs)."""
        m = np.asarray(mask)
        if m.shape != (self.num_envs,) or m.dtype != np.bool_ or not m.any():
            raise ValueError(
                f"options['reset_mask']: expected a bool array of shape ({self.num_envs},) with a True value, "
                f"got {m.dtype} of shape {m.shape}"
            )
        return np.flatnonzero(m)

    def _reset_rows(self, rows: np.ndarray, starts: np.ndarray) -> None:
        self.core.reset_rows(rows, starts)
        if self.max_episode_steps is not None:  # TimeLimit: truncate after this many steps
            led = self.core.ledger
            led.length[rows] = np.minimum(led.length[rows], self.max_episode_steps)

    def _draw(self, rows: np.ndarray) -> np.ndarray:
        return np.array([self.core.draw_start(self._rngs[i]) for i in rows], dtype=np.int64)

    def end_episodes(self, mask: np.ndarray) -> None:
        """Make these sub-envs autoreset at the next step (a wrapper that ends an episode, e.g. on a risk halt)."""
        self._prev_done = self._prev_done | np.asarray(mask, dtype=bool)

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray] | None, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        core = self.core
        led = core.ledger
        self.detach_records()
        done = self._prev_done
        restart = np.flatnonzero(done) if done.any() else None
        if restart is not None and self.autoreset_mode == AutoresetMode.DISABLED:
            raise RuntimeError(
                f"KrakenSpotVectorEnv (autoreset_mode=DISABLED): sub-envs {restart.tolist()} ended; reset them with "
                "reset(options={'reset_mask': mask}) before stepping"
            )
        if restart is not None:
            starts = self._draw(restart)
            self._reset_rows(restart, starts)
            led.force_hold[restart] = 1
        try:
            reward = core.step(actions).copy()
        except (ValueError, TypeError):
            check_action(actions, self._action_shape, "KrakenSpotVectorEnv.step", self.action_mode)
            raise
        ints = led.oi.T.copy()  # one copy of the per-row outputs; info entries are its rows
        terminated = ints[Q_TERMINATED] != 0
        truncated = ints[Q_TRUNCATED] != 0
        if restart is not None:
            self._reset_rows(restart, starts)
            reward[restart] = 0.0
            terminated[restart] = False
            truncated[restart] = False
        done = terminated | truncated
        self._prev_done = done
        reasons = self._no_reasons.copy()
        if done.any():
            for i in np.flatnonzero(done).tolist():
                reasons[i] = end_reason(core, i, bool(terminated[i]), self.max_episode_steps)
        info = self._info(ints, reasons)
        return self._observation(), reward, terminated, truncated, info

    def _info(self, ints: np.ndarray, reasons: np.ndarray) -> dict[str, Any]:
        """The info of the step just taken (``ints``: a copy of ``oi.T``; ``reasons``: per row, "" unless it ended)."""
        led = self.core.ledger
        floats = led.of.T.copy()
        counts_f, counts_r = ints[K.Q_N_FILLS], ints[K.Q_N_REJECTED]
        fills = PerEnvRecords(self._labels, counts_f, led.fc, led.fv, fills=True)
        rejected = PerEnvRecords(self._labels, counts_r, led.rc, led.rq, fills=False)
        self._last_records = (weakref.ref(fills), weakref.ref(rejected))
        state = led.fst[: K.S_PEAK + 1].copy()  # cash, equity, peak after any autoreset
        return {
            "equity": state[K.S_EQUITY],
            "cash": state[K.S_CASH],
            "weights": led.w.copy(),
            "target_weights": led.target.copy(),
            "fees": floats[K.O_FEES],
            "slippage": floats[K.O_SLIP],
            "turnover": floats[K.O_TURNOVER],
            "fills": fills,
            "rejected": rejected,
            "n_fills": counts_f,
            "n_rejected": counts_r,
            "drawdown": 1.0 - state[K.S_EQUITY] / state[K.S_PEAK],
            "t": led.t.copy(),
            "timestamp": self._timestamps[led.t],
            "termination_reason": reasons,
        }

    def detach_records(self) -> None:
        """Copy out the last step's fills/rejected a caller still holds, before the ledger's buffers are reused."""
        for ref in self._last_records:
            held = ref()
            if held is not None:
                held.detach()

    def hours_ready(self) -> bool:
        """Whether `risk.hours` may step these accounts: no sub-env waits for a reset, and the reward is
        plain log growth (it takes that log itself)."""
        core = self.core
        return not self._prev_done.any() and core._reward_kind == 0 and core._reward_scale == 1.0

    def last_info(self) -> dict[str, Any]:
        """`step`'s info of the last step, for steps that ended no episode (`risk.hours` runs steps without infos)."""
        return self._info(self.core.ledger.oi.T.copy(), self._no_reasons.copy())

    @property  # type: ignore[override]
    def spec(self) -> KrakenSpotSpec | None:
        """The spec ``gym.make_vec`` sets; its ``to_json`` explains in-memory markets (`envs.spec`)."""
        return self.__dict__.get("_spec")

    @spec.setter
    def spec(self, value: Any) -> None:
        self.__dict__["_spec"] = KrakenSpotSpec.of(value)

    # ---------------------------------------------------------- helpers
    def _observation(self) -> dict[str, np.ndarray] | None:
        """The batched observation, or None when ``observations`` is False (see the class docstring)."""
        return self.core.observation() if self.observations else None

    def snapshot(self, i: int) -> PortfolioSnapshot:
        return snapshot_of(self.core, i)

    def action_to_weights(self, actions: np.ndarray) -> np.ndarray:
        """(num_envs, N) target weights of a batch of (num_envs, N+1) actions, or whole (num_envs, 2N+1)
        execution-mode actions (current weights where "keep")."""
        return self.core.action_to_weights(np.asarray(actions, dtype=np.float64))[0]

    def weights_to_action(self, weights: np.ndarray) -> np.ndarray:
        return BatchCore.weights_to_action(weights)


def _autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """NEXT_STEP (the default) or DISABLED (TorchRL's choice: ended sub-envs wait for a masked reset)."""
    names = {"next_step": AutoresetMode.NEXT_STEP, "disabled": AutoresetMode.DISABLED}
    value = names.get(mode.lower()) if isinstance(mode, str) else None
    if value is None:
        try:
            value = AutoresetMode(mode)
        except ValueError:
            value = None
    if value not in (AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED):
        raise ValueError(f"autoreset_mode: expected AutoresetMode.NEXT_STEP or AutoresetMode.DISABLED, got {mode!r}")
    return value  # type: ignore[return-value]
