"""`agents.vec.LevelVecEnv`: SB3 semantics over the package's vector env and risk layer."""

from __future__ import annotations

import numpy as np
import pytest

from agents.vec import LevelVecEnv, gap_action, shortfall_cost
from agents.views import ViewBuilder, n_features
from envs.data.synthetic import generate_synthetic_market
from envs.vector import KrakenSpotVectorEnv
from risk import RiskVectorWrapper

ASSETS = ["BTC", "ETH", "SOL", "ADA", "XRP", "DOT"]


@pytest.fixture(scope="module")
def market():  # type: ignore[no-untyped-def]
    return generate_synthetic_market(assets=ASSETS, n_bars=1500, seed=3)


def _inner(market, n=3, hours=100, mode="weights", autoreset="disabled"):  # type: ignore[no-untyped-def]
    env = KrakenSpotVectorEnv(n, market=market, episode_hours=hours, autoreset_mode=autoreset, action_mode=mode)
    return RiskVectorWrapper(env, {"kill_switch_breadth": 0.5})


def test_strategic_step_takes_k_hours_and_returns_the_log_growth(market) -> None:  # type: ignore[no-untyped-def]
    venv = LevelVecEnv(_inner(market), "strategic", every_hours=12)
    venv.seed(0)
    obs = venv.reset()
    assert obs["assets"].shape == (3, len(ASSETS), n_features("strategic"))
    eq0 = venv.core.ledger.equity.copy()
    t0 = venv.core.ledger.t.copy()
    action = np.tile(np.r_[np.full(len(ASSETS), 0.5), 0.2], (3, 1))
    venv.step_async(action)
    _, reward, done, _ = venv.step_wait()
    assert not done.any()
    np.testing.assert_array_equal(venv.core.ledger.t, t0 + 12)
    np.testing.assert_allclose(reward, np.log(venv.core.ledger.equity / eq0), rtol=1e-6)
    assert venv.env_hours == 12
    assert (venv.core.ledger.w.sum(axis=1) > 0.1).all()  # the target was executed at the first hour


def test_done_rows_reset_at_once_with_the_terminal_observation(market) -> None:  # type: ignore[no-untyped-def]
    venv = LevelVecEnv(_inner(market, hours=30), "flat")
    venv.seed(1)
    venv.reset()
    seen_done = False
    for _ in range(31):
        venv.step_async(np.zeros((3, len(ASSETS) + 1)))
        obs, _, done, infos = venv.step_wait()
        if done.any():
            seen_done = True
            i = int(np.flatnonzero(done)[0])
            assert "terminal_observation" in infos[i]
            assert infos[i]["TimeLimit.truncated"] is True
            assert infos[i]["terminal_observation"]["assets"].shape == obs["assets"].shape[1:]
            assert venv.core.ledger.equity[i] == pytest.approx(10_000.0)  # a fresh account
    assert seen_done


def test_tactical_needs_a_strategic_policy_and_a_disabled_autoreset(market) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="strategic"):
        LevelVecEnv(_inner(market, mode="execution"), "tactical")
    with pytest.raises(ValueError, match="autoreset_mode"):
        LevelVecEnv(_inner(market, autoreset="next_step"), "flat")


def test_tactical_reward_charges_shortfall_and_tracking(market) -> None:  # type: ignore[no-untyped-def]
    n = len(ASSETS)

    def strategic(view):  # type: ignore[no-untyped-def]
        return np.tile(np.r_[np.full(n, 0.5), 0.0], (view["assets"].shape[0], 1))

    venv = LevelVecEnv(_inner(market, mode="execution"), "tactical", every_hours=24, strategic=strategic)
    venv.seed(2)
    venv.reset()
    assert np.allclose(venv.target.sum(axis=1), 1.0)
    eq0 = venv.core.ledger.equity.copy()
    venv.step_async(np.concatenate([np.full((3, n), -1.0), np.full((3, n), -1.0)], axis=1))  # close none of the gap
    _, reward, _, _ = venv.step_wait()
    te = 0.5 * np.abs(venv.core.ledger.w - venv.target).sum(axis=1)
    expected = np.log(venv.core.ledger.equity / eq0) - 0.002 * te
    np.testing.assert_allclose(reward, expected, rtol=1e-5)
    assert (te > 0.4).all()  # nothing bought: far from the target


