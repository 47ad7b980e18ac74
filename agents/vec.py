"""stable-baselines3 vector envs over the package's own vector env and risk layer.

`LevelVecEnv` is an SB3 ``VecEnv`` whose sub-envs are the rows of one
`envs.vector.KrakenSpotVectorEnv` (one compiled call steps every account) inside
`risk.RiskVectorWrapper` (the risk layer stays outermost: every hourly order the agent or
its executor sends is projected). The inner env runs with ``autoreset_mode="disabled"``;
this adapter resets ended rows at once with a reset mask, as SB3 expects, and puts the
last observation in ``info["terminal_observation"]`` (and ``TimeLimit.truncated``).
It reads neither the inner env's observation nor ``infos["risk"]``, so it turns both off
(``observations=False``, ``lazy_info=True``): per hour the inner stack then pays only for
what a level uses. For the same reason the hours in which nothing needs the wrappers'
Python path (no risk trigger, halt, exchange outage or episode end) run compiled
(`risk.RiskVectorWrapper.run_hours`, `risk.hours`): the strategic level's K hours in one
call, the hourly levels' hours one at a time; ``fast_hours = False`` sends every hour
through the wrappers instead, with the same results bit for bit
(tests/agents/test_level_vec_hours.py).

Three levels (the observations are `agents.views`):

- ``flat``: one agent step = one hour; the action is the env's own ``(N+1,)`` action.
- ``strategic``: one agent step = ``every_hours`` hours (K, default 24). At the first hour
  the target (the env's mapping of the action) is sent with the fixed execution rule of
  stage 1 (close the whole gap with the env's limit-first orders); the next K-1 hours send
  "keep" (no new orders). The reward is the sum of the hourly log growths: log(E_end/E_start).
  With a `agents.prior.StrategicPrior` (``prior``), the agent's action is a tilt on the
  predictor's top-k allocation, mapped to the env action by `PriorAllocation.env_actions`
  at the decision bar (the tactical level's frozen allocator too).
- ``tactical``: one agent step = one hour, under a frozen strategic policy that sets the
  target every K hours. The action is ``(2N,)`` in [-1, 1]: ``frac_i = (a_i + 1) / 2`` of
  the gap to the target is sent now, and (env ``action_mode="execution"``) ``a_{N+i} > 0``
  makes asset i's order a market order, else limit-first. Reward (`tactical_reward`):

      r_t = log(E_{t+1}/E_t) - lambda_is * IS_t - lambda_te * TE_{t+1}
      IS_t  = sum over this hour's fills of s * q * (p_fill - p_arrival) / E_t
              (s = +1 buy, -1 sell; p_arrival = the asset's close at the hour the
              strategic target was set: implementation shortfall against the decision price)
      TE_{t+1} = 0.5 * sum_i |w_{t+1,i} - target_i|  (tracking error after the step)

  Fees and slippage are inside the log growth already; IS charges, on top, the price
  drift and slippage against the decision price (execution cost counted once in equity
  and once, weighted by lambda_is, as shortfall: by design, to make the executor care
  about its fills); TE charges staying away from the target. The levels need the env's
  ``log_growth`` reward with ``reward_scale`` 1 (checked).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from agents.prior import StrategicPrior
from agents.views import ViewBuilder
from envs.numba_utils import JIT, njit

StrategicFn = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class TacticalReward:
    """Weights of the tactical reward's execution terms (see the module docstring)."""

    shortfall: float = 1.0  # lambda_is
    tracking: float = 0.002  # lambda_te, per hour


