"""Trained policies as named policy objects, for `agents.baselines.run_policy` and paper trading.

They follow the baselines' protocol (``bind(env)``, ``reset()``, ``act(obs, info)``), so a
trained policy is evaluated by exactly the code that evaluates the baselines, through the
same env, fees and risk layer. ``act`` ignores the env's raw observation and builds the
level's view (`agents.views`) from the bound env's arrays at the current decision bar: the
same function the training vector envs call. Normalisation statistics are the ones saved
with each model, frozen (``training=False``).

- `FlatPolicy`: the single-level ablation, one env action per hour.
- `HierarchicalPolicy`: the strategic model sets a target every K hours (its action a tilt
  on the predictor prior it was trained with, `agents.prior`: ``prior.json`` next to a saved
  model, or ``prior=`` for a model held in memory); the executor is
  the trained tactical model (``executor="tactical"``: the env must run with
  ``action_mode="execution"``) or the fixed stage-1 rule (``executor="fixed"``: send the
  target at the decision hour, then hold).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from agents.prior import PriorAllocation, StrategicPrior
from agents.training import frozen_policy, load_level
from agents.vec import gap_action
from agents.views import ViewBuilder

EXECUTORS = ("tactical", "fixed")
Level = tuple[Any, Any]  # (an SB3 model, its VecNormalize or None): a level held in memory
_ROW = np.array([0])


class _Trained:
    name = "policy"

    def __init__(self) -> None:
        self.core: Any = None
        self.n_assets = 0

    def bind(self, env: Any) -> _Trained:
        base = env.unwrapped
        self.core = base.core
        self.n_assets = int(base.n_assets)
        self.execution = getattr(base.config, "action_mode", "weights") == "execution"
        self._on_bind(base)
        return self

    def _on_bind(self, base: Any) -> None:
        pass

    def reset(self) -> None:
        pass

    def _check_bound(self) -> None:
        if self.core is None:
            raise RuntimeError(f"{type(self).__name__}: call bind(env) before act()")


class FlatPolicy(_Trained):
    """The flat PPO ablation: one hourly action from the flat view."""

    def __init__(self, folder: str | Path | None, algo: str = "ppo", name: str = "flat_ppo", *,
                 level: Level | None = None) -> None:
        super().__init__()
        self.name = name
        model, norm = level if level is not None else load_level(Path(str(folder)), algo)
        self._act = frozen_policy(model, norm)
        self._n_model = int(model.action_space.shape[0]) - 1  # type: ignore[index]

    def _on_bind(self, base: Any) -> None:
        if self._n_model != self.n_assets:
            raise ValueError(f"FlatPolicy: trained on {self._n_model} assets, env has {self.n_assets}")
        self.view = ViewBuilder("flat", self.core)

    def act(self, obs: Mapping[str, np.ndarray], state: Any) -> np.ndarray:
        self._check_bound()
        action = self._act(self.view.build(_ROW))[0]
        if self.execution:  # same env as the hierarchy: the flat policy trades limit-first
            return np.concatenate([action, np.full(self.n_assets, -1.0)])
        return action


class HierarchicalPolicy(_Trained):
    """Strategic allocator every K hours over the tactical executor (or the fixed rule)."""

    def __init__(self, folder: str | Path | None, algo: str = "ppo", every_hours: int = 24,
                 executor: str = "tactical", name: str = "policy", *,
                 levels: Mapping[str, Level] | None = None, prior: StrategicPrior | None = None) -> None:
        super().__init__()
        if executor not in EXECUTORS:
            raise ValueError(f"executor: expected one of {EXECUTORS}, got {executor!r}")
        self.name, self.every_hours, self.executor = name, int(every_hours), executor
        given = dict(levels or {})  # in-memory levels (a model being trained) win over the folder's

        def level(which: str) -> Level:
            return given[which] if which in given else load_level(Path(str(folder)) / which, algo)

        model, norm = level("strategic")
        self._strategic = frozen_policy(model, norm)
        self._n_model = int(model.action_space.shape[0]) - 1  # type: ignore[index]
        self._view_shape = tuple(model.observation_space["assets"].shape)  # type: ignore[index]
        self._tactical = None
        if executor == "tactical":
            self._tactical = frozen_policy(*level("tactical"))
        self.phase = 0
        self.target = np.zeros(0)
        # what the strategic model was trained to tilt (agent.prior): given, or saved with the model
        saved = None if "strategic" in given else StrategicPrior.load(Path(str(folder)) / "strategic")
        if prior is not None and saved is not None and prior != saved:
            raise ValueError(f"HierarchicalPolicy: prior {prior} given, the strategic model was trained with {saved}")
        self.prior = prior or saved or StrategicPrior("none")
        self.allocation: PriorAllocation | None = None

    def _on_bind(self, base: Any) -> None:
        if self._n_model != self.n_assets:
            raise ValueError(f"HierarchicalPolicy: trained on {self._n_model} assets, env has {self.n_assets}")
        if self.executor == "tactical" and not self.execution:
            raise ValueError("HierarchicalPolicy(executor='tactical'): make the env with action_mode='execution'")
        self.allocation = self.prior.allocation(self.core)
        self.strategic_view = ViewBuilder("strategic", self.core,
                                          None if self.allocation is None else self.allocation.weights)
        shape = tuple(self.strategic_view.space["assets"].shape)  # type: ignore[arg-type]
        if shape != self._view_shape:
            raise ValueError(f"HierarchicalPolicy: the strategic model sees per-asset views of shape "
                             f"{self._view_shape}, prior={self.prior.kind!r} builds {shape}: pass the prior it was "
                             "trained with (agent.prior)")
        self.tactical_view = ViewBuilder("tactical", self.core)
        self.base = base

    def reset(self) -> None:
        self.phase = 0
        self.target = np.zeros(self.n_assets)

    def act(self, obs: Mapping[str, np.ndarray], state: Any) -> np.ndarray:
        self._check_bound()
        n = self.n_assets
        decide = self.phase == 0
        self.phase = (self.phase + 1) % self.every_hours
        scores = np.zeros(n + 1)
        if decide:
            scores = self._strategic(self.strategic_view.build(_ROW))[0]
            if self.allocation is not None:  # a residual action: the tilt on the prior at this bar
                scores = self.allocation.env_actions(self.core.ledger.t[_ROW], scores[None, :])[0]
            self.target = np.asarray(self.base.action_to_weights(scores), dtype=np.float64)
        if self._tactical is None:  # stage 1's rule: the raw action at the decision hour, then hold
            action = scores
            return np.concatenate([action, np.full(n, -1.0)]) if self.execution else action
        phase = np.array([(self.phase - 1) % self.every_hours / self.every_hours])
        a = self._tactical(self.tactical_view.build(_ROW, self.target[None, :], phase))[0]
        frac = (np.clip(a[:n], -1.0, 1.0) + 1.0) / 2.0
        weights = self.core.ledger.w[0][None, :]
        return np.concatenate([gap_action(weights, self.target[None, :], frac[None, :])[0], a[n:]])


__all__ = ["EXECUTORS", "FlatPolicy", "HierarchicalPolicy"]
