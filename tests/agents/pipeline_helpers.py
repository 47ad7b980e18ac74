"""A tiny end-to-end configuration (4 assets, ~5 months, two tree families, a few hundred PPO steps)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[2]
TRAIN_END = "2022-04-30T23:00:00Z"
EVAL_START = "2022-05-01T00:00:00Z"
EVAL_END = "2022-05-20T23:00:00Z"


def tiny_overrides(cache: Path, seed: int = 0, edge: float = 2.0) -> list[str]:
    return [
        "experiment=fast",
        "data.assets=[BTC,ETH,SOL,ADA,XRP,DOT]",
        "risk.kill_switch_breadth=0.5",
        "data.n_bars=3600",
        f"data.edge_strength={edge}",
        f"data.end={TRAIN_END}",
        "predictor.families=[lightgbm,xgboost]",
        "predictor.meta.min_rows=100",
        "+features.vol_pct_window=720",
        "walk_forward.retrain_every=360",
        "walk_forward.min_train_bars=480",
        "walk_forward.train_bars=960",
        "agent.strategic_timesteps=64",
        "agent.tactical_timesteps=256",
        "agent.flat_timesteps=256",
        "agent.n_steps=32",
        "agent.batch_size=64",
        "agent.n_epochs=2",
        "agent.n_envs=2",
        "agent.episode_hours=96",
        f"agent.seed={seed}",
        "mlflow.enabled=false",
        "tensorboard=false",
        "progress=false",
        f"cache_dir={cache}",
    ]


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def eval_overrides(run: Path, cache: Path, start: str = EVAL_START, end: str = EVAL_END) -> list[str]:
    return [f"run={run}", f"eval.start={start}", f"eval.end={end}", f"cache_dir={cache}", "progress=false",
            "n_boot=100"]
