"""The batched vector risk path (`risk.batch`) against the per-row path it replaces, bit for bit.

Three levels: the numba driver `project_rows` against `project_row` called per row; the
array ladder `ladder_rows` against `DrawdownLadder.update`; and the whole
`RiskVectorWrapper` step, batched against the per-row path (``_batch = None``), on a
stress market with halts, kill-switch engagements, NaN and clipped actions.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from envs.data.market import HOUR
from envs.vector import KrakenSpotVectorEnv
from risk import SPEC_A, DrawdownLadder, RiskProjector, RiskVectorWrapper
from risk import kernels as K
from risk.batch import RiskInfos, _same
from tests.risk.test_risk_properties import random_market

LIM = replace(SPEC_A, dd_reduce=0.01, dd_cut=0.02, dd_halt=0.04, corr_window=48, spread_window=24, vol_window=24)


def _random_rows(rng: np.random.Generator, proj: RiskProjector, b: int) -> dict[str, np.ndarray]:
    n = proj.n_assets
    t = rng.integers(60, proj.market.n_bars, b)
    props = rng.uniform(-0.2, 0.6, (b, n))
    props[rng.random((b, n)) < 0.05] = np.nan
    weights = rng.dirichlet(np.ones(n + 1), b)[:, :n] * rng.uniform(0.0, 1.0, (b, 1))
    weights[rng.random((b, n)) < 0.3] = 0.0
    prices = np.nan_to_num(proj.market.close[t], nan=1.0)
    equity = rng.uniform(50.0, 5e4, b)
    units = weights * equity[:, None] / prices
    units[rng.random((b, n)) < 0.05] = 1e-9  # dust
    return {
        "props": props, "weights": weights, "units": units, "tradable": proj.market.tradable[t].copy(),
        "prices": prices, "t": t, "equity": equity, "level": rng.integers(0, 4, b),
        "ks": rng.random(b) < 0.2, "sched": rng.random(b) < 0.2,
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_project_rows_equals_project_row_per_row(seed: int) -> None:
    mkt = random_market(seed, 7, 400, True, True)
    proj = RiskProjector(replace(LIM, no_trade_band=0.01), mkt)
    rng = np.random.default_rng(seed)
    r = _random_rows(rng, proj, 64)
    b, n = r["props"].shape
    labels = np.stack([proj.clusters.labels(int(t)) for t in r["t"]])
    out = np.empty((b, 2, n))
    codes = np.zeros(b, dtype=np.int64)
    amounts, changed = np.empty((b, K.N_RULES)), np.empty((b, K.N_RULES, n), dtype=bool)
    scratch = tuple(K.new_scratch(n))
    redo = K.project_rows(r["props"], r["weights"], r["units"], r["tradable"], r["prices"], labels, out, r["t"],
                          r["level"], r["ks"], r["sched"], r["equity"], proj._tables, scratch, amounts, changed, codes)
    assert redo == np.sum((codes < 0) | ((codes & (K.S_INTEGRITY | K.S_TRIGGER)) != 0))
    seen = set()
    for i in range(b):
        one = np.empty((2, n))
        row = (r["props"][i].copy(), r["weights"][i], r["units"][i], r["tradable"][i], r["prices"][i], labels[i], one)
        code = K.project_row(row, int(r["t"][i]), int(r["level"][i]), bool(r["ks"][i]), bool(r["sched"][i]),
                             float(r["equity"][i]), proj._tables, proj._scratch_tuple)
        assert code == codes[i]
        if code < 0:
            continue
        assert out[i].tobytes() == one.tobytes()
        assert np.array_equal(changed[i], proj._scratch.changed)
        for rule in range(K.N_RULES):
            if code & (1 << rule):
                seen.add(rule)
                assert amounts[i, rule] == proj._scratch.amounts[rule]
    assert len(seen) >= 6  # the rows exercised many rules, not only the trivial ones


def test_ladder_rows_equals_drawdown_ladder() -> None:
    rng = np.random.default_rng(5)
    b = 400
    held = rng.choice([0.0, 1000.0, 1100.0, np.nan], b, p=[0.2, 0.4, 0.35, 0.05])
    snap = rng.choice([1000.0, 1050.0, np.inf], b, p=[0.5, 0.45, 0.05])
    equity = 1000.0 * rng.choice([1.0, 0.99, 0.98, 0.96, 0.95, 0.9, 1.2], b)  # exact thresholds included
    equity[rng.random(b) < 0.03] = np.nan
    halted = rng.random(b) < 0.2
    t = rng.integers(-1, 102, b)
    market_ts = 1_700_000_000 // HOUR * HOUR + HOUR * np.arange(100, dtype=np.int64)
    ts = market_ts[np.clip(t, 0, 99)] + np.where(rng.random(b) < 0.05, HOUR, 0)
    engage = rng.random(100) < 0.1
    thr = np.array([LIM.dd_halt, LIM.dd_cut, LIM.dd_reduce])
    peak, dd = np.empty(b), np.empty(b)
    level, sched, slow = np.empty(b, dtype=np.int64), np.empty(b, dtype=bool), np.empty(b, dtype=bool)
    down = rng.random(b) < 0.05
    n_slow = K.ladder_rows(held, snap, equity, halted, down, thr, t, ts, market_ts, engage,
                           LIM.dd_cut_rebalance_hours, peak, dd, level, sched, slow)
    assert n_slow == slow.sum()
    fast = 0
    for i in range(b):
        ladder = DrawdownLadder(peak_equity=float(held[i]), halted=bool(halted[i]))
        lv, d = ladder.update(float(equity[i]), float(snap[i]), int(ts[i]), LIM)
        outside = not 0 <= t[i] < 100
        expect_slow = (
            not all(np.isfinite([held[i], snap[i], equity[i]])) or not ladder.peak_equity > 0 or outside
            or (ladder.halted and not halted[i]) or ts[i] != market_ts[min(max(t[i], 0), 99)]
            or bool(engage[min(max(t[i], 0), 99)]) or down[i]
        )
        assert slow[i] == expect_slow, i
        if expect_slow:
            continue
        fast += 1
        assert (peak[i], dd[i], level[i]) == (ladder.peak_equity, d, lv)
        assert sched[i] == (lv == 2 and (int(ts[i]) // HOUR) % LIM.dd_cut_rebalance_hours != 0)
    assert fast > 100 and len(set(level[~slow].tolist())) == 4


def _run(batched: bool, lazy: bool, steps: int, seed: int) -> list:
    mkt = random_market(seed, 6, 700, True, True)
    env = KrakenSpotVectorEnv(6, market=mkt, config={"episode_hours": 120, "window": 4}, action_mode="execution")
    venv = RiskVectorWrapper(env, LIM, lazy_info=lazy)
    if not batched:
        venv._batch = None
    rng = np.random.default_rng(seed)
    obs, _ = venv.reset(seed=seed)
    out: list = [obs]
    for k in range(steps):
        act = rng.uniform(-1.3, 1.3, venv.action_space.shape)
        act[rng.random(act.shape[0]) < 0.05, 0] = np.nan
        if k == 30:
            venv.projectors[2].kill_switch.report_exchange_down("maintenance")
        obs, rew, term, trunc, infos = venv.step(act)
        out.append((obs, rew, term, trunc, infos))
    out.append([p.state_dict() for p in venv.projectors])
    return out


@pytest.mark.parametrize("seed", [3, 4])
def test_batched_wrapper_equals_per_row_path(seed: int) -> None:
    per_row = _run(batched=False, lazy=False, steps=400, seed=seed)
    batched = _run(batched=True, lazy=False, steps=400, seed=seed)
    assert _same(per_row[-1], batched[-1])  # ladder and kill-switch state, audits included
    rules, halts, engaged = set(), 0, 0
    for a, b in zip(per_row[1:-1], batched[1:-1], strict=True):
        for x, y in zip(a[:4], b[:4], strict=True):
            assert _same(x, y)
        ia, ib = a[4], b[4]
        assert ia.keys() == ib.keys()
        for key in ia:
            if key not in ("fills", "rejected"):
                assert _same(ia[key], ib[key]), key
        assert isinstance(ib["risk"], list) and _same(ia["risk"], ib["risk"])
        for r in ib["risk"]:
            rules |= {iv["rule"] for iv in r.get("interventions", [])}
            halts += bool(r.get("halt"))
            engaged += bool(r.get("kill_switch", {}).get("engaged"))
    assert halts > 0 and engaged > 0  # the run went through halts and engaged switches
    assert {"sanitise", "halt", "kill_switch", "asset_cap"} <= rules


def test_lazy_infos_are_the_eager_dicts() -> None:
    eager = _run(batched=True, lazy=False, steps=150, seed=6)
    lazy = _run(batched=True, lazy=True, steps=150, seed=6)
    for a, b in zip(eager[1:-1], lazy[1:-1], strict=True):
        risk = b[4]["risk"]
        assert isinstance(risk, RiskInfos) and len(risk) == len(a[4]["risk"])
        assert risk == a[4]["risk"] and risk[-1] is risk[len(risk) - 1]
    assert _same(eager[-1], lazy[-1])
