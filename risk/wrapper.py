"""Gymnasium wrappers that put the risk projection between the policy and the env.

`RiskWrapper` is always the outermost wrapper. Every ``step(action)``:

1. reads the account through ``env.unwrapped.snapshot()`` (read-only `PortfolioSnapshot`);
2. turns the action into proposed target weights with ``env.unwrapped.action_to_weights``
   (an action with NaN/inf is not converted: the current weights are held, RISK-6; values
   outside [-1, 1] are clipped first, with a recorded reason). An action of the wrong shape
   or not numeric is a programming error (a policy built for another universe): ValueError;
3. projects them with `RiskProjector.project` and executes the result, passed back as an
   action through ``env.unwrapped.weights_to_action``. In the env's ``action_mode="execution"``
   the action is (2N+1,): only its first N+1 entries (the weights part) are checked and
   projected; the N urgencies are passed to the env unchanged after the executed weights;
4. writes ``info["risk"]`` (`RiskDecision.to_info`: proposed, executed, interventions with
   amounts, ladder level, drawdown, kill-switch state and triggers, halt) plus
   ``realised``: the weights the fills really produced, in the executed target's units
   (units after the step x the decision's prices / the decision's equity), and
   ``shortfall`` = executed - realised (orders the bar could not fill: participation cap,
   no bar at t+1, lot rounding); on halt it sets ``terminated=True`` with
   ``info["termination_reason"] = "halt"``; a truncation by an inner wrapper (gymnasium's
   ``TimeLimit``, from ``gym.make(..., max_episode_steps=N)``) gets
   ``info["termination_reason"] = "time_limit"``.

The cost gate reads the env's own cost model and, when the env carries signals, its
expected return at ``limits.cost_gate_horizon`` (`risk.cost_gate.cost_inputs_from_env`).

``RiskWrapper(env, limits)`` takes a `RiskLimits`, a profile name of `risk.limits.PRESETS`
(``"spec_a"``, ``"spec_b"``) or a mapping of limit fields. It is a gymnasium
``RecordConstructorArgs`` wrapper: ``gym.make(wrapped.spec)`` rebuilds it, and gymnasium's
``check_env`` passes on it.

Cost: the wrapper computes the correlation clusters of every refresh of the market when
it is built (`ClusterSchedule.precompute`), so a step only looks them up.

Episode boundaries: with ``new_account_on_reset=True`` (the default, for training and
evaluation: a new episode is a new account) ``reset`` restarts the high-water mark and
clears the kill switch and halt latch. With ``False`` (a persistent account, as in paper
trading) they survive ``reset`` and only the explicit, audited calls clear them
(`KillSwitch.reactivate`, `DrawdownLadder.reset`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, SupportsFloat, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv, VectorWrapper

from envs.data.market import MarketData
from envs.snapshot import PortfolioSnapshot
from risk.batch import AccountArrays, BatchProjector, RiskInfos
from risk.cost_gate import cost_inputs_from_env
from risk.hours import HourRunner
from risk.kernels import clip_action
from risk.limits import SPEC_A, RiskLimits, resolve_limits
from risk.projection import Intervention, RiskDecision, RiskProjector


@runtime_checkable
class RiskEnv(Protocol):
    """What `RiskWrapper` needs from ``env.unwrapped`` (`envs.kraken_spot.KrakenSpotEnv` has it)."""

    market: MarketData
    n_assets: int

    def snapshot(self) -> PortfolioSnapshot: ...

    def action_to_weights(self, action: np.ndarray) -> np.ndarray: ...

    def weights_to_action(self, weights: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class RiskVectorEnv(Protocol):
    """What `RiskVectorWrapper` needs from ``env.unwrapped`` (`envs.vector.KrakenSpotVectorEnv`):
    per-row snapshots, batched conversions and a way to end sub-env episodes."""

    market: MarketData
    n_assets: int

    def snapshot(self, i: int) -> PortfolioSnapshot: ...

    def action_to_weights(self, actions: np.ndarray) -> np.ndarray: ...

    def weights_to_action(self, weights: np.ndarray) -> np.ndarray: ...

    def end_episodes(self, mask: np.ndarray) -> None: ...


_NEEDS = ("market", "n_assets", "snapshot", "action_to_weights", "weights_to_action")


def _not_a(base: Any, protocol: str, needs: tuple[str, ...]) -> TypeError:
    missing = [m for m in needs if not hasattr(base, m)]
    return TypeError(f"the env {type(base).__name__} is not a {protocol}: it lacks {missing} (see risk.wrapper)")


def as_risk_env(base: Any) -> RiskEnv:
    """``base`` (an ``env.unwrapped``) typed as a `RiskEnv`; TypeError naming what it lacks if it is not one."""
    if not isinstance(base, RiskEnv):
        raise _not_a(base, "RiskEnv", _NEEDS)
    return base


def as_risk_vector_env(base: Any) -> RiskVectorEnv:
    """``base`` typed as a `RiskVectorEnv`; TypeError naming what it lacks if it is not one."""
    if not isinstance(base, RiskVectorEnv):
        raise _not_a(base, "RiskVectorEnv", (*_NEEDS, "end_episodes"))
    return base


def execution_mode(base: Any) -> bool:
    """Whether the env takes (2N+1,) actions: weights part, then one urgency per asset."""
    return getattr(base, "action_mode", "weights") == "execution"


def split_action(base: Any, action: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(weights part (N+1,), urgencies (N,) or None) of an env action, as float64 copies.

    Raises ValueError for an action that is not numeric or not of the env's shape ((N+1,), or
    (2N+1,) in execution mode).
    """
    n = int(base.n_assets)
    urgent = execution_mode(base)
    width = 2 * n + 1 if urgent else n + 1
    layout = "one score per asset, then cash" + (", then one urgency per asset" if urgent else "")
    try:
        a = np.array(action, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"RiskWrapper.step: action: expected a numeric array of shape ({width},) ({layout}), "
            f"got a non-numeric {type(action).__name__}"
        ) from None
    if a.shape != (width,):
        raise ValueError(
            f"RiskWrapper.step: action: expected shape ({width},) ({layout}), "
            f"got shape {a.shape} ({type(action).__name__})"
        )
    return (a[: n + 1].copy(), a[n + 1 :].copy()) if urgent else (a, None)


