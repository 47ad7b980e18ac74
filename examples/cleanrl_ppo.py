"""A CleanRL-style single-file PPO (plain torch) for the KrakenSpot env.

Everything is in this file, top to bottom, so it can be read and changed in one place:
a Gaussian policy over the ``Box(-1, 1, (N+1,))`` action, a value network, generalised
advantage estimation (GAE) and the clipped surrogate objective. It was written for this
env (in CleanRL's single-file spirit, not copied from it); the env-specific parts are:

- **Dict observation, flattened.** The observation is ``{"features": (24, N, 5),
  "portfolio": (N + 3,)}`` (plus ``"signals"`` with external signals); `flatten_obs`
  concatenates the entries into one vector per env.
- **The package's vector env.** ``gym.make_vec(id, n, vectorization_mode="vector_entry_point",
  episode_hours=...)`` steps all accounts in one compiled call and takes the same keyword
  arguments as ``gym.make``; ``vectorization_mode="sync"`` gives Gymnasium's
  ``SyncVectorEnv`` with the same ``info`` keys (``info["fees"]`` is a per-env array).
- **Gymnasium 1.x autoreset (``NEXT_STEP``).** After a sub-env ends an episode, the
  *next* ``step`` call resets it: its action is ignored and it returns the first
  observation of the new episode with reward 0. That step is not a real transition, so it
  is masked out of the loss, and GAE never bootstraps across it. Because the episode's
  last observation is returned by the step that ended it, a truncated episode (``episode
  length``) bootstraps from that observation's value, while a terminated one (ruin, halt)
  does not.

Run: ``python examples/cleanrl_ppo.py [--steps 50000]``. The last line is ``RESULT {...}`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Normal

import krakenrl  # noqa: F401 - registers the env ids (Gymnasium 1.x loads no env plugins by itself)

ENV_ID = "krakenrl/KrakenSpot-v0"  # registered by `import krakenrl`


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=50_000, help="total env steps, all envs together (default 50000)")
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--num-steps", type=int, default=128, help="rollout length per env")
    p.add_argument("--episode-hours", type=int, default=168)
    p.add_argument("--vectorization-mode", default="vector_entry_point", choices=["vector_entry_point", "sync"])
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--update-epochs", type=int, default=4)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--clip-coef", type=float, default=0.2)
    p.add_argument("--ent-coef", type=float, default=0.0)
    p.add_argument("--vf-coef", type=float, default=0.5)
    p.add_argument("--max-grad-norm", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def flatten_obs(obs: dict[str, np.ndarray], keys: list[str]) -> torch.Tensor:
    """(num_envs, D) float32 tensor: every Dict entry flattened per env, in a fixed key order."""
    n = obs[keys[0]].shape[0]
    return torch.as_tensor(np.concatenate([obs[k].reshape(n, -1) for k in keys], axis=1), dtype=torch.float32)


def layer(n_in: int, n_out: int, std: float = np.sqrt(2)) -> nn.Linear:
    lin = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(lin.weight, std)  # orthogonal init, small last layers: PPO's usual start
    nn.init.zeros_(lin.bias)
    return lin


class Agent(nn.Module):
    """Separate actor and critic MLPs; the policy is a diagonal Gaussian with a learned log-std."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.critic = nn.Sequential(layer(obs_dim, hidden), nn.Tanh(), layer(hidden, hidden), nn.Tanh(),
                                    layer(hidden, 1, std=1.0))
        self.actor_mean = nn.Sequential(layer(obs_dim, hidden), nn.Tanh(), layer(hidden, hidden), nn.Tanh(),
                                        layer(hidden, act_dim, std=0.01))
        self.actor_logstd = nn.Parameter(torch.zeros(1, act_dim))

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def act(self, x: torch.Tensor, action: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sampled (or given) action, its log-probability, the policy entropy and the state value."""
        mean = self.actor_mean(x)
        dist = Normal(mean, self.actor_logstd.expand_as(mean).exp())
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action).sum(-1), dist.entropy().sum(-1), self.value(x)


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)

    envs = gym.make_vec(ENV_ID, args.num_envs, vectorization_mode=args.vectorization_mode,
                        episode_hours=args.episode_hours)
    keys = list(envs.single_observation_space.keys())
    obs_dim = sum(int(np.prod(envs.single_observation_space[k].shape)) for k in keys)
    act_dim = int(np.prod(envs.single_action_space.shape))
    agent = Agent(obs_dim, act_dim)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.lr, eps=1e-5)

    n, T = args.num_envs, args.num_steps
    batch_size = n * T
    iterations = max(1, -(-args.steps // batch_size))  # ceil: at least the requested steps
    # rollout storage, indexed [step, env]
    obs_buf = torch.zeros((T, n, obs_dim))
    act_buf = torch.zeros((T, n, act_dim))
    logp_buf = torch.zeros((T, n))
    rew_buf = torch.zeros((T, n))
    val_buf = torch.zeros((T, n))
    term_buf = torch.zeros((T, n))  # 1 where the step ended the episode by termination
    end_buf = torch.zeros((T, n))  # 1 where the step ended the episode (terminated or truncated)
    valid_buf = torch.zeros((T, n))  # 0 for autoreset steps (not a real transition)

    raw_obs, _ = envs.reset(seed=args.seed)
    next_obs = flatten_obs(raw_obs, keys)
    next_valid = torch.ones(n)  # the next step is a real transition (False right after an episode end)
    global_step, fees_paid, episodes, t0 = 0, 0.0, 0, time.time()

    for iteration in range(iterations):
        # linear learning-rate decay to 0 over the run
        optimizer.param_groups[0]["lr"] = args.lr * (1.0 - iteration / iterations)

        for step in range(T):
            obs_buf[step], valid_buf[step] = next_obs, next_valid
            with torch.no_grad():
                action, logp, _, value = agent.act(next_obs)
            act_buf[step], logp_buf[step], val_buf[step] = action, logp, value
            raw_obs, reward, terminated, truncated, info = envs.step(np.clip(action.numpy(), -1.0, 1.0))
            global_step += n
            # USD paid this step, one entry per env (absent when every env just autoreset: no trades)
            fees_paid += float(np.sum(info.get("fees", 0.0)))
            episodes += int(np.sum(terminated | truncated))
            rew_buf[step] = torch.as_tensor(reward, dtype=torch.float32)
            term_buf[step] = torch.as_tensor(terminated, dtype=torch.float32)
            end_buf[step] = torch.as_tensor(terminated | truncated, dtype=torch.float32)
            next_obs = flatten_obs(raw_obs, keys)
            next_valid = 1.0 - end_buf[step]  # an env that just ended autoresets on its next step

        # GAE, backwards. values of the observation after step t: val_buf[t + 1] (the last
        # observation of the episode if step t ended it), or the critic on next_obs at the end.
        with torch.no_grad():
            next_value = agent.value(next_obs)
            adv = torch.zeros((T, n))
            last_gae = torch.zeros(n)
            for t in reversed(range(T)):
                v_next = next_value if t == T - 1 else val_buf[t + 1]
                delta = rew_buf[t] + args.gamma * v_next * (1.0 - term_buf[t]) - val_buf[t]
                # the recursion stops at an episode end; autoreset steps carry nothing
                last_gae = (delta + args.gamma * args.gae_lambda * (1.0 - end_buf[t]) * last_gae) * valid_buf[t]
                adv[t] = last_gae
            returns = adv + val_buf

        # PPO update on the real transitions only
        keep = valid_buf.reshape(-1).bool()
        b_obs, b_act = obs_buf.reshape(-1, obs_dim)[keep], act_buf.reshape(-1, act_dim)[keep]
        b_logp, b_adv = logp_buf.reshape(-1)[keep], adv.reshape(-1)[keep]
        b_ret = returns.reshape(-1)[keep]
        m = int(keep.sum())
        mb_size = max(1, m // args.minibatches)
        clipfracs: list[float] = []
        for _ in range(args.update_epochs):
            perm = torch.randperm(m)
            for start in range(0, m, mb_size):
                mb = perm[start : start + mb_size]
                _, new_logp, entropy, new_val = agent.act(b_obs[mb], b_act[mb])
                ratio = (new_logp - b_logp[mb]).exp()
                mb_adv = b_adv[mb]
                if len(mb) > 1:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(-mb_adv * ratio,
                                    -mb_adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
                v_loss = 0.5 * ((new_val - b_ret[mb]) ** 2).mean()
                loss = pg_loss - args.ent_coef * entropy.mean() + args.vf_coef * v_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
                clipfracs.append(float(((ratio - 1.0).abs() > args.clip_coef).float().mean()))
        print(f"iteration {iteration + 1}/{iterations}: steps {global_step}, episodes {episodes}, "
              f"fees {fees_paid:,.0f} USD, pg_loss {pg_loss.item():.4f}, v_loss {v_loss.item():.3e}, "
              f"clipfrac {np.mean(clipfracs):.3f}, {global_step / (time.time() - t0):,.0f} steps/s")
    envs.close()

    print(f"trained {global_step} env steps ({episodes} episodes); fees paid: {fees_paid:,.2f} USD")
    summary = {"example": "cleanrl_ppo", "timesteps": global_step, "fees_paid": fees_paid, "episodes": episodes}
    print("RESULT " + json.dumps(summary))


if __name__ == "__main__":
    main()
