"""PPO in TorchRL on the KrakenSpot env, through ``torchrl.envs.GymEnv``.

TorchRL builds the env by its Gymnasium id. The observation is a ``Dict`` (``features``:
24 x N x 5 window, ``portfolio``: N + 3), which TorchRL exposes as two entries of the
tensordict; two transforms flatten the window and concatenate both into one
``observation`` vector for the MLPs. ``info["fees"]`` (USD paid in the step) and
``info["equity"]`` are copied into the tensordict by a small info reader
(`ScalarInfoReader`), so fees are part of the collected data.

The loop is TorchRL's standard PPO: a ``Collector`` gathers ``--frames-per-batch``
steps with the current policy, ``GAE`` computes advantages, and ``ClipPPOLoss`` is
minimised over a few epochs of minibatches.

Install: ``pip install -c constraints.txt torchrl tensordict`` (the constraint keeps
``torch==2.13.0``; torchrl 0.14 / tensordict 0.14 install against it unchanged).

Run: ``python examples/torchrl_ppo.py [--steps 20000]``. The last line is ``RESULT {...}`` (JSON).
"""

from __future__ import annotations

import argparse
import json

import torch
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import nn
from torchrl.collectors import Collector
from torchrl.data import Composite, LazyTensorStorage, ReplayBuffer, SamplerWithoutReplacement, Unbounded
from torchrl.envs import CatTensors, Compose, FlattenObservation, GymEnv, TransformedEnv
from torchrl.envs.gym_like import BaseInfoDictReader
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import MLP, ProbabilisticActor, TanhNormal, ValueOperator
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

import krakenrl  # noqa: F401 - registers the env ids (Gymnasium 1.x loads no env plugins by itself)

ENV_ID = "krakenrl/KrakenSpot-v0"  # registered by `import krakenrl`


class ScalarInfoReader(BaseInfoDictReader):
    """Copies scalar ``info`` entries into the tensordict (0 where absent, as after a reset).

    TorchRL's ``default_info_dict_reader`` expects numpy values; the env reports plain
    Python floats, so this reader converts them itself.
    """

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def __call__(self, info: dict, tensordict):  # type: ignore[no-untyped-def]
        for key in self.keys:
            tensordict.set(key, torch.tensor(float(info.get(key, 0.0)), dtype=torch.float64))
        return tensordict

    @property
    def info_spec(self) -> Composite:
        return Composite({key: Unbounded((), dtype=torch.float64) for key in self.keys}, shape=())


def make_env(episode_hours: int, seed: int) -> TransformedEnv:
    base = GymEnv(ENV_ID, episode_hours=episode_hours, device="cpu")  # keyword arguments go to gym.make
    base.set_info_dict_reader(ScalarInfoReader(["fees", "equity"]))  # info -> tensordict
    env = TransformedEnv(
        base,
        Compose(
            FlattenObservation(-3, -1, in_keys=["features"], out_keys=["features_flat"]),
            CatTensors(in_keys=["features_flat", "portfolio"], out_key="observation"),
        ),
    )
    env.set_seed(seed)
    return env


def make_modules(env: TransformedEnv, hidden: int = 64) -> tuple[ProbabilisticActor, ValueOperator]:
    n_obs = env.observation_spec["observation"].shape[-1]
    n_act = env.action_spec.shape[-1]
    # Gaussian policy squashed by tanh into the action box [-1, 1]
    actor_net = nn.Sequential(MLP(in_features=n_obs, out_features=2 * n_act, num_cells=[hidden, hidden],
                                  activation_class=nn.Tanh), NormalParamExtractor())
    actor = ProbabilisticActor(
        TensorDictModule(actor_net, in_keys=["observation"], out_keys=["loc", "scale"]),
        spec=env.action_spec,
        in_keys=["loc", "scale"],
        distribution_class=TanhNormal,
        distribution_kwargs={"low": env.action_spec.space.low, "high": env.action_spec.space.high},
        return_log_prob=True,
    )
    critic = ValueOperator(MLP(in_features=n_obs, out_features=1, num_cells=[hidden, hidden],
                               activation_class=nn.Tanh), in_keys=["observation"])
    return actor, critic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="training frames (default 20000)")
    parser.add_argument("--episode-hours", type=int, default=168, help="decisions per episode")
    parser.add_argument("--frames-per-batch", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    env = make_env(args.episode_hours, args.seed)
    actor, critic = make_modules(env)
    advantage = GAE(gamma=0.99, lmbda=0.95, value_network=critic, average_gae=True)
    loss_fn = ClipPPOLoss(actor, critic, clip_epsilon=0.2, entropy_coeff=1e-3, critic_coeff=0.5,
                          loss_critic_type="smooth_l1")
    optim = torch.optim.Adam(loss_fn.parameters(), lr=3e-4)

    # At least one full batch, so a smoke-sized run still makes real updates.
    total = max(args.steps, args.frames_per_batch)
    collector = Collector(env, actor, frames_per_batch=args.frames_per_batch, total_frames=total, device="cpu",
                          auto_register_policy_transforms=False)
    buffer = ReplayBuffer(storage=LazyTensorStorage(args.frames_per_batch), sampler=SamplerWithoutReplacement())

    frames, fees = 0, 0.0
    for batch in collector:
        frames += batch.numel()
        fees += float(batch["next", "fees"].sum())
        for _ in range(4):  # epochs over the batch
            with torch.no_grad():
                advantage(batch)  # recomputed with the current critic each epoch
            buffer.extend(batch.reshape(-1))
            for _ in range(args.frames_per_batch // 64):
                mb = buffer.sample(64)
                out = loss_fn(mb)
                loss = out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]
                optim.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(loss_fn.parameters(), 1.0)
                optim.step()
        collector.update_policy_weights_()
    collector.shutdown()

    # Evaluate one episode with the mode of the policy (no sampling).
    eval_env = make_env(args.episode_hours, args.seed + 1)
    with set_exploration_type(ExplorationType.DETERMINISTIC), torch.no_grad():
        rollout = eval_env.rollout(args.episode_hours, actor)
    start_equity, end_equity = rollout["equity"][0], rollout["next", "equity"][-1]  # reset info, last step's info
    result = {"steps": int(rollout.numel()), "fees_paid": float(rollout["next", "fees"].sum()),
              "total_return": float(end_equity / start_equity - 1.0)}
    print(f"trained {frames} frames; fees paid in training: {fees:,.2f} USD")
    print(f"evaluation ({result['steps']} steps): return {result['total_return']:+.2%}, "
          f"fees paid {result['fees_paid']:,.2f} USD")
    print("RESULT " + json.dumps({"example": "torchrl_ppo", "timesteps": frames, "fees_paid": fees, "eval": result}))


if __name__ == "__main__":
    main()