def test_gap_action_and_shortfall_cost() -> None:
    w = np.array([[0.2, 0.0]])
    target = np.array([[0.4, 0.4]])
    np.testing.assert_allclose(gap_action(w, target, np.array([[0.5, 1.0]])), [[0.3, 0.4, 0.3]])
    fills = [{"asset": "A", "side": "buy", "qty": 2.0, "price": 101.0},
             {"asset": "B", "side": "sell", "qty": 1.0, "price": 49.0}]
    cost = shortfall_cost(fills, np.array([100.0, 50.0]), {"A": 0, "B": 1}, 1000.0)
    assert cost == pytest.approx((2.0 * 1.0 + 1.0 * 1.0) / 1000.0)


def test_views_are_causal(market) -> None:  # type: ignore[no-untyped-def]
    """Changing bars after t does not change the view at t."""
    from dataclasses import replace

    env = KrakenSpotVectorEnv(1, market=market, episode_hours=50, start_mode="fixed", start=market.timestamps[900].item())
    env.reset(seed=0)
    view = ViewBuilder("flat", env.core).build(np.array([0]))
    t = int(env.core.ledger.t[0])
    close = market.close.copy()
    close[t + 1 :] *= 3.0
    changed = replace(market, close=close, high=np.maximum(market.high, close), open=market.open.copy())
    env2 = KrakenSpotVectorEnv(1, market=changed, episode_hours=50, start_mode="fixed",
                               start=market.timestamps[900].item())
    env2.reset(seed=0)
    np.testing.assert_array_equal(view["assets"], ViewBuilder("flat", env2.core).build(np.array([0]))["assets"])


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_off_policy_algorithms_train_a_level_and_resume_with_their_replay_buffer(market, tmp_path, algo) -> None:  # type: ignore[no-untyped-def]
    import json

    from agents.training import AgentConfig, load_level, train_level

    cfg = AgentConfig(algo=algo, n_envs=2, episode_hours=48, every_hours=24, learning_starts=16, buffer_size=500,
                      batch_size=16, checkpoint_every=32, net_arch=(16,))
    folder = tmp_path / algo
    res = train_level(cfg, "flat", lambda: _inner(market, n=2, hours=48), folder, 64, progress=False)
    assert res.timesteps == 64 and (folder / "model.zip").is_file()
    assert (folder / "checkpoint" / "replay_buffer.pkl").is_file()
    _, norm = load_level(folder, algo)
    assert norm is not None and norm.training is False
    again = train_level(cfg, "flat", lambda: _inner(market, n=2, hours=48), folder, 96, progress=False)
    assert again.resumed_from == 64 and json.loads((folder / "steps.json").read_text())["num_timesteps"] >= 96
    with pytest.raises(Exception, match="another agent config"):
        train_level(AgentConfig(algo=algo, n_envs=2, episode_hours=48, learning_starts=16, buffer_size=500,
                                batch_size=16, gamma=0.5), "flat", lambda: _inner(market, n=2, hours=48), folder, 200,
                    progress=False)


def test_halt_penalty_is_charged_once_on_the_halting_row_only(market) -> None:  # type: ignore[no-untyped-def]
    def inner():  # type: ignore[no-untyped-def]
        env = KrakenSpotVectorEnv(3, market=market, episode_hours=960, autoreset_mode="disabled")
        return RiskVectorWrapper(env, {"kill_switch_breadth": 0.5})

    plain = LevelVecEnv(inner(), "strategic", 24)
    charged = LevelVecEnv(inner(), "strategic", 24, halt_penalty=0.3)
    for v in (plain, charged):
        v.seed(4)
        v.reset()
    all_in = np.tile(np.r_[np.ones(len(ASSETS)), -1.0], (3, 1))  # fully invested: the ladder halts it
    reasons = []
    for _ in range(40):
        for v in (plain, charged):
            v.step_async(all_in)
        _, r_plain, done, infos = plain.step_wait()
        _, r_charged, _, _ = charged.step_wait()
        halted = np.array([i.get("termination_reason") == "halt" for i in infos])
        np.testing.assert_allclose(r_plain - r_charged, np.where(halted, 0.3, 0.0), atol=1e-6)
        reasons += [i.get("termination_reason") for i, d in zip(infos, done, strict=True) if d]
    assert "halt" in reasons and "episode_length" in reasons  # both kinds of ending were seen
    with pytest.raises(ValueError, match="halt_penalty"):
        LevelVecEnv(inner(), "strategic", 24, halt_penalty=-0.1)
