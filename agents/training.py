"""Staged training of the policy levels on stable-baselines3, with checkpoints and resume.

Stages (``scripts/train.py`` calls `train_level` for each), each a real SB3 model saved
with its `VecNormalize` statistics:

1. ``strategic``: the allocator, every K hours, with the fixed execution rule (the whole
   gap closed with the env's limit-first orders at the decision hour);
2. ``tactical``: the hourly executor, with the strategic policy frozen (its normaliser
   loaded with ``training=False``);

and ``flat``: one hourly policy on the same env and views, the ablation. Joint fine-tuning
of both levels is not offered: SB3 trains one model per rollout, and a joint update would
need a custom loop outside its seams.

A checkpoint (``checkpoint/``) is written at the end of a rollout every
``checkpoint_every`` steps with ``steps.json`` holding the step count and a hash of the
agent config; a level resumes from the furthest of its final model and its checkpoint
whose hash matches (a changed config is refused), and an off-policy level also saves and
reloads its replay buffer. A resumed level is deterministic but not bit-identical to an
uninterrupted one (the random streams restart from the seed).

Observation normalisation statistics are fitted on the training period only (the inner
env's ``start``/``end``) and saved next to each model (``vecnormalize.pkl``); evaluation
loads them with ``training=False`` and ``norm_reward=False`` (`agents.policies`).
Policies are extended only through SB3's seams: ``policy_kwargs`` (the
`agents.extractor.AssetSetExtractor` for the Dict view, ``net_arch``) and callbacks.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

from agents.extractor import AssetSetExtractor
from agents.prior import StrategicPrior
from agents.vec import LevelVecEnv, TacticalReward
from envs.config_mapping import MappingConfig
from envs.errors import ConfigError

log = logging.getLogger(__name__)

ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC, "td3": TD3}
LEVEL_DIRS = ("strategic", "tactical", "flat")
BUDGET_FIELDS = ("strategic_timesteps", "tactical_timesteps", "flat_timesteps", "checkpoint_every")


@dataclass(frozen=True)
class AgentConfig(MappingConfig):
    """The ``agent`` config group (conf/agent/*.yaml); validated, errors name the field.

    ``AgentConfig.from_mapping(values)`` (`envs.config_mapping`) builds one from the group's node.
    """

    config_section: ClassVar[str] = "agent"

    algo: str = "ppo"  # ppo | sac | td3 (every level's action space is a Box, so all three apply)
    hierarchical: bool = True  # False: only the flat policy is trained (the ablation alone)
    executor: str = "tactical"  # tactical (stage 2, trained) | fixed (stage 1's rule)
    train_flat: bool = True  # also train the flat ablation with the same budget
    seed: int = 0
    every_hours: int = 24  # K: the strategic level acts every K hours
    strategic_timesteps: int = 20_000  # agent steps (one = K hours)
    tactical_timesteps: int = 100_000  # agent steps (one = one hour)
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
    action_noise: float = 0.1  # TD3: sigma of the Gaussian exploration noise
    tactical_shortfall: float = 1.0  # lambda_is
    tactical_tracking: float = 0.002  # lambda_te
    halt_penalty: float = 0.0  # charged (in log-growth units) when the ladder's halt ends an episode
    prior: str = "topk"  # none | topk: the strategic action is a tilt on the top-k predictor allocation
    prior_k: int = 3
    prior_signal: str = "meta_h24_exp_return"
    prior_scale: float = 0.5
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
        for name in ("halt_penalty", "tactical_shortfall", "tactical_tracking"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v >= 0.0):
                raise ConfigError(f"agent.{name}: expected a finite value >= 0, got {v!r}")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ConfigError(f"agent.val_fraction: expected in [0, 0.5), got {self.val_fraction!r}")
        if self.every_hours >= self.episode_hours or self.episode_hours % self.every_hours:
            raise ConfigError(
                f"agent.episode_hours ({self.episode_hours}) must be a multiple of agent.every_hours "
                f"({self.every_hours}) and larger: a strategic step may not straddle an episode end"
            )
        if not self.hierarchical and not self.train_flat:
            raise ConfigError("agent: hierarchical=false and train_flat=false trains nothing")
        _ = self.strategic_prior  # validates the prior keys

    @property
    def strategic_prior(self) -> StrategicPrior:
        """What the strategic action is a residual on (`agents.prior`)."""
        return StrategicPrior(self.prior, self.prior_k, self.prior_signal, float(self.prior_scale))

    @property
    def flat_budget(self) -> int:
        """Flat ablation timesteps: same env hours as the hierarchy unless set."""
        if self.flat_timesteps:
            return self.flat_timesteps
        tactical = self.tactical_timesteps if self.executor == "tactical" else 0
        return self.strategic_timesteps * self.every_hours + tactical


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
    """Saves model + normaliser (+ replay buffer) at the end of a rollout, every ``every`` agent steps."""

    def __init__(self, folder: Path, every: int, config_hash: str) -> None:
        super().__init__()
        self.folder, self.every, self.config_hash = folder, every, config_hash
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:  # a PPO rollout's steps are in the model only after its update
        if self.num_timesteps - self._last >= self.every:
            self._last = self.num_timesteps
            save_level(self.model, self.folder, self.config_hash, checkpoint=True)


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


def config_hash(cfg: AgentConfig, level: str, extra: str = "") -> str:
    """What a saved level was trained with: the agent config (budgets aside: a longer run may resume a
    shorter one), the level and the caller's context."""
    import hashlib

    values = {k: v for k, v in asdict(cfg).items() if k not in BUDGET_FIELDS}
    text = json.dumps([values, level, extra], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_level(model: BaseAlgorithm, folder: Path, config_hash: str = "", checkpoint: bool = False) -> None:
    """model.zip, vecnormalize.pkl (+ replay buffer), steps.json into ``folder`` or its ``checkpoint/``, atomically."""
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
    if checkpoint and hasattr(model, "save_replay_buffer"):
        tmp_buf = target / "replay_buffer.tmp.pkl"
        model.save_replay_buffer(tmp_buf)
        tmp_buf.replace(target / "replay_buffer.pkl")
    tmp_json = target / "steps.tmp.json"
    tmp_json.write_text(json.dumps({"num_timesteps": int(model.num_timesteps), "config_hash": config_hash}))
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
        off["action_noise"] = NormalActionNoise(np.zeros(n), cfg.action_noise * np.ones(n))
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
    context: str = "",
    callbacks: list[BaseCallback] | None = None,
) -> LevelResult:
    """Train one level for ``timesteps`` agent steps, resuming from its furthest saved state.

    Returns timing figures: agent steps per second and the env's share of the wall time.
    A level already trained for ``timesteps`` is not trained again. ``context`` (e.g. the
    prediction store's key and the env/risk config) enters the config hash, so a saved
    level trained on other inputs is refused instead of resumed. ``callbacks``: further SB3
    callbacks, run after the checkpoint (a search's validation reporter may stop the run by
    raising: the checkpoint it reports on is then on disk).
    """
    torch.set_num_threads(cfg.threads)
    chash = config_hash(cfg, level, context)
    start = _resume_point(folder, chash, level)
    if start is not None and start[1] >= timesteps:
        log.info("%s: already trained (%d steps), skipping", level, start[1])
        return LevelResult(level, folder, 0, 0, 0.0, 0.0, resumed_from=start[1])
    set_random_seed(cfg.seed)
    reward = TacticalReward(cfg.tactical_shortfall, cfg.tactical_tracking)
    base = LevelVecEnv(make_inner(), level, cfg.every_hours, strategic, reward, cfg.halt_penalty,
                       cfg.strategic_prior)
    base.seed(cfg.seed)
    timer = EnvTimer(base)
    monitored = VecMonitor(base)
    resumed = 0
    if start is not None:
        src = start[0]
        venv = VecNormalize.load(str(src / "vecnormalize.pkl"), monitored)
        venv.training = True
        model = ALGOS[cfg.algo].load(src / "model.zip", env=venv, device=cfg.device)
        if (src / "replay_buffer.pkl").is_file() and hasattr(model, "load_replay_buffer"):
            model.load_replay_buffer(src / "replay_buffer.pkl")
        resumed = int(model.num_timesteps)
        log.info("%s: resuming from %s at %d steps", level, src, resumed)
    else:
        venv = VecNormalize(monitored, norm_obs=True, norm_reward=cfg.norm_reward, clip_obs=10.0,
                            gamma=cfg.strategic_gamma if level == "strategic" else cfg.gamma)
        model = make_model(cfg, venv, level, tensorboard)
    callbacks_all = CallbackList([timer, Checkpoint(folder, cfg.checkpoint_every, chash), MetricsLogger(sink, level),
                                  *(callbacks or [])])
    remaining = max(timesteps - resumed, 0)
    t0 = time.perf_counter()
    model.learn(remaining, callback=callbacks_all, progress_bar=progress, reset_num_timesteps=resumed == 0,
                tb_log_name=level)
    wall = time.perf_counter() - t0
    save_level(model, folder, chash)
    if level == "strategic":
        cfg.strategic_prior.save(folder)
    # what SB3 ran: PPO finishes whole rollouts, so it may take more steps than asked for
    ran = int(model.num_timesteps) - resumed
    return LevelResult(level, folder, ran, base.env_hours, wall, timer.env_seconds, resumed)


def _resume_point(folder: Path, chash: str, level: str) -> tuple[Path, int] | None:
    """The furthest saved state of this level (final model or checkpoint) trained with the same config."""
    best: tuple[Path, int] | None = None
    for src in (folder / "checkpoint", folder):  # a tie goes to the checkpoint: it has the replay buffer
        meta = src / "steps.json"
        if not ((src / "model.zip").is_file() and (src / "vecnormalize.pkl").is_file() and meta.is_file()):
            continue
        saved = json.loads(meta.read_text())
        if saved.get("config_hash") != chash:
            raise ConfigError(
                f"{src}: this {level} level was trained with another agent config or inputs (hash "
                f"{saved.get('config_hash')!r}, now {chash!r}); use a new run folder or delete it"
            )
        if best is None or int(saved["num_timesteps"]) > best[1]:
            best = (src, int(saved["num_timesteps"]))
    return best


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
