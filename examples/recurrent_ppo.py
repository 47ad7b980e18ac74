"""RecurrentPPO (sb3-contrib): an LSTM policy that carries memory across the hours of an episode.

The observation already holds a 24-hour feature window; an LSTM adds memory of what the
policy did and saw before that (e.g. regime persistence). Two things differ from plain PPO:

- the policy is ``MultiInputLstmPolicy`` (the observation is a ``Dict``);
- at inference, pass the LSTM state back in and flag episode starts, so the memory is
  cleared exactly when a new episode (a new account) begins.

The env is risk-wrapped with the ``spec_b`` profile (total exposure at most 20% of equity).
Install: ``pip install -c constraints.txt sb3-contrib`` (the constraint keeps ``torch==2.13.0``).

Run: ``python examples/recurrent_ppo.py [--steps 10000]``. The last line is ``RESULT {...}`` (JSON).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

import krakenrl  # noqa: F401 - registers the env ids (Gymnasium 1.x loads no env plugins by itself)
from risk import RiskWrapper

ENV_ID = "krakenrl/KrakenSpot-v0"  # registered by `import krakenrl`


class FeeTally(BaseCallback):
    """Sums ``info["fees"]`` (USD paid per step, reported by the env) over training."""

    def __init__(self) -> None:
        super().__init__()
        self.fees = 0.0

    def _on_step(self) -> bool:
        self.fees += sum(float(info.get("fees", 0.0)) for info in self.locals["infos"])
        return True


def make_env(episode_hours: int) -> gym.Env:
    return RiskWrapper(gym.make(ENV_ID, episode_hours=episode_hours), "spec_b")


def run_episode(model: RecurrentPPO, env: gym.Env, seed: int) -> dict[str, float]:
    """One deterministic episode, threading the LSTM state through the steps."""
    obs, info = env.reset(seed=seed)
    start_equity, fees, steps = info["equity"], 0.0, 0
    lstm_state = None  # None = zero state
    episode_start = np.ones((1,), dtype=bool)  # True on the first step of an episode
    terminated = truncated = False
    while not (terminated or truncated):
        action, lstm_state = model.predict(obs, state=lstm_state, episode_start=episode_start, deterministic=True)
        obs, _, terminated, truncated, info = env.step(action)
        episode_start[:] = False
        fees += info["fees"]
        steps += 1
    return {"steps": steps, "fees_paid": fees, "total_return": info["equity"] / start_equity - 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000, help="training timesteps (default 10000)")
    parser.add_argument("--episode-hours", type=int, default=168, help="decisions per episode")
    parser.add_argument("--n-envs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs/examples/recurrent_ppo"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    env = make_vec_env(lambda: make_env(args.episode_hours), n_envs=args.n_envs, seed=args.seed)
    model = RecurrentPPO(
        "MultiInputLstmPolicy",
        env,
        n_steps=128,  # per env; sequences are cut at rollout ends and episode starts
        batch_size=128,
        n_epochs=4,
        policy_kwargs={"lstm_hidden_size": 64, "net_arch": [64]},
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    fees = FeeTally()
    model.learn(total_timesteps=args.steps, callback=fees)
    model.save(args.out / "recurrent_ppo.zip")

    result = run_episode(model, make_env(args.episode_hours), seed=args.seed + 1)
    print(f"trained {model.num_timesteps} timesteps; fees paid in training: {fees.fees:,.2f} USD")
    print(f"evaluation ({result['steps']} steps): return {result['total_return']:+.2%}, "
          f"fees paid {result['fees_paid']:,.2f} USD")
    summary = {"example": "recurrent_ppo", "timesteps": model.num_timesteps, "fees_paid": fees.fees, "eval": result}
    print("RESULT " + json.dumps(summary))


if __name__ == "__main__":
    main()
