"""PPO (stable-baselines3) with VecNormalize and EvalCallback on the risk-wrapped KrakenSpot env.

What this shows, in the order a research run needs it:

1. build the env by its registered id (``import krakenrl`` registers it) and put the
   hard-coded risk layer around it (`RiskWrapper(env, "spec_a")`: max 10 positions,
   drawdown ladder, kill switch, cost gate; it is always the outermost wrapper);
2. normalise observations and rewards with `VecNormalize` (running statistics);
3. evaluate during training with `EvalCallback` on a separate env whose normalisation
   statistics are synced from the training env and frozen;
4. save the model *and* the VecNormalize statistics (a model without its statistics sees
   differently scaled inputs and acts differently);
5. reload both with ``training=False`` and evaluate one episode, reporting fees paid.

Run: ``python examples/sb3_ppo_vecnormalize.py [--steps 20000]``. The last line is
``RESULT {...}`` (JSON) so CI can check that the run trained and paid fees.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gymnasium as gym
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

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
    # The default market is the built-in synthetic one (12 assets, one year of hourly bars);
    # pass market=... for real data (see examples/own_data.py).
    env = gym.make(ENV_ID, episode_hours=episode_hours)
    return RiskWrapper(env, "spec_a")


def evaluate(model: PPO, venv: VecEnv) -> dict[str, float]:
    """One deterministic episode: total reward, fees paid (USD) and final equity (USD)."""
    obs = venv.reset()
    fees, total_reward, steps = 0.0, 0.0, 0
    while True:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, done, infos = venv.step(action)
        info = infos[0]
        fees += info["fees"]
        total_reward += float(reward[0])
        steps += 1
        if done[0]:
            # after `done` the vec env has already reset: the last info still describes the episode
            return {"steps": steps, "reward": total_reward, "fees_paid": fees, "final_equity": info["equity"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="training timesteps (default 20000)")
    parser.add_argument("--episode-hours", type=int, default=168, help="decisions per episode")
    parser.add_argument("--n-envs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs/examples/sb3_ppo_vecnormalize"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    # Training env: n copies in one DummyVecEnv (each gets a Monitor for episode statistics),
    # observations (a Dict: features window, portfolio state) and rewards normalised.
    train_env = make_vec_env(lambda: make_env(args.episode_hours), n_envs=args.n_envs, seed=args.seed)
    train_env = VecNormalize(train_env, norm_obs=True, norm_reward=True, clip_obs=10.0)

    # Evaluation env: same wrappers, statistics frozen (training=False) and raw rewards, so
    # evaluation returns are comparable across runs. EvalCallback copies the training
    # statistics into it before every evaluation.
    eval_env = make_vec_env(lambda: make_env(args.episode_hours), n_envs=1, seed=args.seed + 1000)
    eval_env = VecNormalize(eval_env, training=False, norm_reward=False, clip_obs=10.0)

    # A rollout of n_steps per env; short rollouts keep even a smoke-sized run a real update.
    n_steps = 256
    model = PPO("MultiInputPolicy", train_env, n_steps=n_steps, batch_size=64, n_epochs=10, gamma=0.99,
                learning_rate=3e-4, seed=args.seed, device="cpu", verbose=0)
    fees = FeeTally()
    evals = EvalCallback(eval_env, n_eval_episodes=1, deterministic=True, verbose=0,
                         eval_freq=max(args.steps // (2 * args.n_envs), n_steps),  # about twice per run
                         best_model_save_path=str(args.out / "best"), log_path=str(args.out / "eval"))
    model.learn(total_timesteps=args.steps, callback=[fees, evals])

    # Save the policy and the normalisation statistics side by side.
    model_path, stats_path = args.out / "ppo.zip", args.out / "vecnormalize.pkl"
    model.save(model_path)
    train_env.save(str(stats_path))
    timesteps = model.num_timesteps
    train_env.close()
    eval_env.close()

    # Reload as a user of the trained policy would: statistics frozen, raw rewards.
    test_env = make_vec_env(lambda: make_env(args.episode_hours), n_envs=1, seed=args.seed + 2000)
    test_env = VecNormalize.load(str(stats_path), test_env)
    test_env.training, test_env.norm_reward = False, False
    loaded = PPO.load(model_path, env=test_env, device="cpu")
    result = evaluate(loaded, test_env)

    print(f"trained {timesteps} timesteps; fees paid in training: {fees.fees:,.2f} USD")
    print(f"best eval mean reward: {evals.best_mean_reward:.4f}; saved {model_path} and {stats_path}")
    print(f"reloaded evaluation ({result['steps']} steps): reward {result['reward']:.4f}, "
          f"fees paid {result['fees_paid']:,.2f} USD, final equity {result['final_equity']:,.2f} USD")
    summary = {"example": "sb3_ppo_vecnormalize", "timesteps": timesteps, "fees_paid": fees.fees, "eval": result}
    print("RESULT " + json.dumps(summary, default=float))


if __name__ == "__main__":
    main()
