"""`RiskWrapper` against a tiny fake env (STYLE practice 11), then the real and vector envs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.data.market import HOUR, MarketData
from envs.snapshot import PortfolioSnapshot
from risk import SPEC_A, RiskVectorWrapper, RiskWrapper, intervention_counts, intervention_table
from tests.conftest import gate_off

T0 = 1_700_000_000 // HOUR * HOUR
LIM = gate_off(SPEC_A, corr_window=48)


def market(close: np.ndarray) -> MarketData:
    return MarketData(
        assets=tuple(f"A{i}" for i in range(close.shape[1])),
        timestamps=T0 + HOUR * np.arange(close.shape[0], dtype=np.int64),
        open=np.vstack([close[:1], close[:-1]]),
        high=close * 1.0005,
        low=close * 0.9995,
        close=close,
        volume=np.full(close.shape, 1e6),
        tradable=np.ones(close.shape, dtype=bool),
        filled=np.zeros(close.shape, dtype=bool),
    )


class FakeEnv(gym.Env):
    """Frictionless target-weight portfolio: rebalance at the close of t, mark at t+1.

    Exactly the attributes the risk layer relies on: ``market``, ``n_assets``,
    ``snapshot()``, ``action_to_weights``, ``weights_to_action`` (KrakenSpotEnv's mapping).
    """

    def __init__(self, mkt: MarketData, start: int = 50) -> None:
        self.market, self.n_assets, self.start = mkt, mkt.n_assets, start
        self.action_space = spaces.Box(-1.0, 1.0, (self.n_assets + 1,), np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.received: list[np.ndarray] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t, self.cash, self.units, self.peak = self.start, 10_000.0, np.zeros(self.n_assets), 10_000.0
        return np.zeros(1, np.float32), {}

    def equity(self) -> float:
        return float(self.cash + self.units @ self.market.close[self.t])

    def weights(self) -> np.ndarray:
        return self.units * self.market.close[self.t] / self.equity()

    def snapshot(self) -> PortfolioSnapshot:
        return PortfolioSnapshot(
            t=self.t,
            timestamp=int(self.market.timestamps[self.t]),
            cash=self.cash,
            units=self.units.copy(),
            prices=self.market.close[self.t].copy(),
            equity=self.equity(),
            weights=self.weights(),
            peak_equity=self.peak,
            tradable=self.market.tradable[self.t].copy(),
        )

    def action_to_weights(self, action: np.ndarray) -> np.ndarray:
        p = np.maximum(np.nan_to_num(np.asarray(action, dtype=np.float64)), 0.0)
        return self.weights() if not np.any(p > 0) else p[:-1] / p.sum()

    @staticmethod
    def weights_to_action(w: np.ndarray) -> np.ndarray:
        return np.append(w, 1.0 - w.sum())

    def step(self, action: np.ndarray):
        self.received.append(np.array(action, dtype=np.float64))
        w = self.action_to_weights(action)
        eq = self.equity()
        self.units = w * eq / self.market.close[self.t]
        self.cash = eq - float(w.sum() * eq)
        self.t += 1
        self.peak = max(self.peak, self.equity())
        truncated = self.t >= self.market.n_bars - 1
        return np.zeros(1, np.float32), 0.0, False, truncated, {"equity": self.equity(), "weights": self.weights()}


def crash_market(n_bars: int = 80, start: int = 50, drop: float = 0.03) -> MarketData:
    """Flat until ``start``, then every asset falls ``drop`` per hour."""
    close = np.tile([100.0, 50.0, 20.0], (n_bars, 1))
    close[start:] *= (1 - drop) ** np.arange(1, n_bars - start + 1)[:, None]
    return market(close)


FULL = np.array([1.0, 1.0, 1.0, 0.0])  # equal weight, fully invested


def test_info_risk_every_step_and_env_executes_the_projection() -> None:
    env = RiskWrapper(FakeEnv(crash_market(drop=0.0)), LIM)
    env.reset(seed=0)
    for _ in range(3):
        *_, info = env.step(FULL)
        r = info["risk"]
        assert set(r) >= {"proposed", "executed", "interventions", "ladder_level", "kill_switch", "halt", "drawdown"}
        np.testing.assert_allclose(r["proposed"], [1 / 3] * 3)
        np.testing.assert_allclose(r["executed"], [0.35 * 0 + 1 / 3] * 3)  # below the 0.35 cap
        np.testing.assert_allclose(
            env.unwrapped.action_to_weights(env.unwrapped.received[-1]), r["executed"], atol=1e-12
        )
    # a proposal above the asset cap: the env receives the capped target; the rule and amount are reported
    *_, info = env.step(np.array([1.0, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(info["risk"]["executed"], [0.35, 0.0, 0.0])
    assert info["risk"]["interventions"] == [
        {"rule": "asset_cap", "assets": ["A0"], "amount": pytest.approx(0.65), "detail": ""}
    ]
    np.testing.assert_allclose(info["weights"], [0.35, 0.0, 0.0], atol=1e-12)


def test_ladder_walks_down_and_halt_flattens_and_terminates() -> None:
    env = RiskWrapper(FakeEnv(crash_market(drop=0.03)), LIM)
    env.reset()
    levels, terminated, info = [], False, {}
    while not terminated:
        *_, terminated, truncated, info = env.step(FULL)
        levels.append(info["risk"]["ladder_level"])
        assert not truncated
    assert info["termination_reason"] == "halt" and info["risk"]["halt"] is True
    np.testing.assert_array_equal(info["risk"]["executed"], np.zeros(3))
    assert info["weights"].sum() == 0.0  # flat after the halt step
    assert levels == sorted(levels) and levels[-1] == 3 and 1 in levels
    assert any(iv["rule"] == "halt" for iv in info["risk"]["interventions"])


@pytest.mark.parametrize("bad", [np.array([np.nan, 1, 1, 0]), np.array([np.inf, 0, 0, 0])])
def test_nan_or_inf_actions_hold_without_exception(bad: Any) -> None:
    env = RiskWrapper(FakeEnv(crash_market(drop=0.0)), LIM)
    env.reset()
    env.step(FULL)
    before = env.unwrapped.weights()
    *_, info = env.step(bad)
    first = info["risk"]["interventions"][0]
    assert first["rule"] == "sanitise" and "held current weights" in first["detail"]
    np.testing.assert_allclose(info["risk"]["executed"], before)
    np.testing.assert_allclose(info["weights"], before, atol=1e-12)  # flat prices: no trade, same weights


@pytest.mark.parametrize(
    ("bad", "got"), [(np.ones(3), "got shape (3,)"), (np.ones((2, 4)), "got shape (2, 4)"), ("x", "non-numeric str")]
)
def test_wrong_shaped_or_non_numeric_actions_are_programming_errors(bad: Any, got: str) -> None:
    env = RiskWrapper(FakeEnv(crash_market(drop=0.0)), LIM)
    env.reset()
    with pytest.raises(ValueError, match=r"expected .*shape \(4,\)") as err:
        env.step(bad)
    assert got in str(err.value)
    assert env.unwrapped.received == []  # nothing reached the env


def test_out_of_bounds_action_is_clipped_with_a_reason() -> None:
    env = RiskWrapper(FakeEnv(crash_market(drop=0.0)), LIM)
    env.reset()
    *_, info = env.step(np.array([5.0, 1.0, -3.0, 0.0]))
    first = info["risk"]["interventions"][0]
    assert first["rule"] == "sanitise" and first["amount"] == pytest.approx(6.0)
    np.testing.assert_allclose(info["risk"]["proposed"], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(info["risk"]["executed"], [0.35, 0.35, 0.0])


def test_reset_new_account_clears_state_persistent_account_keeps_it() -> None:
    for new_account, engaged_after in [(True, False), (False, True)]:
        env = RiskWrapper(FakeEnv(crash_market(drop=0.0)), LIM, new_account_on_reset=new_account)
        env.reset()
        env.projector.kill_switch.report_exchange_down("maintenance")
        env.projector.kill_switch.report_exchange_up()
        *_, info = env.step(FULL)
        assert info["risk"]["kill_switch"]["engaged"] and not np.any(info["risk"]["executed"])
        _, info = env.reset()
        assert info["risk"]["kill_switch"]["engaged"] is engaged_after
        *_, info = env.step(FULL)
        assert info["risk"]["kill_switch"]["engaged"] is engaged_after


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(st.lists(st.floats(-3, 3), min_size=4, max_size=4), min_size=1, max_size=6))
def test_wrapper_never_exceeds_the_raw_action_in_any_asset(actions: list[list[float]]) -> None:
    env = RiskWrapper(FakeEnv(crash_market(drop=0.01)), LIM)
    env.reset()
    for a in actions:
        base = env.unwrapped
        raw = base.action_to_weights(np.clip(np.array(a), -1, 1))
        *_, info = env.step(np.array(a))
        assert np.all(info["risk"]["executed"] <= raw)


def test_report_counts_interventions_by_rule() -> None:
    def entry(level: int, *rules: tuple[str, float]) -> dict:
        ivs = [{"rule": r, "assets": ["A0"], "amount": a, "detail": ""} for r, a in rules]
        return {"risk": {"interventions": ivs, "ladder_level": level, "kill_switch": {"engaged": level == 2}}}

    history = [
        entry(0, ("asset_cap", 0.5)),
        entry(1, ("asset_cap", 0.25), ("ladder_size", 0.1)),
        entry(2, ("kill_switch", 0.2), ("asset_cap", 0.05)),
        entry(3, ("halt", 0.3)),
    ]
    counts = intervention_counts(history)
    assert counts["asset_cap"] == 3 and counts["ladder_size"] == 1 and counts["halt"] == 1
    assert counts["cluster_cap"] == 0 and list(counts)[:4] == ["sanitise", "untradable", "halt", "max_positions"]
    table = intervention_table(history)
    assert table.loc["asset_cap", "steps"] == 3 and table.loc["asset_cap", "share"] == 0.75
    assert table.loc["asset_cap", "total_amount"] == pytest.approx(0.8)
    assert table.loc["asset_cap", "mean_amount"] == pytest.approx(0.8 / 3)
    assert [table.loc[f"ladder_level_{k}", "steps"] for k in range(4)] == [1, 1, 1, 1]
    assert table.loc["kill_switch_engaged", "steps"] == 1


def test_report_on_a_wrapped_episode() -> None:
    env = RiskWrapper(FakeEnv(crash_market(n_bars=300, drop=0.03)), LIM)
    env.reset()
    history, done = [], False
    while not done:
        *_, terminated, truncated, info = env.step(np.array([1.0, 0.0, 0.0, 0.0]))
        history.append(info)
        done = terminated or truncated
    assert history[-1]["termination_reason"] == "halt"
    counts = intervention_counts(history)
    assert counts["halt"] == 1
    assert counts["asset_cap"] >= sum(1 for h in history if h["risk"]["ladder_level"] == 0) > 0


# ----------------------------------------------------------- real envs
def test_real_env_wrapped_records_and_obeys_limits(tiny_market) -> None:
    from envs.kraken_spot import KrakenSpotEnv

    mkt = tiny_market(n_bars=120, assets=("BTC", "ETH", "SOL"), seed=3, vol=0.002)
    env = RiskWrapper(KrakenSpotEnv(market=mkt, start_mode="fixed", episode_hours=40, window=4), LIM)
    env.reset(seed=0)
    for _ in range(10):
        *_, info = env.step(np.array([1.0, 1.0, 1.0, 0.0], dtype=np.float32))
        x = info["risk"]["executed"]
        assert np.all(x <= 0.35) and x.sum() <= 1.0
        np.testing.assert_allclose(info["target_weights"], x, atol=1e-12)


def test_vector_env_wrapped_per_sub_env(tiny_market) -> None:
    from envs.vector import KrakenSpotVectorEnv

    mkt = tiny_market(n_bars=120, assets=("BTC", "ETH", "SOL"), seed=4, vol=0.002)
    venv = RiskVectorWrapper(KrakenSpotVectorEnv(3, market=mkt, config={"episode_hours": 30, "window": 4}), LIM)
    venv.reset(seed=1)
    venv.projectors[1].kill_switch.report_exchange_down("maintenance")
    acts = np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0], [np.nan, 0, 0, 0]])
    *_, infos = venv.step(acts)
    r = infos["risk"]
    np.testing.assert_allclose(r[0]["executed"], [0.35, 0.0, 0.0])
    assert r[1]["kill_switch"]["engaged"] and not np.any(r[1]["executed"])
    assert r[2]["interventions"][0]["rule"] == "sanitise"
    np.testing.assert_allclose(infos["target_weights"][0], [0.35, 0.0, 0.0], atol=1e-12)
    # an episode end resets that account's risk state at the autoreset step
    ended = False
    for _ in range(40):
        *_, terms, truncs, infos = venv.step(np.tile([1.0, 1.0, 1.0, 0.0], (3, 1)))
        if ended:
            assert infos["risk"][1] == {"autoreset": True}
            assert not venv.projectors[1].kill_switch.engaged
            break
        ended = bool(terms[1] or truncs[1])
    assert ended
