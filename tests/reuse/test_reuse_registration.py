"""Issue 9 item 1: the env is registered under the unique name ``krakenrl``, so a user's own
``envs/`` package in the working directory (which shadows this package's ``envs`` on
``sys.path``) does not stop ``gym.make`` from building the real env."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import gymnasium as gym
from gymnasium.envs.registration import namespace, registry

import envs
import krakenrl

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in ``cwd`` (first on sys.path), with this checkout importable after it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def user_project(tmp_path: Path) -> Path:
    """A researcher's folder with its own ``envs`` package, as in many RL projects."""
    own = tmp_path / "envs"
    own.mkdir()
    (own / "__init__.py").write_text("OWNER = 'user'\n")
    return tmp_path


def test_pyproject_declares_the_gymnasium_plugin_entry_point() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    eps = meta["project"]["entry-points"]["gymnasium.envs"]
    assert eps == {"krakenrl": "krakenrl:register_envs"}
    assert "krakenrl*" in meta["tool"]["setuptools"]["packages"]["find"]["include"]
    # what a plugin loader does with it (gymnasium 0.26-0.29: load, call inside the entry point's namespace)
    fn = EntryPoint("krakenrl", eps["krakenrl"], "gymnasium.envs").load()
    assert fn is krakenrl.register_envs
    saved = registry.pop(krakenrl.ENV_ID)
    try:
        with namespace("krakenrl"):
            fn()
        spec = gym.spec("krakenrl/KrakenSpot-v0")
        assert spec.entry_point == "krakenrl.entry:KrakenSpotEnv"
        assert spec.vector_entry_point == "krakenrl.entry:KrakenSpotVectorEnv"
    finally:
        registry[krakenrl.ENV_ID] = saved


def test_both_ids_after_import_envs() -> None:
    assert envs.ENV_ID in registry and krakenrl.ENV_ID in registry
    env = gym.make("krakenrl/KrakenSpot-v0", episode_hours=5)
    assert type(env.unwrapped).__module__ == "envs.kraken_spot"
    env.reset(seed=0)
    *_, info = env.step(env.action_space.sample())
    assert info["equity"] > 0


def test_make_from_a_folder_with_its_own_envs_package(tmp_path: Path) -> None:
    cwd = user_project(tmp_path)
    # the problem: `import envs` there is the user's package, so the plain id is not registered
    shadowed = run_python("import gymnasium as gym, envs; print(envs.OWNER); gym.make('KrakenSpot-v0')", cwd)
    assert shadowed.returncode != 0 and shadowed.stdout.strip() == "user"
    assert "KrakenSpot" in shadowed.stderr
    # the fix: no import in user code, gymnasium's module:id form imports krakenrl, which loads the real env
    code = (
        "import gymnasium as gym\n"
        "env = gym.make('krakenrl:krakenrl/KrakenSpot-v0', episode_hours=5)\n"
        "env.reset(seed=0)\n"
        "*_, info = env.step(env.action_space.sample())\n"
        "venv = gym.make_vec('krakenrl/KrakenSpot-v0', 2, episode_hours=5)\n"
        "venv.reset(seed=0)\n"
        "*_, vinfo = venv.step(venv.action_space.sample())\n"
        "import envs, sys\n"
        "print(type(env.unwrapped).__name__, type(venv).__name__, info['fees'] >= 0, len(vinfo['fills']))\n"
        "print(envs.__file__)\n"
    )
    done = run_python(code, cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    first, where = done.stdout.strip().splitlines()[-2:]
    assert first == "KrakenSpotEnv KrakenSpotVectorEnv True 2"
    assert Path(where).resolve() == (ROOT / "envs" / "__init__.py").resolve()


def test_a_user_envs_imported_first_is_a_clear_error(tmp_path: Path) -> None:
    cwd = user_project(tmp_path)
    code = "import envs, gymnasium as gym\ngym.make('krakenrl:krakenrl/KrakenSpot-v0')\n"
    done = run_python(code, cwd)
    assert done.returncode != 0
    assert "ImportError" in done.stderr and "shadows it" in done.stderr and str(cwd / "envs") in done.stderr
