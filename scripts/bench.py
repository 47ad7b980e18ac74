"""Benchmark the KrakenSpot env: single-env and vectorised steps/s, SB3 training throughput per policy level.

    python scripts/bench.py                      # defaults in conf/bench.yaml
    python scripts/bench.py vector_envs=256 ppo_timesteps=0 env=market_orders

Prints a table and the top functions of a cProfile run, writes ``bench.json`` to the Hydra
output folder and prints ``outputs: <folder>`` last. The env step is numba-compiled
(`envs.execution.kernels`): ``first_step_s`` is the first reset + step of a fresh process
(compiling, or loading the on-disk cache); the rates are measured after it.
"""

from __future__ import annotations

import cProfile
import io
import json
import logging
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs.config import EnvConfig
from envs.data.market import MarketData
from envs.data.synthetic import generate_synthetic_market
from envs.kraken_spot import KrakenSpotEnv
from envs.vector import KrakenSpotVectorEnv
from krakenrl.cli import hydra_main

log = logging.getLogger(__name__)


def first_step(market: MarketData, config: EnvConfig, seed: int) -> float:
    """Seconds for the first reset + step of the process (numba compile or cache load)."""
    t0 = time.perf_counter()
    env = KrakenSpotEnv(market, config)
    env.reset(seed=seed)
    env.step(env.action_space.sample())
    return time.perf_counter() - t0


def bench_single(market: MarketData, config: EnvConfig, steps: int, seed: int) -> float:
    """Random float32 actions, info built as normal (fills and rejections as dicts)."""
    env = KrakenSpotEnv(market, config)
    actions = np.random.default_rng(seed).uniform(-1, 1, size=(steps, env.core.action_width)).astype(np.float32)
    env.reset(seed=seed)
    t0 = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - t0)


def bench_cartpole(steps: int, seed: int) -> float:
    """Gymnasium's CartPole-v1 (unwrapped) on the same machine: a yardstick for machine load."""
    import gymnasium as gym

    env = gym.make("CartPole-v1").unwrapped
    env.reset(seed=seed)
    t0 = time.perf_counter()
    for k in range(steps):
        _, _, terminated, _, _ = env.step(k % 2)
        if terminated:
            env.reset()
    return steps / (time.perf_counter() - t0)


def bench_vector(market: MarketData, config: EnvConfig, n_envs: int, steps: int, seed: int) -> float:
    venv = KrakenSpotVectorEnv(n_envs, market=market, config=config)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, size=(steps, n_envs, venv.core.action_width)).astype(np.float32)
    venv.reset(seed=seed)
    venv.step(actions[0])  # the batched observation path's first call
    t0 = time.perf_counter()
    for a in actions:
        venv.step(a)
    return steps * n_envs / (time.perf_counter() - t0)


