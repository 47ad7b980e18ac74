"""Staged training of the policy levels on stable-baselines3, with checkpoints and resume.

Stages (`train_levels`), each a real SB3 model saved with its `VecNormalize` statistics:

1. ``strategic``: the allocator, every K hours, with the fixed execution rule (the whole
   gap closed with the env's limit-first orders at the decision hour);
2. ``tactical``: the hourly executor, with the strategic policy frozen (its normaliser
   loaded with ``training=False``);
3. ``joint`` (optional, ``joint_timesteps > 0``): the strategic level fine-tuned again
   under the trained tactical executor is not offered by SB3 without a custom loop, so
   joint fine-tuning here means a second tactical round after a second strategic round
   (documented limitation, off by default);

and ``flat``: one hourly PPO on the same env and views, the ablation.

Observation normalisation statistics are fitted on the training period only (the inner
env's ``start``/``end``) and saved next to each model (``vecnormalize.pkl``); evaluation
loads them with ``training=False`` and ``norm_reward=False`` (`agents.policies`).
Policies are extended only through SB3's seams: ``policy_kwargs`` (the
`agents.extractor.AssetSetExtractor` for the Dict view, ``net_arch``) and callbacks.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

from agents.extractor import AssetSetExtractor
from agents.vec import LevelVecEnv, TacticalReward
from envs.errors import ConfigError

log = logging.getLogger(__name__)

ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC, "td3": TD3}
LEVEL_DIRS = ("strategic", "tactical", "flat")


@dataclass(frozen=True)
class AgentConfig:
    """The ``agent`` config group (conf/agent/*.yaml); validated, errors name the field."""

    algo: str = "ppo"  # ppo | sac | td3 (every level's action space is a Box, so all three apply)
    hierarchical: bool = True  # False: only the flat policy is trained (the ablation alone)
    executor: str = "tactical"  # tactical (stage 2, trained) | fixed (stage 1's rule)
    train_flat: bool = True  # also train the flat ablation with the same budget
    seed: int = 0
    every_hours: int = 24  # K: the strategic level acts every K hours
    strategic_timesteps: int = 20_000  # agent steps (one = K hours)
    tactical_timesteps: int = 20_000  # agent steps (one = one hour)
    flat_timesteps: int = 0  # 0: the hierarchy's budget in env hours (strategic x K + tactical)
    n_envs: int = 8
    episode_hours: int = 720
    learning_rate: float = 3e-4
    n_steps: int = 256  # PPO rollout length per env
    batch_size: int = 256
    n_epochs: int = 5
    gamma: float = 0.99
    strategic_gamma: float = 0.9  # per strategic step (one day)
    gae_lambda: float = 0.95
    ent_coef: float = 0.0
    clip_range: float = 0.2
    hidden: int = 32  # AssetSetExtractor width
    net_arch: tuple[int, ...] = ()  # linear heads on the extractor's per-asset embeddings
    log_std_init: float = -0.5
    buffer_size: int = 50_000  # SAC / TD3
    learning_starts: int = 1_000  # SAC / TD3
    tactical_shortfall: float = 1.0  # lambda_is
    tactical_tracking: float = 0.002  # lambda_te
    norm_reward: bool = True
    checkpoint_every: int = 10_000  # agent steps between checkpoints (per level)
    threads: int = 1  # torch threads: 1 keeps runs bit-for-bit reproducible on any machine
    device: str = "cpu"
    val_fraction: float = 0.15  # the last share of the training period: validation slice (not trained on)
    extra: dict[str, Any] = field(default_factory=dict)  # passed to the SB3 constructor as is

    def __post_init__(self) -> None:
        if self.executor not in ("tactical", "fixed"):
            raise ConfigError(f"agent.executor: expected 'tactical' or 'fixed', got {self.executor!r}")
        if self.algo not in ALGOS:
            raise ConfigError(f"agent.algo: expected one of {sorted(ALGOS)}, got {self.algo!r}")
        for name in ("every_hours", "n_envs", "episode_hours", "n_steps", "batch_size", "n_epochs", "hidden",
                     "checkpoint_every", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"agent.{name}: expected an integer >= 1, got {v!r}")
        for name in ("strategic_timesteps", "tactical_timesteps", "flat_timesteps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"agent.{name}: expected an integer >= 0, got {v!r}")
        for name in ("learning_rate", "gamma", "strategic_gamma", "gae_lambda", "clip_range"):
            v = float(getattr(self, name))
            if not 0.0 < v <= 1.0:
                raise ConfigError(f"agent.{name}: expected in (0, 1], got {v!r}")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ConfigError(f"agent.val_fraction: expected in [0, 0.5), got {self.val_fraction!r}")
        if self.every_hours >= self.episode_hours:
            raise ConfigError(
                f"agent.every_hours ({self.every_hours}) must be below agent.episode_hours ({self.episode_hours})"
            )
        if not self.hierarchical and not self.train_flat:
            raise ConfigError("agent: hierarchical=false and train_flat=false trains nothing")

    @property
    def flat_budget(self) -> int:
        """Flat ablation timesteps: same env hours as the hierarchy unless set."""
        if self.flat_timesteps:
            return self.flat_timesteps
        return self.strategic_timesteps * self.every_hours + self.tactical_timesteps

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> AgentConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"agent: unknown keys {unknown}; known: {sorted(known)}")
        v = dict(values)
        if "net_arch" in v:
            v["net_arch"] = tuple(int(x) for x in v["net_arch"])
        return cls(**v)


class EnvTimer(BaseCallback):
    """Wall time spent inside the env (``step_wait``) vs the whole training loop."""

    def __init__(self, venv: LevelVecEnv) -> None:
        super().__init__()
        self.venv = venv
        self.env_seconds = 0.0
        self.started = 0.0
        self.wall = 0.0
        original = venv.step_wait

        def timed() -> Any:
            t0 = time.perf_counter()
            out = original()
            self.env_seconds += time.perf_counter() - t0
            return out

        venv.step_wait = timed  # type: ignore[method-assign]

    def _on_training_start(self) -> None:
        self.started = time.perf_counter()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.wall += time.perf_counter() - self.started


class Checkpoint(BaseCallback):
    """Saves model + normaliser every ``every`` agent steps (atomic renames) for resume."""

    def __init__(self, folder: Path, every: int) -> None:
        super().__init__()
        self.folder, self.every = folder, every
        self._last = 0

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last >= self.every:
            self._last = self.num_timesteps
            save_level(self.model, self.folder, checkpoint=True)
        return True


class MetricsLogger(BaseCallback):
    """Per-rollout episode statistics to a callable (MLflow) with the timestep as step."""

    def __init__(self, sink: Callable[[dict[str, float], int], None] | None, prefix: str) -> None:
        super().__init__()
        self.sink, self.prefix = sink, prefix
        self.returns: list[float] = []

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            ep = info.get("episode")
            if ep is not None:
                self.returns.append(float(ep["r"]))
        return True

    def _on_rollout_end(self) -> None:
        if self.sink is not None and self.returns:
            self.sink({f"{self.prefix}.episode_reward": float(np.mean(self.returns[-20:]))}, self.num_timesteps)


def save_level(model: BaseAlgorithm, folder: Path, checkpoint: bool = False) -> None:
    """model.zip + vecnormalize.pkl (+ steps.json) into ``folder`` (or its ``checkpoint/``), atomically."""
    target = folder / "checkpoint" if checkpoint else folder
    target.mkdir(parents=True, exist_ok=True)
    tmp_model = target / "model.tmp.zip"
    model.save(tmp_model)
    tmp_model.replace(target / "model.zip")
    venv = model.get_env()
    if isinstance(venv, VecNormalize):
        tmp = target / "vecnormalize.tmp.pkl"
        venv.save(str(tmp))
        tmp.replace(target / "vecnormalize.pkl")
    tmp_json = target / "steps.tmp.json"
    tmp_json.write_text(json.dumps({"num_timesteps": int(model.num_timesteps)}))
    tmp_json.replace(target / "steps.json")


def policy_kwargs(cfg: AgentConfig) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "features_extractor_class": AssetSetExtractor,
        "features_extractor_kwargs": {"hidden": cfg.hidden},
        "net_arch": list(cfg.net_arch),
    }
    if cfg.algo == "ppo":
        kw["log_std_init"] = cfg.log_std_init
    return kw


def make_model(cfg: AgentConfig, venv: VecNormalize, level: str, tensorboard: Path | None) -> BaseAlgorithm:
    """A fresh SB3 model of ``cfg.algo`` for ``level`` (the Dict view through the extractor)."""
    gamma = cfg.strategic_gamma if level == "strategic" else cfg.gamma
    common: dict[str, Any] = {
        "policy": "MultiInputPolicy",
        "env": venv,
        "learning_rate": cfg.learning_rate,
        "gamma": gamma,
        "seed": cfg.seed,
        "device": cfg.device,
        "verbose": 0,
        "policy_kwargs": policy_kwargs(cfg),
        "tensorboard_log": str(tensorboard) if tensorboard is not None else None,
    }
    if cfg.algo == "ppo":
        n_steps = cfg.n_steps if level != "strategic" else max(8, cfg.n_steps // 8)
        batch = min(cfg.batch_size, n_steps * venv.num_envs)
        model: BaseAlgorithm = PPO(
            n_steps=n_steps, batch_size=batch, n_epochs=cfg.n_epochs, gae_lambda=cfg.gae_lambda,
            ent_coef=cfg.ent_coef, clip_range=cfg.clip_range, **common, **cfg.extra,
        )
        return model
    off: dict[str, Any] = {"buffer_size": cfg.buffer_size, "learning_starts": cfg.learning_starts,
                           "batch_size": cfg.batch_size}
    if cfg.algo == "td3":
        n = venv.action_space.shape[0]  # type: ignore[index]
        off["action_noise"] = NormalActionNoise(np.zeros(n), 0.1 * np.ones(n))
    return ALGOS[cfg.algo](**common, **off, **cfg.extra)


@dataclass
class LevelResult:
    level: str
    folder: Path
    timesteps: int
    env_hours: int
    wall_seconds: float
    env_seconds: float
    resumed_from: int = 0

    @property
    def timesteps_per_second(self) -> float:
        return self.timesteps / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    @property
    def env_share(self) -> float:
        return self.env_seconds / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["folder"] = str(self.folder)
        d["timesteps_per_second"] = self.timesteps_per_second
        d["env_share"] = self.env_share
        return d


def train_level(
    cfg: AgentConfig,
    level: str,
    make_inner: Callable[[], Any],
    folder: Path,
    timesteps: int,
    strategic: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
    tensorboard: Path | None = None,
    sink: Callable[[dict[str, float], int], None] | None = None,
    progress: bool = True,
) -> LevelResult:
    """Train one level for ``timesteps`` agent steps, resuming from ``folder/checkpoint`` if present.

    Returns timing figures: agent steps per second and the env's share of the wall time.
    A finished level (``folder/model.zip`` with its step count) is not trained again.
    """
    torch.set_num_threads(cfg.threads)
    done_steps = _steps(folder)
    if done_steps is not None and done_steps >= timesteps:
        log.info("%s: already trained (%d steps), skipping", level, done_steps)
        return LevelResult(level, folder, 0, 0, 0.0, 0.0, resumed_from=done_steps)
    set_random_seed(cfg.seed)
    reward = TacticalReward(cfg.tactical_shortfall, cfg.tactical_tracking)
    base = LevelVecEnv(make_inner(), level, cfg.every_hours, strategic, reward)
    base.seed(cfg.seed)
    timer = EnvTimer(base)
    monitored = VecMonitor(base)
    ckpt = folder / "checkpoint"
    resumed = 0
    if (ckpt / "model.zip").is_file() and (ckpt / "vecnormalize.pkl").is_file():
        venv = VecNormalize.load(str(ckpt / "vecnormalize.pkl"), monitored)
        venv.training = True
        model = ALGOS[cfg.algo].load(ckpt / "model.zip", env=venv, device=cfg.device)
        resumed = int(model.num_timesteps)
        log.info("%s: resuming from checkpoint at %d steps", level, resumed)
    else:
        venv = VecNormalize(monitored, norm_obs=True, norm_reward=cfg.norm_reward, clip_obs=10.0,
                            gamma=cfg.strategic_gamma if level == "strategic" else cfg.gamma)
        model = make_model(cfg, venv, level, tensorboard)
    callbacks = CallbackList([timer, Checkpoint(folder, cfg.checkpoint_every), MetricsLogger(sink, level)])
    remaining = max(timesteps - resumed, 0)
    t0 = time.perf_counter()
    model.learn(remaining, callback=callbacks, progress_bar=progress, reset_num_timesteps=resumed == 0,
                tb_log_name=level)
    wall = time.perf_counter() - t0
    save_level(model, folder)
    return LevelResult(level, folder, remaining, base.env_hours, wall, timer.env_seconds, resumed)


def _steps(folder: Path) -> int | None:
    path = folder / "steps.json"
    if not (folder / "model.zip").is_file() or not path.is_file():
        return None
    return int(json.loads(path.read_text())["num_timesteps"])


def load_level(folder: Path, algo: str) -> tuple[BaseAlgorithm, VecNormalize | None]:
    """A saved level and its normaliser (``training=False``: statistics frozen at evaluation)."""
    model = ALGOS[algo].load(folder / "model.zip", device="cpu")
    norm = None
    if (folder / "vecnormalize.pkl").is_file():
        import pickle

        with open(folder / "vecnormalize.pkl", "rb") as fh:
            norm = pickle.load(fh)
        norm.training = False
        norm.norm_reward = False
    return model, norm


def frozen_policy(model: BaseAlgorithm, norm: VecNormalize | None) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """Deterministic action function of a trained level on raw (unnormalised) views."""

    def act(view: dict[str, np.ndarray]) -> np.ndarray:
        obs = norm.normalize_obs(view) if norm is not None else view
        action, _ = model.predict(obs, deterministic=True)
        return np.asarray(action, dtype=np.float64)

    return act


__all__ = [
    "ALGOS",
    "AgentConfig",
    "LevelResult",
    "frozen_policy",
    "load_level",
    "make_model",
    "save_level",
    "train_level",
]
