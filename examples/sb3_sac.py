"""SAC (stable-baselines3) on the KrakenSpot env: off-policy training from a replay buffer.

SAC suits this env's continuous ``Box(-1, 1, (N+1,))`` action (one score per asset, last
entry cash; the env turns the positive scores into target weights). Before
``learning_starts`` SAC acts uniformly at random, which already trades (and pays fees),
so the buffer starts with realistic costs in it.

Memory: the observation is a ``Dict`` (a 24 x N x 5 feature window and the portfolio
state); SB3's default 1e6-transition buffer would reserve gigabytes for it, so the buffer
here holds ``--buffer`` transitions.

Run: ``python examples/sb3_sac.py [--steps 3000]``. The last line is ``RESULT {...}`` (JSON).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gymnasium as gym
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback

import krakenrl  # noqa: F401 - registers the env ids (Gymnasium 1.x loads no env plugins by itself)

ENV_ID = "krakenrl/KrakenSpot-v0"  # registered by `import krakenrl`


class FeeTally(BaseCallback):
    """Sums ``info["fees"]`` (USD paid per step, reported by the env) over training."""

    def __init__(self) -> None:
        super().__init__()
        self.fees = 0.0

    def _on_step(self) -> bool:
        self.fees += sum(float(info.get("fees", 0.0)) for info in self.locals["infos"])
        return True


def run_episode(model: SAC, env: gym.Env, seed: int) -> dict[str, float]:
    """One deterministic episode on a plain gymnasium env; fees and equity come from ``info``."""
    obs, info = env.reset(seed=seed)
    start_equity, fees, steps = info["equity"], 0.0, 0
    terminated = truncated = False
    while not (terminated or truncated):
        action, _ = model.predict(obs, deterministic=True)
        obs, _, terminated, truncated, info = env.step(action)
        fees += info["fees"]
        steps += 1
    return {"steps": steps, "fees_paid": fees, "total_return": info["equity"] / start_equity - 1.0,
            "termination_reason": info["termination_reason"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3_000, help="training timesteps (default 3000)")
    parser.add_argument("--episode-hours", type=int, default=168, help="decisions per episode")
    parser.add_argument("--buffer", type=int, default=50_000, help="replay buffer size (transitions)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs/examples/sb3_sac"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    env = gym.make(ENV_ID, episode_hours=args.episode_hours)
    model = SAC(
        "MultiInputPolicy",
        env,
        buffer_size=min(args.buffer, max(args.steps, 1_000)),
        learning_starts=min(1_000, args.steps // 2),  # random exploration first
        batch_size=128,
        train_freq=1,
        gradient_steps=1,
        policy_kwargs={"net_arch": [128, 128]},
        seed=args.seed,
        verbose=0,
    )
    fees = FeeTally()
    model.learn(total_timesteps=args.steps, callback=fees)
    model.save(args.out / "sac.zip")

    result = run_episode(model, gym.make(ENV_ID, episode_hours=args.episode_hours), seed=args.seed + 1)
    print(f"trained {model.num_timesteps} timesteps; fees paid in training: {fees.fees:,.2f} USD")
    print(f"evaluation ({result['steps']} steps, ended by {result['termination_reason']}): "
          f"return {result['total_return']:+.2%}, fees paid {result['fees_paid']:,.2f} USD")
    summary = {"example": "sb3_sac", "timesteps": model.num_timesteps, "fees_paid": fees.fees, "eval": result}
    print("RESULT " + json.dumps(summary))


if __name__ == "__main__":
    main()