def bench_ppo(market: MarketData, config: EnvConfig, timesteps: int, n_steps: int, seed: int) -> float:
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    env = KrakenSpotEnv(market, config)
    model = PPO("MultiInputPolicy", env, n_steps=n_steps, batch_size=min(128, n_steps), n_epochs=4,
                seed=seed, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(total_timesteps=timesteps, progress_bar=False)
    return timesteps / (time.perf_counter() - t0)


def bench_policies(market: MarketData, config: EnvConfig, timesteps: int, n_envs: int, seed: int) -> dict[str, Any]:
    """SB3 PPO training throughput of each policy level on the package's vector env + risk layer.

    The env carries signals with the real store's channel names (random values: only the
    shapes matter for speed). Per level: agent timesteps/s (the steps SB3 took: whole
    rollouts), env hours/s and the share of `train_level`'s wall time (``model.learn``)
    spent inside the env's ``step_wait`` (`agents.training.EnvTimer`: the vector env, the
    risk projection, the view building and, for the tactical level, the frozen strategic
    policy's forward pass every K hours). The tactical level runs under an untrained
    strategic model (same cost as a trained one). The risk kernels are loaded before the
    first level (`warm_risk`), so no level pays for numba's first call.
    """
    import tempfile

    from agents.envs import training_vec_env
    from agents.pipeline import Period
    from agents.training import AgentConfig, frozen_policy, load_level, train_level
    from risk.limits import PRESETS

    names = tuple(f"meta_h{h}_{k}" for h in (1, 4, 24) for k in ("p_up", "exp_return")) + tuple(
        f"regime_p_{r}" for r in ("trend", "range", "high_vol", "crash"))
    rng = np.random.default_rng(seed)
    signals = rng.uniform(0.0, 1.0, (market.n_bars, market.n_assets, len(names)))
    period = Period.of(market, 800, market.n_bars - 2)
    agent = AgentConfig(n_envs=n_envs, n_steps=256, seed=seed, episode_hours=720, checkpoint_every=10**9)

    def inner(mode: str = "weights") -> Any:
        return training_vec_env(market, signals, names, config, PRESETS["spec_a"], period, n_envs, 720, mode)

    logging.getLogger("risk.kill_switch").setLevel(logging.ERROR)
    warm_risk(inner(), seed)
    warm_risk(inner("execution"), seed)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        strategic_steps = max(timesteps // agent.every_hours, 64)
        res = train_level(agent, "strategic", inner, root / "strategic", strategic_steps, progress=False)
        out["strategic"] = res.to_dict()
        strat = frozen_policy(*load_level(root / "strategic", "ppo"))
        res = train_level(agent, "tactical", lambda: inner("execution"), root / "tactical", timesteps, strategic=strat,
                          progress=False)
        out["tactical"] = res.to_dict()
        res = train_level(agent, "flat", inner, root / "flat", timesteps, progress=False)
        out["flat"] = res.to_dict()
    for level in out.values():
        level.pop("folder", None)  # timesteps: what SB3 really ran (`LevelResult`), whole PPO rollouts
        level["env_hours_per_s"] = level["env_hours"] / level["wall_seconds"]
    return out


def warm_risk(venv: Any, seed: int) -> None:
    """A few steps of a training vector env before the timed runs: numba loads (or compiles) the
    risk kernels at their first call, which would otherwise land in the first level's env time."""
    base = venv.unwrapped
    venv.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        venv.step(rng.uniform(-1.0, 1.0, base.action_space.shape))
    snap = base.snapshot(0)  # the per-row kernel too (rows with a trigger, or every row before the batched path)
    venv.projectors[0].project(snap, np.asarray(snap.weights))
    n = base.num_envs  # and the multi-hour kernel of the strategic level (`risk.hours`)
    venv.run_hours(None, 2, np.ones(n, dtype=bool), np.zeros(n))


def profile_single(market: MarketData, config: EnvConfig, steps: int, seed: int) -> list[dict[str, Any]]:
    """cProfile of the single-env step loop: top functions by own time, as table rows."""
    env = KrakenSpotEnv(market, config)
    actions = np.random.default_rng(seed).uniform(-1, 1, size=(steps, env.core.action_width)).astype(np.float32)
    env.reset(seed=seed)
    prof = cProfile.Profile()
    prof.enable()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    rows = []
    for (file, line, fn), (_, ncalls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{Path(file).name}:{line}:{fn}", "calls": ncalls, "own_s": tottime,
                     "share": tottime / total if total else 0.0})
    return sorted(rows, key=lambda r: -r["own_s"])[:12]


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    env_cfg = EnvConfig.from_mapping(OmegaConf.to_container(cfg.env, resolve=True))  # type: ignore[arg-type]
    market = generate_synthetic_market(n_bars=int(cfg.market.n_bars), seed=int(cfg.market.seed))
    seed = int(cfg.seed)
    results: dict[str, Any] = {"n_assets": market.n_assets, "env": OmegaConf.to_container(cfg.env, resolve=True)}
    results["first_step_s"] = first_step(market, env_cfg, seed)
    results["cartpole_steps_per_s"] = bench_cartpole(int(cfg.single_steps), seed)
    results["single_steps_per_s"] = bench_single(market, env_cfg, int(cfg.single_steps), seed)
    results["vector_envs"] = int(cfg.vector_envs)
    results["vector_env_steps_per_s"] = bench_vector(market, env_cfg, int(cfg.vector_envs), int(cfg.vector_steps), seed)
    if int(cfg.ppo_timesteps) > 0:
        results["ppo_timesteps_per_s"] = bench_ppo(market, env_cfg, int(cfg.ppo_timesteps), int(cfg.ppo_n_steps), seed)
    if int(cfg.policy_timesteps) > 0:
        results["policies"] = bench_policies(market, env_cfg, int(cfg.policy_timesteps), int(cfg.policy_envs), seed)
    if bool(cfg.profile):
        results["profile_top"] = profile_single(market, env_cfg, min(int(cfg.single_steps), 5000), seed)
    (out_dir / "bench.json").write_text(json.dumps(results, indent=2))
    lines = [
        f"{'measure':<42}{'value':>14}",
        f"{'first reset + step, s (numba compile/load)':<42}{results['first_step_s']:>14.2f}",
        f"{'CartPole-v1 steps/s (machine yardstick)':<42}{results['cartpole_steps_per_s']:>14,.0f}",
        f"{'single env steps/s (' + str(market.n_assets) + ' assets)':<42}{results['single_steps_per_s']:>14,.0f}",
        f"{f'vector env-steps/s ({cfg.vector_envs} envs)':<42}{results['vector_env_steps_per_s']:>14,.0f}",
    ]
    if "ppo_timesteps_per_s" in results:
        lines.append(f"{'SB3 PPO timesteps/s (CPU, 1 thread)':<42}{results['ppo_timesteps_per_s']:>14,.0f}")
    for level, r in results.get("policies", {}).items():
        label = f"SB3 PPO {level} ({cfg.policy_envs} envs): steps/s"
        lines.append(f"{label:<42}{r['timesteps_per_second']:>14,.0f}  env share {r['env_share']:.0%}, "
                     f"{r['env_hours_per_s']:,.0f} env hours/s")
    for row in results.get("profile_top", []):
        lines.append(f"  {row['function'][:58]:<58}{row['share']:>7.1%}")
    print("\n".join(lines))
    return results


main = hydra_main(run, "bench")


if __name__ == "__main__":
    main()
