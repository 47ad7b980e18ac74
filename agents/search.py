"""Hyperparameter search pieces: the ``search`` config, its search space, and pruning reports.

``scripts/search.py`` runs an Optuna study whose trials are ``scripts/train.py`` runs; this
module holds what it needs that is not Optuna's: `SearchConfig` (the ``search`` config
group, every key checked, errors name the key), `suggest` (a trial's parameters from the
space) and `ValidationReporter`, the SB3 callback that reports the validation Sharpe ratio
of the model being trained at fixed step marks so that a pruner can stop a poor trial.

The objective is the validation Sharpe ratio (per period) on the last ``agent.val_fraction``
of the training period: inside what train.py trains on, never the held-out period.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from envs.errors import ConfigError

KINDS = ("float", "int", "categorical")
PRUNERS = ("median", "none")
STRATEGIES = ("policy", "flat_ppo")


@dataclass(frozen=True)
class Param:
    """One searched key: ``float``/``int`` in [low, high] (``log`` scale optional) or ``categorical`` choices."""

    key: str  # a dotted config key, e.g. agent.learning_rate
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @classmethod
    def parse(cls, key: str, spec: Any) -> Param:
        where = f"search.space.{key}"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: expected a mapping with 'type' (one of {KINDS}), got {spec!r}")
        unknown = sorted(set(spec) - {"type", "low", "high", "log", "step", "choices"})
        if unknown:
            raise ConfigError(f"{where}: unknown fields {unknown}")
        kind = spec.get("type")
        if kind not in KINDS:
            raise ConfigError(f"{where}.type: expected one of {KINDS}, got {kind!r}")
        if "." not in key:
            raise ConfigError(f"{where}: expected a dotted config key such as agent.learning_rate")
        if kind == "categorical":
            choices = tuple(spec.get("choices") or ())
            if not choices:
                raise ConfigError(f"{where}.choices: expected a non-empty list, got {spec.get('choices')!r}")
            return cls(key, kind, choices=choices)
        for bound in ("low", "high"):
            v = spec.get(bound)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigError(f"{where}.{bound}: expected a number, got {v!r}")
            if kind == "int" and int(v) != v:
                raise ConfigError(f"{where}.{bound}: expected an integer for type int, got {v!r}")
        low, high, log = float(spec["low"]), float(spec["high"]), bool(spec.get("log", False))
        if not low < high:
            raise ConfigError(f"{where}: expected low < high, got low={spec['low']!r} high={spec['high']!r}")
        if log and low <= 0:
            raise ConfigError(f"{where}.low: a log scale needs low > 0, got {spec['low']!r}")
        step = spec.get("step")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int | float) or step <= 0):
            raise ConfigError(f"{where}.step: expected a number > 0, got {step!r}")
        return cls(key, kind, low, high, log, None if step is None else float(step))


@dataclass(frozen=True)
class SearchConfig:
    """The ``search`` config group (conf/search.yaml)."""

    n_trials: int
    space: tuple[Param, ...]
    objective: str = "policy"  # the validation.json strategy whose sharpe_per_period is maximised
    report_every: int = 1024  # agent steps between validation reports (per level) for the pruner
    pruner: str = "median"  # median | none
    n_startup_trials: int = 2  # the median pruner prunes nothing before this many trials completed
    n_warmup_steps: int = 0  # ... nor before this report step
    seed: int = 0  # the TPE sampler's seed: the same study asks the same parameters
    study: str = "search"

    @classmethod
    def from_mapping(cls, node: Mapping[str, Any]) -> SearchConfig:
        known = {"n_trials", "space", "objective", "report_every", "pruner", "n_startup_trials", "n_warmup_steps",
                 "seed", "study"}
        unknown = sorted(set(node) - known)
        if unknown:
            raise ConfigError(f"search: unknown keys {unknown} (known: {sorted(known)})")
        if "n_trials" not in node:
            raise ConfigError("search.n_trials: required (the number of trials to count, e.g. search.n_trials=8)")
        for key in ("n_trials", "report_every", "n_startup_trials", "n_warmup_steps", "seed"):
            v = node.get(key, 1)
            least = 1 if key in ("n_trials", "report_every") else 0
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise ConfigError(f"search.{key}: expected an integer >= {least}, got {v!r}")
        space = node.get("space")
        if not isinstance(space, Mapping) or not space:
            raise ConfigError(f"search.space: expected a mapping of config keys to ranges, got {space!r}")
        specs = flatten_space(space)
        if not specs:
            raise ConfigError("search.space: no parameter in it (a parameter is a mapping with a 'type')")
        objective = node.get("objective", "policy")
        if objective not in STRATEGIES:
            raise ConfigError(f"search.objective: expected one of {STRATEGIES}, got {objective!r}")
        pruner = node.get("pruner", "median")
        if pruner not in PRUNERS:
            raise ConfigError(f"search.pruner: expected one of {PRUNERS}, got {pruner!r}")
        return cls(
            n_trials=int(node["n_trials"]), space=tuple(Param.parse(k, v) for k, v in specs.items()),
            objective=str(objective), report_every=int(node.get("report_every", 1024)), pruner=str(pruner),
            n_startup_trials=int(node.get("n_startup_trials", 2)), n_warmup_steps=int(node.get("n_warmup_steps", 0)),
            seed=int(node.get("seed", 0)), study=str(node.get("study", "search")),
        )

    def check_keys(self, cfg: Mapping[str, Any]) -> None:
        """Every searched key must exist in the training config (a typo would search nothing)."""
        for p in self.space:
            node: Any = cfg
            for part in p.key.split("."):
                if not isinstance(node, Mapping) or part not in node:
                    raise ConfigError(f"search.space.{p.key}: no such key in the training config")
                node = node[part]


def flatten_space(space: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{agent: {learning_rate: {type: float, ...}}}`` -> ``{"agent.learning_rate": {type: float, ...}}``.

    A node with a ``type`` is a parameter; any other mapping nests further (so that
    ``search.space.agent.gamma.high=0.99`` works on the command line).
    """
    out: dict[str, Any] = {}
    for k, v in space.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and "type" not in v:
            inner = flatten_space(v, key + ".")
            if not inner:
                raise ConfigError(f"search.space.{key}: expected a parameter (a mapping with 'type') or keys under it")
            out.update(inner)
        else:
            out[key] = v
    return out