def gap_action(weights: np.ndarray, target: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """(B, N+1) env action that moves ``frac`` of each asset's gap to ``target`` now (rest cash)."""
    w = np.clip(weights + frac * (target - weights), 0.0, None)
    total = w.sum(axis=1, keepdims=True)
    w = np.where(total > 1.0, w / np.maximum(total, 1e-300), w)
    return np.concatenate([w, np.clip(1.0 - w.sum(axis=1, keepdims=True), 0.0, None)], axis=1)


def shortfall_cost(fills: Sequence[dict[str, Any]], arrival: np.ndarray, asset_index: dict[str, int],
                   equity_before: float) -> float:
    """IS_t of one account: signed fill cost against the arrival prices, per unit of equity."""
    if not fills or equity_before <= 0.0:
        return 0.0
    cost = 0.0
    for f in fills:
        i = asset_index[f["asset"]]
        sign = 1.0 if f["side"] == "buy" else -1.0
        cost += sign * float(f["qty"]) * (float(f["price"]) - float(arrival[i]))
    return cost / equity_before


def shortfall_costs(counts: np.ndarray, codes: np.ndarray, values: np.ndarray, arrival: np.ndarray,
                    equity_before: np.ndarray) -> np.ndarray:
    """`shortfall_cost` of every account (B,), read from the step's fill records instead of its fill dicts.

    ``counts`` (B,) fills per row, ``codes`` (B, M) fill codes ``(asset * 2 + buy) * 2 + maker``
    and ``values`` (B, M, 3) (qty, price, fee): the ledger's buffers right after the step
    (`envs.step_info`). The same operations in the same order as `shortfall_cost`, compiled
    (`_shortfall_rows`), so the same floats without a dict per fill.
    """
    out = np.empty(len(counts))
    _shortfall_rows(np.asarray(counts, dtype=np.int64), codes, values, np.asarray(arrival, dtype=np.float64),
                    np.asarray(equity_before, dtype=np.float64), out)
    return out


@njit(**JIT)
def _shortfall_rows(counts: np.ndarray, codes: np.ndarray, values: np.ndarray, arrival: np.ndarray,
                    equity: np.ndarray, out: np.ndarray) -> None:
    for i in range(counts.shape[0]):
        n = counts[i]
        if n == 0 or equity[i] <= 0.0:
            out[i] = 0.0
            continue
        cost = 0.0
        for j in range(n):
            code = codes[i, j]
            sign = 1.0 if (code // 2) % 2 == 1 else -1.0
            cost += sign * values[i, j, 0] * (values[i, j, 1] - arrival[i, code // 4])
        out[i] = cost / equity[i]


class LevelVecEnv(VecEnv):
    """SB3 VecEnv for one policy level over ``RiskVectorWrapper(KrakenSpotVectorEnv(...))``."""

    render_mode = None  # SB3 asks every VecEnv for it

    def __init__(
        self,
        inner: Any,
        level: str,
        every_hours: int = 24,
        strategic: StrategicFn | None = None,
        reward: TacticalReward = TacticalReward(),
        halt_penalty: float = 0.0,
        prior: StrategicPrior | None = None,
    ) -> None:
        base = inner.unwrapped
        if getattr(base, "autoreset_mode", None) is None or str(base.autoreset_mode).lower().find("disabled") < 0:
            raise ValueError("LevelVecEnv: the inner KrakenSpotVectorEnv must use autoreset_mode='disabled'")
        if level not in ("flat", "strategic", "tactical"):
            raise ValueError(f"level: expected flat, strategic or tactical, got {level!r}")
        if level == "tactical" and strategic is None:
            raise ValueError("LevelVecEnv(level='tactical'): needs the frozen strategic policy")
        if every_hours < 1:
            raise ValueError(f"every_hours: expected >= 1, got {every_hours}")
        if not (np.isfinite(halt_penalty) and halt_penalty >= 0.0):
            raise ValueError(f"halt_penalty: expected a finite value >= 0, got {halt_penalty!r}")
        self.halt_penalty = float(halt_penalty)
        env_cfg = base.config
        if env_cfg.reward != "log_growth" or env_cfg.reward_scale != 1.0:
            raise ValueError(
                f"LevelVecEnv: the level rewards are built on the env's log growth; got env.reward="
                f"{env_cfg.reward!r}, env.reward_scale={env_cfg.reward_scale} (use log_growth, 1.0)"
            )
        if hasattr(inner, "lazy_info"):  # this adapter never reads infos["risk"]: build them only if read
            inner.lazy_info = True
        if hasattr(base, "observations"):  # nor the env's own observation: it builds the level's views
            base.observations = False
        self.inner, self.base, self.core = inner, base, base.core
        self.level, self.every_hours, self.strategic, self.reward_weights = level, int(every_hours), strategic, reward
        self.n_assets = n = int(base.n_assets)
        self.execution = getattr(base.config, "action_mode", "weights") == "execution"
        self.prior = prior.allocation(self.core) if prior is not None and level != "flat" else None
        prior_weights = None if self.prior is None else self.prior.weights
        self.view = ViewBuilder(level, self.core, prior_weights if level == "strategic" else None)
        self.strategic_view = ViewBuilder("strategic", self.core, prior_weights) if level == "tactical" else None
        if level == "tactical":
            action_space = spaces.Box(-1.0, 1.0, (2 * n,), np.float32)
        else:
            action_space = spaces.Box(-1.0, 1.0, (n + 1,), np.float32)
        super().__init__(base.num_envs, self.view.space, action_space)
        self._rows = np.arange(self.num_envs)
        self._everyone = np.ones(self.num_envs, dtype=bool)
        self._actions: np.ndarray | None = None
        self._seed: int | None = None
        self.target = np.zeros((self.num_envs, n))
        self.arrival = np.ones((self.num_envs, n))
        self.phase = np.zeros(self.num_envs, dtype=np.int64)
        self.asset_index = {a: i for i, a in enumerate(base.market.assets)}
        self.env_hours = 0  # hourly env steps taken (all rows together count once)
        # hours in which nothing needs the wrappers' Python path run compiled, the strategic level's many
        # at a time (`risk.hours`); False: every hour through the wrappers (the same results)
        self.fast_hours = True

    # ------------------------------------------------------------ SB3 API
    def reset(self) -> dict[str, np.ndarray]:  # type: ignore[override]
        self.inner.reset(seed=self._seed)
        self._seed = None
        self.phase[:] = 0
        if self.level == "tactical":
            self._new_targets(self._rows)
        return self._obs(self._rows)

    def seed(self, seed: int | None = None) -> Sequence[int | None]:  # type: ignore[override]
        self._seed = seed
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)

    def step_wait(self) -> Any:
        actions = self._actions
        if actions is None:
            raise RuntimeError("step_wait() without step_async()")
        self._actions = None
        if self.level == "strategic":
            return self._step_strategic(self._env_actions(self._rows, actions))
        if self.level == "tactical":
            return self._step_tactical(actions)
        rew, term, trunc, infos = self._one_hour(actions)
        return self._finish(rew, term, trunc, infos)

    def close(self) -> None:
        self.inner.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        return [getattr(self, method_name)(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)

    # ----------------------------------------------------------- internals
    def _obs(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        if self.level == "tactical":
            return self.view.build(rows, self.target[rows], self.phase[rows] / self.every_hours)
        return self.view.build(rows)

    def _hour(self, env_actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        self.env_hours += 1
        return self.inner.step(env_actions)  # type: ignore[no-any-return]

    def _env_actions(self, rows: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The env actions of strategic ``actions`` of ``rows``: as they are, or the residual on the prior."""
        if self.prior is None:
            return actions
        return self.prior.env_actions(self.core.ledger.t[rows], actions)

    def _one_hour(self, env_actions: np.ndarray) -> tuple[np.ndarray, Any, Any, dict[str, Any]]:
        """One hour of the hourly levels: compiled (`RiskVectorWrapper.run_hours`) when nothing in it
        needs the wrappers' Python path, else `_hour`; the same rewards, flags, infos and states."""
        run_hours = getattr(self.inner, "run_hours", None) if self.fast_hours else None
        if run_hours is not None and run_hours(env_actions, 1):
            self.env_hours += 1
            none = np.zeros(self.num_envs, dtype=bool)
            return self.inner.hour_rewards[0].copy(), none, none.copy(), self.base.last_info()
        _, rew, term, trunc, infos = self._hour(env_actions)
        return rew, term, trunc, infos

    def _new_targets(self, rows: np.ndarray) -> None:
        """The frozen strategic policy sets the target of ``rows`` (tactical level)."""
        if rows.size == 0:
            return
        assert self.strategic is not None and self.strategic_view is not None
        act = np.asarray(self.strategic(self.strategic_view.build(rows)), dtype=np.float64).reshape(rows.size, -1)
        full = np.zeros((self.num_envs, self.n_assets + 1))
        full[rows] = self._env_actions(rows, act)
        weights = np.asarray(self.base.action_to_weights(full))
        self.target[rows] = weights[rows]
        t = self.core.ledger.t[rows]
        self.arrival[rows] = self.core.arrays.mark[t]

    def _step_strategic(self, actions: np.ndarray) -> Any:
        """K hours: ``actions`` (B, N+1 env actions) at the first, "keep" after; rows that end idle till the last.

        Hours in which nothing ends and no risk rule needs its audited Python path run many at a
        time in one compiled call (`RiskVectorWrapper.run_hours`, `risk.hours`); the others go
        through `_hour` as before. Both give the same rewards and states bit for bit.
        """
        n_env = self.num_envs
        total = np.zeros(n_env)
        done = np.zeros(n_env, dtype=bool)
        term_out = np.zeros(n_env, dtype=bool)
        trunc_out = np.zeros(n_env, dtype=bool)
        terminal: dict[int, dict[str, np.ndarray]] = {}
        last_infos: list[dict[str, Any]] = [{} for _ in range(n_env)]
        keep = np.zeros_like(actions)
        infos: dict[str, Any] = {}
        run_hours = getattr(self.inner, "run_hours", None) if self.fast_hours else None
        k, last_fast = 0, False
        while k < self.every_hours:
            if run_hours is not None:
                ran = run_hours(actions if k == 0 else None, self.every_hours - k, ~done, total)
                self.env_hours += ran
                k += ran
                last_fast = ran > 0
                if k == self.every_hours:
                    break
            act = actions if k == 0 else keep
            some_done = bool(done.any())  # rows that ended earlier in this step idle (and earn nothing)
            _, rew, term, trunc, infos = self._hour(np.where(done[:, None], 0.0, act) if some_done else act)
            last_fast = False
            k += 1
            ended = np.asarray(term) | np.asarray(trunc)
            if some_done:
                live = ~done
                total[live] += rew[live]
                ended &= live
            else:
                total += rew
            if ended.any():  # a row's info is the one of the hour its episode ended
                total -= self._halt_charge(ended, infos)
                for row, info in zip(np.flatnonzero(ended).tolist(), _row_infos(infos, ended), strict=True):
                    last_infos[row] = info
                self._keep_terminal(ended, terminal)
                term_out |= ended & np.asarray(term)
                trunc_out |= ended & np.asarray(trunc) & ~np.asarray(term)
                done |= ended
                self.inner.reset(options={"reset_mask": ended})
        if last_fast:  # the last hour ran compiled: its info, as `_hour` would have returned it
            infos = self.base.last_info()
        if not done.all():  # the others': the last hour's
            for row, info in zip(np.flatnonzero(~done).tolist(), _row_infos(infos, ~done), strict=True):
                last_infos[row] = info
        return self._package(total, done, term_out, trunc_out, terminal, last_infos)

    def _step_tactical(self, actions: np.ndarray) -> Any:
        n = self.n_assets
        led = self.core.ledger
        frac = (np.clip(actions[:, :n], -1.0, 1.0) + 1.0) / 2.0
        weights = led.w.copy()
        env_action = gap_action(weights, self.target, frac)
        if self.execution:
            env_action = np.concatenate([env_action, actions[:, n:]], axis=1)
        eq_before = led.equity.copy()
        rew, term, trunc, infos = self._one_hour(env_action)
        rew = np.array(rew, dtype=np.float64, copy=True)
        w_after = led.w
        rw = self.reward_weights
        rew -= rw.shortfall * shortfall_costs(infos["n_fills"], led.fc, led.fv, self.arrival, eq_before)
        rew -= rw.tracking * 0.5 * np.abs(w_after - self.target).sum(axis=1)
        self.phase += 1
        return self._finish(rew, term, trunc, infos)

    def _finish(self, rew: np.ndarray, term: Any, trunc: Any, infos: dict[str, Any]) -> Any:
        """SB3 packaging of an hourly step: reset ended rows now, terminal obs in their info."""
        term = np.asarray(term, dtype=bool)
        trunc = np.asarray(trunc, dtype=bool)
        done = term | trunc
        rew = rew - self._halt_charge(done, infos)
        terminal: dict[int, dict[str, np.ndarray]] = {}
        row_infos = _row_infos(infos, self._everyone)
        if done.any():
            self._keep_terminal(done, terminal)
            self.inner.reset(options={"reset_mask": done})
        if self.level == "tactical":  # new targets (after any reset) before the next view is built
            self.phase[done] = 0
            due = np.flatnonzero(done | (self.phase >= self.every_hours))
            self.phase[due] = 0
            self._new_targets(due)
        return self._package(np.asarray(rew, dtype=np.float64), done, term, trunc & ~term, terminal, row_infos)

    def _halt_charge(self, ended: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
        """``halt_penalty`` for each row whose episode the drawdown ladder's halt ended now, else 0.

        A halt freezes the account in cash for the rest of a held-out period; in training it
        merely ends an episode, which a short-horizon discount barely feels. The charge makes
        the level pay for it (0 by default: the reward stays pure log growth).
        """
        out = np.zeros(self.num_envs)
        reasons = infos.get("termination_reason")
        if self.halt_penalty == 0.0 or reasons is None or not ended.any():
            return out
        halted = np.array([bool(ended[i]) and reasons[i] == "halt" for i in range(self.num_envs)])
        out[halted] = self.halt_penalty
        return out

    def _keep_terminal(self, ended: np.ndarray, terminal: dict[int, dict[str, np.ndarray]]) -> None:
        """The last observation of each ended row, taken before its masked reset (SB3's terminal_observation)."""
        rows = np.flatnonzero(ended)
        view = self._obs(rows)
        for j, i in enumerate(rows.tolist()):
            terminal[i] = {key: v[j] for key, v in view.items()}

    def _package(self, rew: np.ndarray, done: np.ndarray, term: np.ndarray, trunc: np.ndarray,
                 terminal: dict[int, dict[str, np.ndarray]], infos: list[dict[str, Any]]) -> Any:
        for i, obs in terminal.items():
            infos[i]["terminal_observation"] = obs
            infos[i]["TimeLimit.truncated"] = bool(trunc[i])
        return self._obs(self._rows), rew.astype(np.float32), done.copy(), infos


_INFO_KEYS = ("equity", "fees", "slippage", "turnover", "drawdown")


def _row_infos(infos: dict[str, Any], rows: np.ndarray) -> list[dict[str, Any]]:
    """The ``rows`` (bool mask) of the vector env's batched info: the scalar keys a callback needs.

    Each column is converted once (``tolist`` of a float64 array gives the floats
    ``float(x[i])`` gives), not once per row and key.
    """
    every = bool(rows.all())
    keys = [k for k in _INFO_KEYS if k in infos]
    columns = [_column(infos[k], rows, every) for k in keys]
    out = [dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)] if keys else [
        {} for _ in range(int(np.count_nonzero(rows)))]
    reason = infos.get("termination_reason")
    if reason is not None:
        for d, r in zip(out, np.asarray(reason, dtype=object)[rows].tolist(), strict=True):
            if r:
                d["termination_reason"] = str(r)
    return out


def _column(values: Any, rows: np.ndarray, every: bool) -> list[float]:
    a = np.asarray(values, dtype=np.float64)
    return (a if every else a[rows]).tolist()  # type: ignore[no-any-return]


__all__ = ["LevelVecEnv", "TacticalReward", "gap_action", "shortfall_cost", "shortfall_costs"]
