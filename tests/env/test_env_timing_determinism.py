"""Timing contract (no lookahead), determinism, and vector env == single env bit for bit."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.kraken_spot import KrakenSpotEnv
from envs.vector import KrakenSpotVectorEnv
from tests.conftest import make_tiny_market

N_BARS = 120


def same(a: Any, b: Any) -> bool:
    """Deep, bit-exact equality of infos / observations (NaN equal to NaN)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return bool(a == b) or (a != a and b != b)


def rollout(env: KrakenSpotEnv, actions: np.ndarray, seed: int) -> list[tuple]:
    obs, info = env.reset(seed=seed)
    out = [(obs, info)]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs, r, term, trunc, info))
        if term or trunc:
            break
    return out


@pytest.mark.parametrize("order_type", ["limit", "market"])
def test_garbage_after_bar_t_changes_nothing_up_to_the_decision_at_t(order_type):
    market = make_tiny_market(n_bars=N_BARS, assets=("BTC", "ETH", "SOL"), seed=5, vol=0.02)
    cfg = EnvConfig(window=8, start_mode="fixed", episode_hours=N_BARS, order_type=order_type)
    actions = np.random.default_rng(1).uniform(-1, 1, size=(N_BARS, 4))
    for cut in (30, 57, 90):
        rng = np.random.default_rng(cut)
        later = slice(cut + 1, None)
        junk = {f: getattr(market, f).copy() for f in ("open", "high", "low", "close", "volume")}
        for f in ("open", "high", "low", "close"):
            junk[f][later] = rng.uniform(1, 1e5, size=junk[f][later].shape)
        junk["volume"][later] = rng.uniform(0, 10, size=junk["volume"][later].shape)
        garbage = replace(market, **junk)
        env_a, env_b = KrakenSpotEnv(market, cfg), KrakenSpotEnv(garbage, cfg)
        first = env_a.reset(seed=0)[0]
        assert same(first, env_b.reset(seed=0)[0])
        start = env_a.snapshot().t
        for a in actions[: cut - start]:  # every step whose fills happen in bars <= cut
            ra, rb = env_a.step(a), env_b.step(a)
            assert same(ra, rb)
        assert env_a.snapshot().t == cut
        # the decision at `cut`: same observation (compared above), account, weights and orders
        assert same(env_a.snapshot().__dict__, env_b.snapshot().__dict__)
        for a in actions[:5]:
            np.testing.assert_array_equal(env_a.action_to_weights(a), env_b.action_to_weights(a))
        xa, xb = env_a.core.arrays, env_b.core.arrays
        for name in ("price", "tradable", "limit_offset", "half_spread", "sigma"):  # what sizing reads at t
            assert same(getattr(xa, name)[: cut + 1], getattr(xb, name)[: cut + 1]), name


def test_same_seed_and_actions_give_identical_info_histories():
    market = make_tiny_market(n_bars=N_BARS, assets=("BTC", "ETH"), seed=9, vol=0.03)
    cfg = EnvConfig(window=6, episode_hours=50, reward="differential_sharpe")
    actions = np.random.default_rng(2).uniform(-1, 1, size=(60, 3)).astype(np.float32)
    a = rollout(KrakenSpotEnv(market, cfg), actions, seed=42)
    b = rollout(KrakenSpotEnv(market, cfg), actions, seed=42)
    assert len(a) == 51 and same(a, b)
    c = rollout(KrakenSpotEnv(market, cfg), actions, seed=43)
    assert not same(a[0][1], c[0][1])  # another seed starts elsewhere


@pytest.mark.equivalence
def test_vector_env_matches_single_envs_bit_for_bit_across_autoresets():
    market = make_tiny_market(n_bars=N_BARS, assets=("BTC", "ETH", "SOL"), seed=3, vol=0.02)
    cfg = EnvConfig(window=5, episode_hours=12, reward="drawdown_penalised", fee_model="kraken_tiers")
    n, steps, seed = 4, 30, 100
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(steps, n, 4))
    actions[rng.random((steps, n)) < 0.2] = 0.0
    venv = KrakenSpotVectorEnv(n, market=market, config=cfg)
    vobs, _ = venv.reset(seed=seed)
    singles = [KrakenSpotEnv(market, cfg) for _ in range(n)]
    sobs = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    done = np.zeros(n, dtype=bool)
    for k in range(steps):
        for i in range(n):
            assert same({key: v[i] for key, v in vobs.items()}, sobs[i])
            assert same(venv.snapshot(i).__dict__, singles[i].snapshot().__dict__)
        vobs, vrew, vterm, vtrunc, vinfo = venv.step(actions[k])
        for i, env in enumerate(singles):
            if done[i]:  # NEXT_STEP autoreset: this step only resets sub-env i
                sobs[i], _ = env.reset()
                assert vrew[i] == 0.0 and not vterm[i] and not vtrunc[i]
                done[i] = False
                continue
            sobs[i], r, term, trunc, info = env.step(actions[k, i])
            assert vrew[i] == r and vterm[i] == term and vtrunc[i] == trunc
            assert vinfo["equity"][i] == info["equity"] and vinfo["fees"][i] == info["fees"]
            assert np.array_equal(vinfo["weights"][i], info["weights"])
            assert vinfo["n_fills"][i] == len(info["fills"])
            done[i] = term or trunc
    assert done.any() or k == steps - 1


def test_action_mapping_round_trip_and_all_cash():
    env = KrakenSpotEnv(make_tiny_market(n_bars=60, assets=("BTC", "ETH", "SOL")), EnvConfig(window=4))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        w = rng.dirichlet(np.ones(4))[:3] * rng.uniform(0, 1)
        w[rng.random(3) < 0.3] = 0.0
        np.testing.assert_allclose(env.action_to_weights(env.weights_to_action(w)), w, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(env.action_to_weights(np.array([0, 0, 0, 1.0])), np.zeros(3))
    assert env.weights_to_action(np.zeros(3)).tolist() == [0.0, 0.0, 0.0, 1.0]
