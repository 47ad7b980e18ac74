"""Every script in examples/ runs at smoke size, trains, and reports the fees the env charged.

Each example is run as a user runs it (``python examples/NAME.py --steps 256``) in a fresh
process whose ``PYTHONPATH`` starts with this checkout, from a temporary working folder
(so default output folders land there). Its last line is ``RESULT {json}``: the test
checks the timesteps trained and that the env's ``info["fees"]`` summed to a positive
amount. ``OMP_NUM_THREADS=1``: on a 2-core CI machine torch's thread pool makes the
small networks several times slower, not faster.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
STEPS = 256


def run_example(name: str, cwd: Path, *args: str, timeout: int = 240) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    t0, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--steps", str(STEPS), *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout,
    )
    elapsed, cpu1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT "), f"{name}: last line is not RESULT: {last!r}"
    result: dict[str, Any] = json.loads(last.removeprefix("RESULT "))
    print(f"{name}: {elapsed:.1f} s wall, {cpu:.1f} s CPU")
    assert result["example"] == name
    assert result["timesteps"] >= STEPS, result
    assert result["fees_paid"] > 0.0 and np.isfinite(result["fees_paid"]), result  # the env reported fees
    return result


def test_sb3_ppo_vecnormalize_trains_saves_and_reloads(tmp_path: Path) -> None:
    result = run_example("sb3_ppo_vecnormalize", tmp_path, "--out", str(tmp_path / "run"), "--episode-hours", "64")
    assert (tmp_path / "run" / "ppo.zip").is_file() and (tmp_path / "run" / "vecnormalize.pkl").is_file()
    assert (tmp_path / "run" / "eval" / "evaluations.npz").is_file()  # EvalCallback evaluated during training
    ev = result["eval"]  # the reloaded model (statistics frozen) ran a full episode
    assert ev["steps"] == 64 and np.isfinite(ev["reward"]) and ev["final_equity"] > 0


def test_sb3_sac_trains(tmp_path: Path) -> None:
    result = run_example("sb3_sac", tmp_path, "--episode-hours", "64")
    assert (tmp_path / "outputs" / "examples" / "sb3_sac" / "sac.zip").is_file()
    assert result["eval"]["steps"] == 64 and result["eval"]["termination_reason"] == "episode_length"


def test_recurrent_ppo_trains(tmp_path: Path) -> None:
    result = run_example("recurrent_ppo", tmp_path, "--episode-hours", "64")
    assert result["eval"]["steps"] == 64 and np.isfinite(result["eval"]["total_return"])


def test_torchrl_ppo_trains(tmp_path: Path) -> None:
    result = run_example("torchrl_ppo", tmp_path, "--episode-hours", "64")
    assert result["eval"]["steps"] == 64 and result["eval"]["fees_paid"] >= 0.0


@pytest.mark.parametrize("mode", ["vector_entry_point", "sync"])
def test_cleanrl_ppo_trains_on_both_vector_envs(tmp_path: Path, mode: str) -> None:
    # 50-hour episodes so the 512-step rollout crosses episode ends (autoreset masking runs)
    result = run_example("cleanrl_ppo", tmp_path, "--vectorization-mode", mode, "--episode-hours", "50",
                         "--num-envs", "2")
    assert result["episodes"] >= 4


def test_own_data_trains_on_a_dataframe_market_with_signals(tmp_path: Path) -> None:
    result = run_example("own_data", tmp_path, "--episode-hours", "64")
    assert result["n_assets"] == 3 and result["n_bars"] == 181 * 24  # 2023-01-01 .. 2023-06-30 of the Binance dump
    assert result["signals"] == ["momentum_24h", "volume_vs_7d"]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_own_data_signals_are_causal_and_the_generated_frame_loads() -> None:
    """The example's signals at bar t do not change when bars after t are removed (contract 1)."""
    from envs import MarketData

    own = _load("own_data")
    frame = own.random_long_frame(["BTC", "ETH", "SOL"], 500, seed=3)
    market = MarketData.from_frame(frame, layout="long")
    assert market.assets == ("BTC", "ETH", "SOL") and market.n_bars == 500
    full, names = own.make_signals(market)
    assert full.shape == (500, 3, 2) and len(names) == 2
    for t in (30, 200, 499):
        cut, _ = own.make_signals(market.slice(0, t + 1))
        np.testing.assert_array_equal(cut[t], full[t])