def suggest(trial: Any, space: tuple[Param, ...]) -> dict[str, Any]:
    """The trial's value for every searched key (Optuna's ``suggest_*``)."""
    out: dict[str, Any] = {}
    for p in space:
        if p.kind == "categorical":
            out[p.key] = trial.suggest_categorical(p.key, list(p.choices))
        elif p.kind == "int":
            step = int(p.step) if p.step is not None else 1
            out[p.key] = trial.suggest_int(p.key, int(p.low or 0), int(p.high or 0), step=step, log=p.log)
        else:
            out[p.key] = trial.suggest_float(p.key, float(p.low or 0.0), float(p.high or 0.0), step=p.step, log=p.log)
    return out


@dataclass(frozen=True)
class Reporting:
    """What scripts/train.py's ``train`` needs to report to a pruner: where, how often, which strategy."""

    report: Callable[[float, int], None]
    every: int
    strategy: str = "policy"

    def levels(self, agent: Any) -> tuple[str, ...]:
        """The levels whose training moves the strategy's validation Sharpe ratio."""
        if self.strategy == "flat_ppo":
            return ("flat",)
        return ("strategic", "tactical") if agent.executor == "tactical" else ("strategic",)


class ValidationReporter(BaseCallback):
    """At the end of the rollout that passes each multiple of ``every`` steps: validation Sharpe -> ``report``.

    ``score(model)`` runs the policy that includes the model being trained over the
    validation slice; ``report(value, step)`` (the search's: ``trial.report`` and a pruning
    check that raises ``optuna.TrialPruned``) gets ``step = offset + k * every``: fixed marks,
    so trials with different rollout lengths are compared at the same step.
    """

    def __init__(self, score: Callable[[Any], float], report: Callable[[float, int], None], every: int,
                 offset: int = 0) -> None:
        super().__init__()
        self.score, self.report, self.every, self.offset = score, report, int(every), int(offset)
        self._next = self.every

    def _on_training_start(self) -> None:  # a resumed level reports from where it stands
        self._next = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps < self._next:
            return
        mark = self.num_timesteps // self.every * self.every
        self._next = mark + self.every
        self.report(float(self.score(self.model)), self.offset + mark)


__all__ = ["Param", "Reporting", "SearchConfig", "ValidationReporter", "flatten_space", "suggest"]
