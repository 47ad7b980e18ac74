"""Issue 9 items 2, 3 and 8 with the real clients: TorchRL, gymnasium's vector API, SB3.

One set of keywords for ``gym.make`` and ``gym.make_vec``; the vector env's info carries the
single env's keys with the same values; TorchRL's ``GymEnv`` and ``GymWrapper`` run; SB3's
progress bar works (``rich``)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import envs  # noqa: F401 - registers KrakenSpot-v0
from envs.errors import ConfigError
from envs.kraken_spot import KrakenSpotEnv
from envs.vector import KrakenSpotVectorEnv
from risk import RiskWrapper

SMALL = {"episode_hours": 30, "window": 6}


@pytest.fixture(scope="module")
def market(tiny_market):
    return tiny_market(n_bars=200, assets=("BTC", "ETH", "SOL"), seed=9, vol=0.01)


# ------------------------------------------------------------------- item 2: keywords
def test_unknown_keyword_is_a_type_error_worded_like_python() -> None:
    for make in (lambda: KrakenSpotEnv(frameskip=4), lambda: KrakenSpotVectorEnv(2, frameskip=4)):
        with pytest.raises(TypeError, match=r"got an unexpected keyword argument 'frameskip'") as err:
            make()
        assert "episode_hours" in str(err.value)  # says what is accepted
    with pytest.raises(TypeError, match="unexpected keyword argument 'frameskip'"):
        gym.make("KrakenSpot-v0", frameskip=4)
    with pytest.raises(ConfigError, match="unknown keys"):  # a config mapping's unknown key stays a ConfigError
        KrakenSpotEnv(config={"frameskip": 4})


def test_torchrl_gymenv_by_id(market) -> None:
    from torchrl.envs import GymEnv

    env = GymEnv("KrakenSpot-v0", market=market, **SMALL)
    rollout = env.rollout(40, break_when_any_done=True)
    assert rollout.batch_size[0] == 30  # the env's own episode end
    assert rollout["next", "truncated"][-1].item() and not rollout["next", "terminated"].any()
    assert rollout["next", "portfolio"].shape == (30, market.n_assets + 3)


def test_vector_env_autoreset_mode_is_an_attribute_and_torchrl_wraps_it(market) -> None:
    from torchrl.envs import GymWrapper

    default = KrakenSpotVectorEnv(2, market=market, **SMALL)
    assert default.autoreset_mode is AutoresetMode.NEXT_STEP == default.metadata["autoreset_mode"]
    with pytest.raises(RuntimeError, match="SAME_STEP or DISABLED"):  # TorchRL's own check, now reachable
        GymWrapper(default)
    venv = KrakenSpotVectorEnv(3, market=market, autoreset_mode="disabled", **SMALL)
    assert venv.autoreset_mode is AutoresetMode.DISABLED == venv.metadata["autoreset_mode"]
    wrapped = GymWrapper(venv)
    rollout = wrapped.rollout(65, break_when_any_done=False)  # TorchRL resets ended sub-envs via reset_mask
    done_at = rollout["next", "done"].squeeze(-1).any(0).nonzero().flatten().tolist()
    assert done_at == [29, 59]
    assert np.isfinite(rollout["next", "reward"].numpy()).all()
    made = GymWrapper(gym.make_vec("KrakenSpot-v0", 2, market=market, autoreset_mode="disabled", **SMALL))
    assert made.rollout(35, break_when_any_done=False)["next", "done"].squeeze(-1).sum().item() == 2


def test_disabled_autoreset_needs_a_masked_reset(market) -> None:
    venv = KrakenSpotVectorEnv(2, market=market, autoreset_mode=AutoresetMode.DISABLED, **{**SMALL, "episode_hours": 3})
    venv.reset(seed=0)
    for _ in range(3):
        *_, truncs, infos = venv.step(np.tile([1.0, 0, 0, 0], (2, 1)))
    assert truncs.all() and list(infos["termination_reason"]) == ["episode_length"] * 2
    with pytest.raises(RuntimeError, match="reset_mask"):
        venv.step(np.zeros((2, 4)))
    t_before = venv.core.ledger.t.copy()
    venv.reset(seed=[5, 6], options={"reset_mask": np.array([True, False])})
    assert venv.core.ledger.steps.tolist() == [0, 3] and venv.core.ledger.t[1] == t_before[1]
    with pytest.raises(RuntimeError, match=r"sub-envs \[1\]"):
        venv.step(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="reset_mask"):
        venv.reset(options={"reset_mask": np.array([0, 1])})


# --------------------------------------------------------- item 3: one set of settings
def test_make_vec_takes_the_same_keywords_as_make(market) -> None:
    venv = gym.make_vec("KrakenSpot-v0", 4, market=market, episode_hours=12, window=6)
    assert isinstance(venv, KrakenSpotVectorEnv) and venv.config.episode_hours == 12
    single = gym.make("KrakenSpot-v0", market=market, episode_hours=12, window=6)
    assert single.unwrapped.config == venv.config
    venv.reset(seed=0)
    steps = 0
    while True:
        *_, terms, truncs, infos = venv.step(venv.action_space.sample())
        steps += 1
        if truncs.any():
            break
    assert steps == 12 and truncs.all() and not terms.any()
    assert list(infos["termination_reason"]) == ["episode_length"] * 4


def test_vector_info_has_the_single_env_keys_and_values(market) -> None:
    """Sub-env i seeded s+i is the single env seeded s+i: same fills, rejections, times, reasons."""
    cfg = {**SMALL, "episode_hours": 8, "participation_cap": 0.0005}  # tight cap: fills and rejections
    n, seed = 3, 11
    venv = KrakenSpotVectorEnv(n, market=market, **cfg)
    singles = [KrakenSpotEnv(market, **cfg) for _ in range(n)]
    venv.reset(seed=seed)
    for i, env in enumerate(singles):
        env.reset(seed=seed + i)
    rng = np.random.default_rng(0)
    seen_fill = seen_reject = False
    for _ in range(8):
        actions = rng.uniform(-1, 1, size=(n, market.n_assets + 1))
        *_, terms, truncs, infos = venv.step(actions)
        for i, env in enumerate(singles):
            *_, term, trunc, info = env.step(actions[i])
            assert set(info) - {"termination_reason"} <= set(infos)
            assert infos["fills"][i] == info["fills"] and infos["rejected"][i] == info["rejected"]
            assert infos["timestamp"][i] == info["timestamp"] and infos["t"][i] == info["t"]
            assert infos["termination_reason"][i] == info.get("termination_reason", "")
            assert (terms[i], truncs[i]) == (term, trunc)
            seen_fill |= bool(info["fills"])
            seen_reject |= bool(info["rejected"])
        assert len(infos["fills"]) == n and list(infos["n_fills"]) == [len(f) for f in infos["fills"]]
        assert list(infos["n_rejected"]) == [len(r) for r in infos["rejected"]]
    assert seen_fill and seen_reject
    assert list(infos["termination_reason"]) == ["episode_length"] * n


def test_vector_records_are_a_snapshot_of_their_step(market) -> None:
    venv = KrakenSpotVectorEnv(2, market=market, **SMALL)
    venv.reset(seed=1)
    *_, first = venv.step(np.tile([1.0, 1.0, 1.0, 0.0], (2, 1)))
    venv.step(np.tile([0.0, 0.0, 0.0, 1.0], (2, 1)))  # overwrites the ledger's record buffers
    assert all(f["side"] == "buy" for row in first["fills"] for f in row) and len(first["fills"][0]) == 3
    assert first["fills"][-1] == first["fills"][1] and first["fills"][:1] == [first["fills"][0]]


def test_max_episode_steps_truncations_say_time_limit(market) -> None:
    venv = gym.make_vec("KrakenSpot-v0", 2, market=market, max_episode_steps=5, **SMALL)
    sync = gym.make_vec("KrakenSpot-v0", 2, vectorization_mode="sync", market=market, max_episode_steps=5, **SMALL)
    venv.reset(seed=3)
    sync.reset(seed=3)
    for k in range(5):  # noqa: B007 - k is checked after the loop
        a = np.tile([0.5, 0.2, 0.1, 0.2], (2, 1))
        *_, truncs, infos = venv.step(a)
        *_, s_truncs, s_infos = sync.step(a)
        np.testing.assert_array_equal(truncs, s_truncs)
        np.testing.assert_array_equal(infos["equity"], s_infos["equity"])
    assert k == 4 and truncs.all() and list(infos["termination_reason"]) == ["time_limit"] * 2
    # the single env under gym.make's TimeLimit: the risk layer (outermost) names the cause
    env = RiskWrapper(gym.make("KrakenSpot-v0", market=market, max_episode_steps=5, **SMALL), "spec_a")
    env.reset(seed=3)
    for _ in range(5):
        *_, term, trunc, info = env.step(np.array([0.5, 0.2, 0.1, 0.2]))
    assert trunc and not term and info["termination_reason"] == "time_limit"


# ----------------------------------------------------------------- items 7 and 8: SB3
def test_sb3_make_vec_env_without_render_warnings_and_ppo_progress_bar(market) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        venv = make_vec_env("KrakenSpot-v0", n_envs=2, seed=0, env_kwargs={"market": market, **SMALL})
    assert not [w for w in caught if "render" in str(w.message)], [str(w.message) for w in caught]
    assert venv.render_mode == "rgb_array"
    model = PPO("MultiInputPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(64, progress_bar=True)
    assert model.num_timesteps == 64


def test_rich_is_a_declared_dependency() -> None:
    import tomllib
    from pathlib import Path

    import rich  # noqa: F401 - SB3's progress bar imports it

    meta = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert any(dep.split(">")[0].split("=")[0].strip() == "rich" for dep in meta["project"]["dependencies"])
