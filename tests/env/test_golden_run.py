"""Golden run: a fixed-seed 2,000-step history whose hash is committed.

Restructurings of the execution kernel, the numpy/Decimal twins, the fee and slippage
models or the risk projection must not change behaviour. The twin tests compare the
implementations with each other; this test compares the package with *itself before the
change*: real Kraken bars, `RiskWrapper` (spec_a) outermost, seeded random actions, limit
and market orders, flat and tiered fees. Every step's observation, reward, money, fills,
rejections and risk decision go into one SHA-256. A change of any bit fails the test.

If behaviour is changed on purpose, rerun with ``KRAKENRL_PRINT_GOLDEN=1`` and commit the
new hashes together with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from envs.data.loaders import load_kraken_dir
from envs.kraken_spot import KrakenSpotEnv
from risk import RiskWrapper

STEPS = 2_000
GOLDEN = {
    ("limit", "flat"): "93b46712fbfdc58b2fb14aa638bb5508cdc21bc259a6c5c53a3bd3b4cb94f0eb",
    ("limit", "kraken_tiers"): "183fbc68a361b83eff90c4d1c66234664bd9b33eff5327f0f352409fe91305fc",
    ("market", "flat"): "40857a287a6f8d233eadb6fd2b032cd72c5e1b52ec457bcf345617735e9a7d12",
    ("market", "kraken_tiers"): "f4f54ba9ccbb6d8cec8a4681e090f61c7fd9c4471a780897968dd9b20c522727",
}


@pytest.fixture(scope="module")
def market(shared_data):
    return load_kraken_dir(shared_data / "kraken" / "ohlcvt_1h", start="2021-01-01", end="2021-05-31")


def _default(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return repr(x)


def history_hash(market, order_type: str, fee_model: str) -> tuple[str, int]:
    env = KrakenSpotEnv(
        market, order_type=order_type, fee_model=fee_model, start_mode="fixed", episode_hours=STEPS,
        fee_volume_30d=60_000.0,
    )
    wrapped = RiskWrapper(env, "spec_a")
    rng = np.random.default_rng(20261130)
    h = hashlib.sha256()
    obs, _ = wrapped.reset(seed=7)
    resets = 0
    for _ in range(STEPS):
        action = rng.uniform(-1.0, 1.0, wrapped.action_space.shape)
        action[rng.random(action.shape) < 0.3] = -1.0  # some assets out, so orders also shrink and close
        obs, reward, terminated, truncated, info = wrapped.step(action)
        for key in sorted(obs):
            h.update(np.ascontiguousarray(obs[key]).tobytes())
        h.update(np.float64(reward).tobytes())
        record = {k: info[k] for k in ("equity", "cash", "fees", "slippage", "turnover", "weights",
                                       "target_weights", "fills", "rejected") if k in info}
        record["risk"] = info.get("risk")
        h.update(json.dumps(record, sort_keys=True, default=_default).encode())
        if terminated or truncated:
            resets += 1
            obs, _ = wrapped.reset(seed=7 + resets)
    return h.hexdigest(), resets


@pytest.mark.parametrize(("order_type", "fee_model"), list(GOLDEN))
def test_golden_history_hash_is_unchanged(market, order_type, fee_model):
    digest, _ = history_hash(market, order_type, fee_model)
    if os.environ.get("KRAKENRL_PRINT_GOLDEN"):
        print(f'("{order_type}", "{fee_model}"): "{digest}",')
    assert digest == GOLDEN[(order_type, fee_model)]


VECTOR_GOLDEN = "10f565d3c3fecb2131ea6278f8760d0b7e68afa8efce6e9400a295ed4e4bc49e"


def vector_history_hash(market) -> str:
    """4 accounts of the vector env in execution mode under `RiskVectorWrapper` (random starts)."""
    from envs.vector import KrakenSpotVectorEnv
    from risk import RiskVectorWrapper

    venv = RiskVectorWrapper(
        KrakenSpotVectorEnv(4, market, action_mode="execution", episode_hours=500, fee_model="kraken_tiers"),
        "spec_a",
    )
    rng = np.random.default_rng(11)
    h = hashlib.sha256()
    obs, _ = venv.reset(seed=5)
    for _ in range(STEPS // 4):
        action = rng.uniform(-1.0, 1.0, venv.action_space.shape)
        obs, rewards, terms, truncs, infos = venv.step(action)
        for key in sorted(obs):
            h.update(np.ascontiguousarray(obs[key]).tobytes())
        h.update(np.asarray(rewards, dtype=np.float64).tobytes())
        h.update(np.asarray(terms).tobytes() + np.asarray(truncs).tobytes())
        record = {k: infos[k] for k in ("equity", "cash", "fees", "weights", "fills", "rejected", "risk",
                                        "termination_reason") if k in infos}
        h.update(json.dumps(record, sort_keys=True, default=_default).encode())
    return h.hexdigest()


def test_golden_vector_history_hash_is_unchanged(market):
    digest = vector_history_hash(market)
    if os.environ.get("KRAKENRL_PRINT_GOLDEN"):
        print(f'VECTOR_GOLDEN = "{digest}"')
    assert digest == VECTOR_GOLDEN
