"""The wrappers' contract with the env (`risk.wrapper.RiskEnv` / `RiskVectorEnv`), the vector
wrapper's reuse of the single-row sanitisation, and `RiskProjector.fork` (issue 15, item 5)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import VectorEnv

from envs.kraken_spot import KrakenSpotEnv
from envs.vector import KrakenSpotVectorEnv
from risk import SPEC_A, RiskProjector, RiskVectorWrapper, RiskWrapper
from risk.cost_gate import cost_inputs_from_env
from risk.wrapper import RiskEnv, RiskVectorEnv

CFG = {"episode_hours": 40, "window": 4, "start_mode": "fixed"}


@pytest.fixture(scope="module")
def mkt(tiny_market):
    return tiny_market(n_bars=160, assets=("BTC", "ETH", "SOL"), seed=11, vol=0.004)


def test_the_kraken_envs_satisfy_the_protocols(mkt) -> None:
    assert isinstance(KrakenSpotEnv(mkt, **CFG), RiskEnv)
    venv = KrakenSpotVectorEnv(2, market=mkt, config=CFG)
    assert isinstance(venv, RiskVectorEnv) and not isinstance(KrakenSpotEnv(mkt, **CFG), RiskVectorEnv)


class _Partial(gym.Env):
    """An env with a market and a snapshot but no action conversions."""

    def __init__(self, market: Any) -> None:
        self.market, self.n_assets = market, market.n_assets
        self.action_space = spaces.Box(-1.0, 1.0, (self.n_assets + 1,), np.float32)
        self.observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def snapshot(self) -> Any:
        raise AssertionError("not reached")


class _NoEnd(VectorEnv):
    """A vector env with everything the risk layer reads except ``end_episodes``."""

    def __init__(self, inner: KrakenSpotVectorEnv) -> None:
        self.num_envs, self.market, self.n_assets = inner.num_envs, inner.market, inner.n_assets
        self.snapshot, self.action_to_weights = inner.snapshot, inner.action_to_weights
        self.weights_to_action = inner.weights_to_action


def test_wrappers_name_what_the_env_lacks(mkt) -> None:
    with pytest.raises(TypeError, match=r"_Partial is not a RiskEnv: it lacks \['action_to_weights', 'weights_to_action'\]"):
        RiskWrapper(_Partial(mkt), SPEC_A)
    with pytest.raises(TypeError, match=r"_NoEnd is not a RiskVectorEnv: it lacks \['end_episodes'\]"):
        RiskVectorWrapper(_NoEnd(KrakenSpotVectorEnv(2, market=mkt, config=CFG)), SPEC_A)


def test_vector_wrapper_sanitises_each_row_like_the_single_wrapper(mkt) -> None:
    """Same market, start and actions: one sub-env of the vector wrapper and the single wrapper
    record the same sanitise notes and execute the same targets (one sanitisation function)."""
    single = RiskWrapper(KrakenSpotEnv(mkt, **CFG), SPEC_A)
    vector = RiskVectorWrapper(KrakenSpotVectorEnv(1, market=mkt, config=CFG), SPEC_A)
    single.reset(seed=3)
    vector.reset(seed=3)
    actions = [
        np.array([0.3, 0.2, 0.1, 0.4]),
        np.array([5.0, -2.0, 0.5, 0.25]),  # clipped
        np.array([np.nan, 0.2, 0.2, 0.2]),  # held
        np.array([1.5, 1.5, -1.5, -7.0]),  # clipped
        np.array([np.inf, 0.0, 0.0, 0.0]),  # held
        np.array([0.9, 0.1, 0.1, 0.1]),
    ]
    notes = []
    for a in actions:
        *_, info = single.step(a.copy())
        *_, infos = vector.step(a[None, :].copy())
        one, row = info["risk"], infos["risk"][0]
        assert one["interventions"] == row["interventions"]
        assert one["executed"].tobytes() == row["executed"].tobytes()
        assert np.array_equal(row["action"], a, equal_nan=True)  # the action as given, not the clipped one
        notes += [iv["detail"] for iv in row["interventions"] if iv["rule"] == "sanitise"]
    assert notes.count("action clipped to [-1, 1]") == 2
    assert notes.count("NaN/inf in action: held current weights") == 2


def _snapshots(mkt: Any, steps: int) -> list[Any]:
    env = KrakenSpotEnv(mkt, **CFG)
    env.reset(seed=0)
    rng = np.random.default_rng(5)
    out = [env.snapshot()]
    for _ in range(steps):
        env.step(rng.uniform(-1.0, 1.0, env.n_assets + 1))
        out.append(env.snapshot())
    return out


def test_fork_shares_the_market_inputs_and_starts_a_fresh_account(mkt) -> None:
    env = KrakenSpotEnv(mkt, **CFG)
    costs = cost_inputs_from_env(env, SPEC_A.cost_gate_horizon)
    first = RiskProjector(SPEC_A, mkt, costs)
    snaps = _snapshots(mkt, 12)
    rng = np.random.default_rng(9)
    proposals = [rng.dirichlet(np.ones(mkt.n_assets)) for _ in snaps]
    for s, p in zip(snaps[:6], proposals, strict=False):
        first.project(s, p)
    first.kill_switch.report_exchange_down("maintenance")
    state = repr(first.state_dict())

    twin = first.fork()
    for name in ("limits", "market", "vol_cap", "signals", "clusters", "costs", "_tables", "_lots", "_lim"):
        assert getattr(twin, name) is getattr(first, name), name  # computed once per market
    assert twin.ladder is not first.ladder and twin.kill_switch is not first.kill_switch
    assert not twin.kill_switch.engaged and twin.kill_switch.exchange_down is None
    fresh = RiskProjector(SPEC_A, mkt, costs)
    assert repr(twin.state_dict()) == repr(fresh.state_dict())
    assert all(a is not b for a, b in zip(twin._scratch, first._scratch, strict=True))  # own kernel buffers

    for s, p in zip(snaps, proposals, strict=True):  # decides like a new projector ...
        got, want = twin.project(s, p), fresh.project(s, p)
        assert got.target.tobytes() == want.target.tobytes() and got.rules == want.rules
        assert repr(twin.state_dict()) == repr(fresh.state_dict())
    assert repr(first.state_dict()) == state  # ... and leaves the original account alone
    twin.kill_switch.report_exchange_down("outage")
    assert first.kill_switch.exchange_down == "maintenance"
    assert first.project(snaps[7], proposals[7]).kill_switch_engaged