def sanitise_action(a: np.ndarray) -> tuple[bool, Intervention | None]:
    """Clip one action's weights part ``a`` (float64) to [-1, 1] in place, before the env's conversion.

    Returns (convertible, the recorded ``sanitise`` note or None): an action with NaN/inf is
    left as is and not converted (the current weights are held, RISK-6).
    """
    clipped = clip_action(a, np.empty(a.shape[0]))  # the same checks as np.isfinite / np.clip
    return clipped >= 0.0, _clip_note(clipped) if clipped != 0.0 else None


def action_to_proposal(base: RiskEnv, action: Any, current: np.ndarray) -> tuple[np.ndarray, Intervention | None]:
    """Proposed weights from an env action, sanitised (`sanitise_action`) before the env's own conversion.

    Raises ValueError for an action that is not numeric or not of the env's shape (`split_action`);
    in execution mode only the weights part is read (urgencies are not weights).
    """
    a, _ = split_action(base, action)
    ok, note = sanitise_action(a)
    if not ok:
        return current.copy(), note
    return np.asarray(base.action_to_weights(a), dtype=np.float64), note


def realised_weights(before: Any, units: np.ndarray) -> np.ndarray:
    """Weights the step's fills produced, in the units of the target weights decided at ``before``.

    ``units after the fills x prices at the decision / equity at the decision``: it compares
    with the executed target without the drift of the next bar or the fees just paid.
    """
    eq = float(before.equity)
    if not eq > 0:
        return np.zeros_like(np.asarray(before.weights, dtype=np.float64))
    return np.asarray(units, dtype=np.float64) * np.asarray(before.prices, dtype=np.float64) / eq


def units_after(base: Any, row: int | None = None) -> np.ndarray:
    """The account's units now: read from a KrakenSpot ledger directly (cheap), else a snapshot."""
    core = getattr(base, "core", None)
    if core is not None:
        return core.ledger.units[0 if row is None else row]
    return np.asarray((base.snapshot() if row is None else base.snapshot(row)).units)


def _info(decision: RiskDecision, pre: Intervention | None, action: Any) -> dict[str, Any]:
    info = decision.to_info()
    if pre is not None:
        info["interventions"].insert(0, pre.to_dict())
    info["action"] = action
    return info


class RiskWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Applies `RiskProjector` to every action of a KrakenSpot env (see the module docstring)."""

    def __init__(
        self,
        env: gym.Env,
        limits: RiskLimits | str | Mapping[str, Any] = SPEC_A,
        *,
        projector: RiskProjector | None = None,
        new_account_on_reset: bool = True,
    ) -> None:
        resolved = resolve_limits(limits)
        recorded: dict[str, Any] = {"limits": limits, "new_account_on_reset": new_account_on_reset}
        if projector is not None:
            recorded["projector"] = projector
        gym.utils.RecordConstructorArgs.__init__(self, **recorded)
        gym.Wrapper.__init__(self, env)
        base = self._base = as_risk_env(env.unwrapped)
        if projector is None:
            costs = cost_inputs_from_env(base, resolved.cost_gate_horizon)
            projector = RiskProjector(resolved, base.market, costs)
        self.projector = projector
        self.projector.clusters.precompute()  # once per market, not inside the step loop
        self.new_account_on_reset = new_account_on_reset
        self.last_decision: RiskDecision | None = None

    @property
    def limits(self) -> RiskLimits:
        return self.projector.limits

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        base = self._base
        if base.market is not self.projector.market:
            costs = cost_inputs_from_env(base, self.projector.limits.cost_gate_horizon)
            self.projector.set_market(base.market, costs)
            self.projector.clusters.precompute()
        if self.new_account_on_reset:
            self.projector.reset_state()
        self.last_decision = None
        info["risk"] = {
            "kill_switch": {"engaged": self.projector.kill_switch.engaged},
            "halt": self.projector.ladder.halted,
        }
        return obs, info

    def decide(self, action: Any) -> tuple[RiskDecision, Intervention | None]:
        """The decision for ``action`` at the current state, without stepping the env."""
        decision, pre, _ = self._decide(action)
        return decision, pre

    def _decide(self, action: Any) -> tuple[RiskDecision, Intervention | None, PortfolioSnapshot]:
        base = self._base
        snap = base.snapshot()
        proposal, pre = action_to_proposal(base, action, np.asarray(snap.weights, dtype=np.float64))
        return self.projector.project(snap, proposal), pre, snap

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        decision, pre, before = self._decide(action)
        base = self._base
        executed = base.weights_to_action(decision.target)
        urgency = split_action(base, action)[1] if execution_mode(base) else None
        if urgency is not None:  # execution mode: the urgencies pass through unchanged
            executed = np.concatenate([executed, urgency])
        obs, reward, terminated, truncated, info = self.env.step(executed)
        info["risk"] = _info(decision, pre, action)
        realised = realised_weights(before, units_after(base))
        info["risk"]["realised"] = realised
        info["risk"]["shortfall"] = decision.target - realised
        if decision.halted:
            terminated = True
            info["termination_reason"] = "halt"
        elif truncated and "termination_reason" not in info:
            info["termination_reason"] = "time_limit"  # an inner TimeLimit ended it, not the env
        self.last_decision = decision
        return obs, reward, terminated, truncated, info


class RiskVectorWrapper(VectorWrapper):
    """The same projection per sub-env of a vectorised KrakenSpot env (one account each).

    The vector env must expose ``snapshot(i)``, ``market``, ``n_assets`` and batched
    ``action_to_weights`` / ``weights_to_action`` (`envs.vector.KrakenSpotVectorEnv`).
    Autoreset is gymnasium's ``NEXT_STEP``: the step after a sub-env's episode ended resets
    it and ignores its action; the wrapper then starts a new account for that sub-env
    (``infos["risk"][i]`` is ``{"autoreset": True}``). On halt the wrapper reports
    ``terminated`` and asks the env to end that sub-env's episode (``end_episodes(mask)``)
    so that it is reset at the next step. ``infos["risk"]`` is a list of per-sub-env dicts;
    with ``lazy_info=True`` it is a `risk.batch.RiskInfos` sequence of the same dicts, each
    built when first read (a training loop that never reads them does not pay for them).

    Cost: on a `KrakenSpotVectorEnv` (it has a ``core``) every account is projected in one
    numba call (`risk.batch`); a row with a trigger, a starting halt or anything unusual
    goes through `RiskProjector.project`, as every row did before: the results are the same.
    `run_hours` goes further for callers that read no per-step infos: several steps in one
    compiled call (`risk.hours`), stopping before any step that needs this Python path.
    """

    def __init__(self, env: VectorEnv, limits: RiskLimits | str | Mapping[str, Any] = SPEC_A, *,
                 lazy_info: bool = False) -> None:
        super().__init__(env)
        base = self._base = as_risk_vector_env(env.unwrapped)
        resolved = resolve_limits(limits)
        first = RiskProjector(resolved, base.market, cost_inputs_from_env(base, resolved.cost_gate_horizon))
        first.clusters.precompute()
        # one account per sub-env: forks share the precomputed market inputs, not the account state
        self.projectors: list[RiskProjector] = [first] + [first.fork() for _ in range(1, env.num_envs)]
        self.lazy_info = bool(lazy_info)
        self._ended = np.zeros(env.num_envs, dtype=bool)
        self._batch = BatchProjector(self.projectors) if hasattr(base, "core") else None
        self._hours: HourRunner | None = None  # built at the first `run_hours`

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, infos = self.env.reset(seed=seed, options=options)
        mask = (options or {}).get("reset_mask")
        rows = range(self.num_envs) if mask is None else np.flatnonzero(np.asarray(mask)).tolist()
        for i in rows:  # a masked reset starts new accounts for those sub-envs only
            self.projectors[i].reset_state()
            self._ended[i] = False
        return obs, infos

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        base = self._base
        n, k = self.num_envs, int(base.n_assets)
        raw = np.array(actions, dtype=np.float64, copy=True)
        width = 2 * k + 1 if execution_mode(base) else k + 1
        if raw.shape != (n, width):
            raise ValueError(f"actions: expected shape {(n, width)}, got {raw.shape}")
        urgency = raw[:, k + 1 :] if width != k + 1 else None  # passed through unchanged
        acts = raw[:, : k + 1].copy()  # sanitised in place, row by row, like RiskWrapper's
        batch = self._batch
        if batch is not None and batch.projectors is self.projectors and batch.usable():
            targets, halted, finish = self._decide_batched(batch, raw, acts)
        else:
            targets, halted, finish = self._decide_rows(raw, acts)
        executed = base.weights_to_action(targets)
        if urgency is not None:
            executed = np.concatenate([executed, urgency], axis=1)
        obs, rewards, terms, truncs, infos = self.env.step(executed)
        risk = finish()
        if self._ended.any():
            for j in np.flatnonzero(self._ended).tolist():
                self.projectors[j].reset_state()
        terms = np.array(terms, dtype=bool, copy=True)
        given = infos.get("termination_reason")
        reasons = np.array(given if given is not None else [""] * n, dtype=object, copy=True)
        if np.any(halted):
            terms |= halted
            reasons[halted] = "halt"
            base.end_episodes(halted)  # autoreset these at the next step
        infos = dict(infos)
        infos["risk"] = risk
        infos["termination_reason"] = reasons
        self._ended = terms | np.asarray(truncs, dtype=bool)
        return obs, rewards, terms, truncs, infos

    def run_hours(self, first: np.ndarray | None, hours: int, live: np.ndarray | None = None,
                  total: np.ndarray | None = None) -> int:
        """Up to ``hours`` steps in one compiled call (`risk.hours`); returns how many ran (0 to ``hours``).

        Step 0 sends the (num_envs, W) env actions ``first`` (None: all zeros, "keep"), the
        later steps send zeros. The steps' rewards are ``hour_rewards`` (steps run, num_envs);
        with ``total`` (num_envs,) and ``live`` (bool mask) given, each step's reward is also
        added to ``total`` where ``live``, in step order. It stops before the first step that
        `step` would treat specially (a trigger, halt, exchange down, an episode end: see
        `risk.hours`); the caller then makes that step with `step`, which gives the same
        results, and may call again. The steps it runs produce no infos (``infos["risk"]``,
        fills): for callers that would discard them (`agents.vec.LevelVecEnv`); afterwards the
        env's ``last_info()`` is the last step's. Returns 0 at once where the batched path does
        not apply (no `BatchProjector`, projectors changed, a sub-env waiting for its reset,
        another reward than plain log growth).
        """
        batch, base = self._batch, self._base
        if first is not None:
            k = int(base.n_assets)
            shape = (self.num_envs, 2 * k + 1 if execution_mode(base) else k + 1)
            first = np.asarray(first, dtype=np.float64)
            if first.shape != shape:
                raise ValueError(f"run_hours: first: expected shape {shape}, got {first.shape}")
        ready = getattr(base, "hours_ready", None)
        if (batch is None or batch.projectors is not self.projectors or ready is None or not ready()
                or self._ended.any() or not batch.usable()):
            return 0
        runner = self._hours
        if runner is None:
            runner = self._hours = HourRunner(batch, base.core)  # type: ignore[attr-defined]
        base.detach_records()  # type: ignore[attr-defined]
        return runner.run(first, int(hours), live, total)

    @property
    def hour_rewards(self) -> np.ndarray:
        """The rewards of the steps the last `run_hours` ran, (steps, num_envs) (none before the first)."""
        return self._hours.rewards if self._hours is not None else np.zeros((0, self.num_envs))

    def _decide_rows(self, raw: np.ndarray, acts: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
        """The per-row path: a snapshot and `RiskProjector.project` per sub-env (any `RiskVectorEnv`).

        Returns the targets, the halted rows and a function that, after the env's step,
        gives ``infos["risk"]``.
        """
        base = self._base
        n, k = self.num_envs, int(base.n_assets)
        notes = [sanitise_action(acts[i]) for i in range(n)]
        for i, (ok, _) in enumerate(notes):
            if not ok:
                acts[i] = 0.0  # not converted: the current weights are held
        proposals = np.asarray(base.action_to_weights(acts))
        targets = np.zeros((n, k))
        risk: list[dict[str, Any]] = []
        halted = np.zeros(n, dtype=bool)
        snaps = []
        ended = self._ended.copy()
        for i in range(n):
            snap = base.snapshot(i)
            snaps.append(snap)
            current = np.asarray(snap.weights, dtype=np.float64)
            if ended[i]:  # the env resets this sub-env now and ignores its action
                targets[i] = current
                risk.append({"autoreset": True})
                continue
            ok, pre = notes[i]
            d = self.projectors[i].project(snap, proposals[i] if ok else current.copy())
            targets[i] = d.target
            halted[i] = d.halted
            risk.append(_info(d, pre, raw[i]))

        def finish() -> list[dict[str, Any]]:
            for i in range(n):
                if not ended[i]:
                    realised = realised_weights(snaps[i], units_after(base, i))
                    risk[i]["realised"] = realised
                    risk[i]["shortfall"] = targets[i] - realised
            return risk

        return targets, halted, finish

    def _decide_batched(self, batch: BatchProjector, raw: np.ndarray, acts: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, Any]:
        """The batched path (`risk.batch`): same targets, halts and infos as `_decide_rows`."""
        base = self._base
        amounts, n_noted = batch.clip(acts)
        ok = amounts >= 0.0
        all_ok = not n_noted or bool(ok.all())
        notes = {i: _clip_note(float(amounts[i])) for i in np.flatnonzero(amounts != 0.0).tolist()} if n_noted else {}
        if not all_ok:
            acts[~ok] = 0.0  # not converted: the current weights are held
        proposals = np.asarray(base.action_to_weights(acts))
        core = base.core  # type: ignore[attr-defined]
        acc = AccountArrays.of(core)
        ended = self._ended.copy()
        props = np.array(proposals, dtype=np.float64)
        if not all_ok:
            props[~ok] = acc.weights[~ok]
        d = batch.project(acc, props, ended)
        targets = d.out[:, 1].copy()
        halted = (d.level == 3) & ~d.slow & ~ended
        slow: dict[int, RiskDecision] = {}
        for i in np.flatnonzero(d.slow).tolist() if d.any_slow else ():
            snap = base.snapshot(i)
            current = np.asarray(snap.weights, dtype=np.float64)
            slow[i] = decision = self.projectors[i].project(snap, proposals[i] if ok[i] else current.copy())
            targets[i] = decision.target
            halted[i] = decision.halted
        if ended.any():
            targets[ended] = acc.weights[ended]

        def finish() -> Sequence[dict[str, Any]]:
            realised = acc.realised(core.ledger.units)
            infos = RiskInfos(batch, d, slow, notes, raw, ended, realised, targets - realised)
            return infos if self.lazy_info else list(infos)

        return targets, halted, finish


def _clip_note(amount: float) -> Intervention:
    """The ``sanitise`` note of a non-zero clip amount (-1.0: NaN/inf, the action held), per row or batched."""
    if amount < 0.0:
        return Intervention("sanitise", (), 0.0, "NaN/inf in action: held current weights")
    return Intervention("sanitise", (), amount, "action clipped to [-1, 1]")


def make_risk_wrapped(
    env: gym.Env, limits: RiskLimits | str | Mapping[str, Any] = SPEC_A, **kwargs: Any
) -> RiskWrapper:
    """Wrap ``env`` with the risk layer as its outermost wrapper."""
    return RiskWrapper(env, limits, **kwargs)
