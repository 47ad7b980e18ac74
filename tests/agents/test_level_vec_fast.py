"""The fast paths of `agents.vec` / `agents.views` give the values of the code they replaced, bit for bit.

`ViewBuilder.build` (bar-only columns from a precomputed panel) against the view built from
its parts; `shortfall_costs` (fill records) against `shortfall_cost` (fill dicts); and whole
`LevelVecEnv` runs over the batched risk path against the per-row one, for every level.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agents.vec import LevelVecEnv, _row_infos, shortfall_cost, shortfall_costs
from agents.views import CLIP, LEVELS, ViewBuilder, _centre_p_up, _signals
from envs.data.synthetic import generate_synthetic_market
from envs.vector import KrakenSpotVectorEnv
from risk import RiskVectorWrapper
from risk.batch import _same

ASSETS = ["BTC", "ETH", "SOL", "ADA", "XRP"]
NAMES = tuple(f"meta_h{h}_{k}" for h in (1, 4, 24) for k in ("p_up", "exp_return")) + tuple(
    f"regime_p_{r}" for r in ("trend", "range", "high_vol", "crash"))


@pytest.fixture(scope="module")
def market():  # type: ignore[no-untyped-def]
    return generate_synthetic_market(assets=ASSETS, n_bars=900, seed=8)


def _signals_for(market: Any, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sig = rng.uniform(-30.0, 30.0, (market.n_bars, market.n_assets, len(NAMES)))  # some beyond the clip
    sig[rng.random(sig.shape[:2]) < 0.2] = np.nan  # no prediction: the available flag is 0
    return sig


def _inner(market: Any, mode: str = "weights", n: int = 4) -> RiskVectorWrapper:
    env = KrakenSpotVectorEnv(n, market=market, episode_hours=60, autoreset_mode="disabled", action_mode=mode,
                              signals=_signals_for(market), signal_names=NAMES)
    return RiskVectorWrapper(env, {"kill_switch_breadth": 0.5, "dd_halt": 0.05, "dd_cut": 0.03, "dd_reduce": 0.02})


def _reference_view(vb: ViewBuilder, rows: np.ndarray, target: Any = None, phase: Any = None) -> dict[str, Any]:
    """The view built from its parts at every call (the code `ViewBuilder.build` replaced)."""
    core = vb.core
    led = core.ledger
    t = led.t[rows]
    pf = led.pf[rows]
    n = core.market.n_assets
    w = pf[:, :n].astype(np.float32)
    sig = _signals(core, t, vb.idx, vb.flag)
    _centre_p_up(sig, vb.signal_names)
    trad = vb.tradable[t][:, :, None]
    if vb.level == "strategic":
        parts, port = [vb.slow[t], sig, trad, w[:, :, None]], pf[:, n : n + 2]
    elif vb.level == "flat":
        parts, port = [core.features[t][:, :, :4], vb.slow[t], sig, trad, w[:, :, None]], pf[:, n : n + 2]
    else:
        tg = target.astype(np.float32)
        parts = [(tg - w)[:, :, None], tg[:, :, None], w[:, :, None], core.features[t][:, :, :4], sig, trad]
        port = np.concatenate([pf[:, n : n + 2], phase.astype(np.float32)[:, None]], axis=1)
    assets = np.clip(np.concatenate(parts, axis=2), -CLIP, CLIP).astype(np.float32)
    return {"assets": assets, "portfolio": np.asarray(port, dtype=np.float32)}


@pytest.mark.parametrize("level", LEVELS)
def test_view_from_the_panel_equals_the_view_from_its_parts(market: Any, level: str) -> None:
    inner = _inner(market)
    vb = ViewBuilder(level, inner.unwrapped.core)
    inner.reset(seed=2)
    rng = np.random.default_rng(1)
    rows = np.arange(4)
    for _ in range(40):
        inner.step(rng.uniform(-1.0, 1.0, inner.action_space.shape))
        target = rng.uniform(-20.0, 20.0, (4, market.n_assets))  # beyond the clip too
        phase = rng.uniform(0.0, 1.0, 4)
        got, ref = vb.build(rows, target, phase), _reference_view(vb, rows, target, phase)
        assert got.keys() == ref.keys()
        for k in ref:
            assert got[k].dtype == ref[k].dtype and got[k].tobytes() == ref[k].tobytes()
        sub = rows[rng.random(4) < 0.5]
        got, ref = vb.build(sub, target[sub], phase[sub]), _reference_view(vb, sub, target[sub], phase[sub])
        assert all(got[k].tobytes() == ref[k].tobytes() for k in ref)


def test_shortfall_costs_equal_shortfall_cost_per_account(market: Any) -> None:
    env = KrakenSpotVectorEnv(6, market=market, episode_hours=200, order_type="market")
    env.reset(seed=3)
    rng = np.random.default_rng(4)
    index = {a: i for i, a in enumerate(market.assets)}
    n_fills = 0
    for _ in range(30):
        arrival = market.close[env.core.ledger.t] * rng.uniform(0.98, 1.02, (6, market.n_assets))
        eq = env.core.ledger.equity.copy()
        eq[0] = 0.0  # a ruined account costs nothing
        *_, info = env.step(rng.uniform(-1.0, 1.0, env.action_space.shape))
        led = env.core.ledger
        fast = shortfall_costs(info["n_fills"], led.fc, led.fv, arrival, eq)
        slow = [shortfall_cost(info["fills"][i], arrival[i], index, float(eq[i])) for i in range(6)]
        assert fast.tolist() == slow
        n_fills += int(info["n_fills"].sum())
    assert n_fills > 50


def test_row_infos_equal_the_per_row_dicts() -> None:
    infos = {"equity": np.array([1.0, 2.5, 3.0]), "fees": np.array([0.0, 0.1, 0.2]), "drawdown": np.zeros(3),
             "termination_reason": np.array(["", "halt", ""], dtype=object)}
    rows = np.array([True, True, False])
    got = _row_infos(infos, rows)
    assert got == [{"equity": 1.0, "fees": 0.0, "drawdown": 0.0},
                   {"equity": 2.5, "fees": 0.1, "drawdown": 0.0, "termination_reason": "halt"}]
    assert all(type(v) is float for d in got for k, v in d.items() if k != "termination_reason")


def _level_run(market: Any, level: str, batched: bool, steps: int) -> list[Any]:
    inner = _inner(market, "execution" if level == "tactical" else "weights")
    if not batched:
        inner._batch = None

    def strategic(view: dict[str, np.ndarray]) -> np.ndarray:  # a fixed function of the view
        a = view["assets"]
        return np.tanh(np.concatenate([a[:, :, 0] - a[:, :, 1], a[:, :1, 2]], axis=1))

    venv = LevelVecEnv(inner, level, every_hours=6, strategic=strategic if level == "tactical" else None,
                       halt_penalty=0.5)
    venv.seed(5)
    out: list[Any] = [venv.reset()]
    rng = np.random.default_rng(6)
    for _ in range(steps):
        venv.step_async(rng.uniform(-1.0, 1.0, (venv.num_envs, venv.action_space.shape[0])))
        out.append(venv.step_wait())
    return out


@pytest.mark.parametrize("level", LEVELS)
def test_level_env_over_the_batched_risk_path_equals_the_per_row_path(market: Any, level: str) -> None:
    steps = 25 if level == "strategic" else 150
    per_row, batched = _level_run(market, level, False, steps), _level_run(market, level, True, steps)
    dones = 0
    for a, b in zip(per_row, batched, strict=True):
        assert _same(a, b)
        dones += int(np.sum(a[2])) if isinstance(a, tuple) else 0
    assert dones > 0  # episodes ended (and rows were reset) inside the compared run


def test_vector_env_without_observations_steps_the_same(market: Any) -> None:
    """``observations=False`` (what `LevelVecEnv` sets) skips the observation and changes nothing else."""
    full = KrakenSpotVectorEnv(3, market=market, episode_hours=40)
    bare = KrakenSpotVectorEnv(3, market=market, episode_hours=40)
    bare.observations = False
    obs, _ = full.reset(seed=1)
    none, _ = bare.reset(seed=1)
    assert isinstance(obs, dict) and none is None
    rng = np.random.default_rng(2)
    for _ in range(60):
        act = rng.uniform(-1.0, 1.0, full.action_space.shape)
        a, b = full.step(act), bare.step(act)
        assert b[0] is None
        assert _same(list(a[1:4]), list(b[1:4]))
        assert all(_same(a[4][k], b[4][k]) for k in a[4] if k not in ("fills", "rejected"))
        assert list(a[4]["fills"]) == list(b[4]["fills"])
