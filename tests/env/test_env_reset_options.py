"""Issue 8: ``reset(options=...)`` is honoured or refused, and the reset info has a step's keys.

``options={"start": ISO date/time or bar index}`` starts the episode at that decision bar
(single env; the vector env takes one value for every sub-env or one per sub-env); any
other key raises ``ValueError`` naming it. Regression: before the fix every option was
silently ignored and the reset info lacked ``fills``, ``fees``, ``rejected`` and the rest.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.data.market import HOUR
from envs.kraken_spot import KrakenSpotEnv
from envs.vector import KrakenSpotVectorEnv
from tests.conftest import T0, make_tiny_market

CFG = EnvConfig(window=4, episode_hours=20)


def iso(bar: int) -> str:
    return np.datetime_as_string(np.datetime64(T0 + bar * HOUR, "s")) + "Z"


def test_start_option_sets_the_first_decision_bar_by_index_or_iso_time():
    env = KrakenSpotEnv(make_tiny_market(n_bars=80), CFG)
    _, info = env.reset(seed=0, options={"start": 30})
    assert info["t"] == 30 and env.snapshot().t == 30
    _, info = env.reset(seed=0, options={"start": iso(41)})
    assert info["t"] == 41 and info["timestamp"] == T0 + 41 * HOUR
    _, _, _, _, step = env.step(np.zeros(env.n_assets + 1))
    assert step["t"] == 42
    _, info = env.reset(seed=0)  # without options: the seeded draw, as in a fresh env
    assert info["t"] == KrakenSpotEnv(make_tiny_market(n_bars=80), CFG).reset(seed=0)[1]["t"]


def test_a_start_near_the_end_shortens_the_episode_to_the_data():
    env = KrakenSpotEnv(make_tiny_market(n_bars=80), CFG)
    env.reset(seed=0, options={"start": 75})  # 4 bars left to execute in (76..79)
    flags = [env.step(np.zeros(env.n_assets + 1))[3] for _ in range(4)]
    assert flags == [False, False, False, True]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"begin": 3}, "unknown reset option.*'begin'"),
        ({"start": 2}, "start"),  # before the first full feature window (bar 3)
        ({"start": 79}, "start"),  # the last bar: nothing left to execute in
        ({"start": "2000-01-01"}, "start"),
        ({"start": "not a date"}, "start"),
        ({"start": 1.5}, "start"),
    ],
)
def test_unknown_options_and_bad_starts_raise_naming_them(options, match):
    env = KrakenSpotEnv(make_tiny_market(n_bars=80), CFG)
    with pytest.raises(ValueError, match=match):
        env.reset(seed=0, options=options)


def test_reset_info_has_the_keys_of_a_step_info_with_empty_activity():
    env = KrakenSpotEnv(make_tiny_market(n_bars=80), CFG)
    _, info = env.reset(seed=3)
    _, _, _, _, step = env.step(env.weights_to_action(np.array([0.3, 0.3])))
    assert set(info) == set(step)
    assert info["fills"] == [] and info["rejected"] == []
    assert info["fees"] == info["slippage"] == info["turnover"] == info["drawdown"] == 0.0
    assert info["equity"] == info["cash"] == CFG.initial_cash
    np.testing.assert_array_equal(info["weights"], np.zeros(2))
    np.testing.assert_array_equal(info["target_weights"], info["weights"])
    assert info["timestamp"] == int(env.market.timestamps[info["t"]])


def test_vector_env_honours_start_for_all_or_each_sub_env_and_refuses_unknown_keys():
    market = make_tiny_market(n_bars=80)
    venv = KrakenSpotVectorEnv(3, market=market, config=CFG)
    _, info = venv.reset(seed=0, options={"start": 30})
    assert info["t"].tolist() == [30, 30, 30]
    _, info = venv.reset(seed=0, options={"start": [10, iso(20), 30]})
    assert info["t"].tolist() == [10, 20, 30]
    single = KrakenSpotEnv(market, CFG)
    single.reset(seed=1, options={"start": 20})
    a = np.random.default_rng(0).uniform(-1, 1, size=(3, 3))
    obs, _, _, _, vinfo = venv.step(a)
    sobs, _, _, _, s = single.step(a[1])
    assert vinfo["equity"][1] == s["equity"] and np.array_equal(obs["portfolio"][1], sobs["portfolio"])
    with pytest.raises(ValueError, match="'begin'"):
        venv.reset(options={"begin": 1})
    with pytest.raises(ValueError, match="start"):
        venv.reset(options={"start": [10, 20]})
