"""Issue 9 items 4, 5 and 6 (spec part): the risk wrapper is a first-class gymnasium wrapper,
programming mistakes fail with messages that say what was expected, and specs serialise."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import EnvSpec
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401 - registers KrakenSpot-v0
from envs.errors import ConfigError
from envs.kraken_spot import KrakenSpotEnv
from envs.vector import KrakenSpotVectorEnv
from risk import PRESETS, SPEC_A, SPEC_B, RiskVectorWrapper, RiskWrapper

SMALL = {"episode_hours": 20, "window": 6}


@pytest.fixture(scope="module")
def market(tiny_market):
    return tiny_market(n_bars=150, assets=("BTC", "ETH", "SOL"), seed=5, vol=0.01)


def rollout(env: gym.Env, seed: int, n: int) -> list[tuple[float, dict]]:
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        _, reward, *_, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
        out.append((reward, info))
    return out


# ------------------------------------------------------------------ item 4: wrappers
def test_risk_wrapped_env_passes_gymnasiums_checker(market) -> None:
    env = RiskWrapper(gym.make("KrakenSpot-v0", market=market, **SMALL), SPEC_A)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*is different from the unwrapped version.*")
        check_env(env)  # includes rebuilding it from env.spec and the render modes


def test_risk_wrapped_env_is_rebuilt_from_its_spec(market) -> None:
    wrapped = RiskWrapper(gym.make("KrakenSpot-v0", market=market, **SMALL), "spec_b", new_account_on_reset=True)
    spec = wrapped.spec
    assert spec is not None and spec.additional_wrappers[-1].name == "RiskWrapper"
    assert spec.additional_wrappers[-1].kwargs == {"limits": "spec_b", "new_account_on_reset": True}
    rebuilt = gym.make(spec)
    assert isinstance(rebuilt, RiskWrapper) and rebuilt.limits == SPEC_B
    for (r1, i1), (r2, i2) in zip(rollout(wrapped, 4, 12), rollout(rebuilt, 4, 12), strict=True):
        assert r1 == r2 and i1["equity"] == i2["equity"]
        np.testing.assert_array_equal(i1["risk"]["executed"], i2["risk"]["executed"])
        assert i1["risk"]["executed"].sum() <= SPEC_B.max_gross_exposure + 1e-12


def test_risk_profiles_by_name_and_unknown_names() -> None:
    env = KrakenSpotEnv(**SMALL)
    assert RiskWrapper(env, "spec_a").limits is PRESETS["spec_a"]
    assert RiskWrapper(env, "spec_b").limits is SPEC_B
    assert RiskWrapper(env, {"max_gross_exposure": 0.5}).limits.max_gross_exposure == 0.5
    with pytest.raises(ConfigError, match=r"expected one of \['spec_a', 'spec_b'\].*got 'nonsense'"):
        RiskWrapper(env, "nonsense")
    venv = RiskVectorWrapper(KrakenSpotVectorEnv(2, **SMALL), "spec_b")
    assert all(p.limits is SPEC_B for p in venv.projectors)


def test_spec_with_a_loader_mapping_round_trips_through_json(shared_data) -> None:
    market = {"loader": "kraken_csv", "path": str(shared_data / "kraken" / "ohlcvt_1h"), "assets": ["BTC", "ETH"],
              "start": "2022-01-01", "end": "2022-02-01"}
    wrapped = RiskWrapper(gym.make("KrakenSpot-v0", market=market, **SMALL), SPEC_B)
    assert wrapped.unwrapped.market.assets == ("BTC", "ETH")
    text = wrapped.spec.to_json()
    rebuilt = gym.make(EnvSpec.from_json(text))
    assert isinstance(rebuilt, RiskWrapper) and rebuilt.limits == SPEC_B  # the limits were written as a dict
    assert rebuilt.unwrapped.market.equals(wrapped.unwrapped.market)
    for (r1, _), (r2, _) in zip(rollout(wrapped, 1, 6), rollout(rebuilt, 1, 6), strict=True):
        assert r1 == r2


def test_spec_with_an_in_memory_market_rebuilds_but_explains_why_it_cannot_be_json(market) -> None:
    env = gym.make("KrakenSpot-v0", market=market, **SMALL)
    assert gym.make(env.spec).unwrapped.market.equals(market)
    with pytest.raises(ConfigError, match=r"in-memory MarketData.*'loader': 'kraken_csv'"):
        env.spec.to_json()
    assert gym.make("KrakenSpot-v0", **SMALL).spec.to_json()  # the default synthetic market has no kwargs
    with pytest.raises(ConfigError, match="in-memory MarketData"):
        gym.make_vec("KrakenSpot-v0", 2, market=market, **SMALL).spec.to_json()


# ------------------------------------------------------------ item 5: clear errors
def test_wrong_action_shape_names_both_shapes(market) -> None:
    env = gym.make("KrakenSpot-v0", market=market, **SMALL)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected shape \(4,\).*got shape \(3,\)"):
        env.step(np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(4,\).*non-numeric str"):
        env.step("buy")
    env.step(np.full(4, np.nan))  # NaN/inf stay a runtime condition: read as "keep", no error
    venv = KrakenSpotVectorEnv(2, market=market, **SMALL)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected shape \(2, 4\).*got shape \(2, 3\)"):
        venv.step(np.ones((2, 3)))
    wrapped = RiskWrapper(KrakenSpotEnv(market, **SMALL), "spec_a")
    wrapped.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected shape \(4,\).*got shape \(5,\)"):
        wrapped.step(np.ones(5))


def test_a_path_as_market_says_a_market_data_is_expected() -> None:
    with pytest.raises(TypeError, match=r"expected a MarketData.*got a path.*load_kraken_dir.*from_frame"):
        gym.make("KrakenSpot-v0", market="/some/dir")
    with pytest.raises(TypeError, match="expected a MarketData"):
        KrakenSpotVectorEnv(2, market=42)
    with pytest.raises(ConfigError, match=r"market\.loader: expected one of"):
        KrakenSpotEnv(market={"loader": "ftp", "path": "x"})
