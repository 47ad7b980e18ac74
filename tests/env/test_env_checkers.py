"""The env passes gymnasium's and stable-baselines3's env checkers, on the built-in synthetic
market (``gymnasium.make("KrakenSpot-v0")`` with no arguments) and on real Kraken bars."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.wrappers import FlattenObservation
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401 - registers KrakenSpot-v0
from envs.config import EnvConfig
from envs.data.loaders import load_kraken_dir
from envs.kraken_spot import KrakenSpotEnv


@pytest.fixture(scope="module")
def real_market(shared_data):
    return load_kraken_dir(
        shared_data / "kraken" / "ohlcvt_1h", assets=["BTC", "ETH", "LTC"], start="2022-01-01", end="2022-02-28"
    )


def test_make_with_no_arguments_uses_the_synthetic_market_and_passes_both_checkers():
    env = gym.make("KrakenSpot-v0")
    assert env.unwrapped.n_assets == 12
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checkers' warnings are failures here
        gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)


def test_real_kraken_bars_pass_both_checkers_and_flatten(real_market):
    assert real_market.n_assets == 3 and real_market.pairs  # Kraken lot rules are attached
    env = KrakenSpotEnv(real_market, EnvConfig(episode_hours=200))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)
    flat = FlattenObservation(env)
    obs, _ = flat.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == flat.observation_space.shape
    for _ in range(50):
        obs, reward, _terminated, _truncated, info = flat.step(flat.action_space.sample())
        assert flat.observation_space.contains(obs) and np.isfinite(reward)
        assert info["cash"] >= 0.0


def test_make_with_a_market_and_a_hydra_style_mapping(real_market):
    env = gym.make("KrakenSpot-v0", market=real_market, config={"episode_hours": 48, "fee_model": "kraken_tiers"})
    assert env.unwrapped.config.fee_model == "kraken_tiers"
    env.reset(seed=1)
    steps = 0
    while True:
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            break
    assert steps == 48 and info["termination_reason"] == "episode_length"


def test_signals_block_is_part_of_the_observation(real_market):
    T, N = real_market.n_bars, real_market.n_assets
    signals = np.random.default_rng(0).normal(size=(T, N, 2))
    env = KrakenSpotEnv(real_market, EnvConfig(episode_hours=20), signals=signals, signal_names=["p_up", "ret"])
    obs, _ = env.reset(seed=0)
    t = env.snapshot().t
    np.testing.assert_array_equal(obs["signals"][:, :2], signals[t].astype(np.float32))
    np.testing.assert_array_equal(obs["signals"][:, 2], np.ones(N, np.float32))
    assert env.core.signal_names == ("p_up", "ret", "signals_available")
    gym_check_env(env, skip_render_check=True)


def test_missing_signals_are_flagged_not_passed_as_zero(real_market):
    T, N = real_market.n_bars, real_market.n_assets
    signals = np.full((T, N, 2), 0.7)
    signals[:, 0, 1] = np.nan  # asset 0 has no second prediction anywhere
    env = KrakenSpotEnv(real_market, EnvConfig(episode_hours=20), signals=signals)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["signals"][0], np.array([0.7, 0.0, 0.0], np.float32))
    np.testing.assert_array_equal(obs["signals"][1:, 2], np.ones(N - 1, np.float32))
