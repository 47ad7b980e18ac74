"""``paper_trade.py command=report``: the evaluation report over the paper period, against the baselines.

The paper run becomes an `agents.baselines.EpisodeResult` read from the state file (equity
curve, fees, slippage, turnover, fills, executed targets, risk interventions); the baselines
are rolled over the same bars through the same env, fees and risk layer as
`scripts/evaluate.py` does; `agents.evaluation.metrics_document` and `agents.report` write
``metrics.json`` and ``report.html``. Hours recorded ``missed`` have no row (the curve
skips them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.baselines import EpisodeResult
from envs.data.market import HOUR, MarketData
from paper.state import Stage, StateStore
from risk.report import intervention_counts


def episode_from_store(store: StateStore, market: MarketData, initial_cash: float,
                       name: str = "paper") -> EpisodeResult:
    """The paper run as an EpisodeResult (step k = the k-th completed hour)."""
    assets = tuple(market.assets)
    rows = store.ledger_rows()
    seals = {r.hour: r.payload_obj() for r in store.audit_records() if r.terminal}
    orders = {o.client_order_id: o for o in store.orders()}
    by_pair = {(market.pairs[a].altname if a in market.pairs else f"{a}USD"): a for a in assets}
    eq = [float(initial_cash)] + [float(r["equity"]) for r in rows]
    stamps = [store.first_hour] + [r["hour"] + HOUR for r in rows]
    fills, weights, targets, actions, risk = [], [], [], [], []
    slip, turn = [], []
    for r in rows:
        d = store.stage_payload(r["hour"], Stage.DECIDED)["decision"]
        seal = seals.get(r["hour"], {})
        slip.append(float(seal.get("slippage", 0.0)))
        before = float(seal.get("equity_before", 0.0))
        turn.append(float(seal.get("traded", 0.0)) / before if before > 0 else 0.0)
        hour_fills = []
        for f in store.fills(r["hour"]):
            o = orders[f.client_order_id]
            hour_fills.append({"pair": o.pair, "asset": by_pair.get(o.pair, o.pair), "side": o.side,
                               "qty": float(f.units), "price": float(f.price), "fee": float(f.fee),
                               "liquidity": f.liquidity})
        fills.append(hour_fills)
        equity = float(r["equity"])
        w = [float(r["positions"].get(a, 0)) * float(r["marks"].get(a, 0)) / equity if equity > 0 else 0.0
             for a in assets]
        weights.append(w)
        targets.append(d["target"])
        actions.append([np.nan if x is None else x for x in d["action"]])
        risk.append(d["risk"])
    e = np.asarray(eq)
    n = len(rows)
    return EpisodeResult(
        name=name, seed=0, returns=e[1:] / e[:-1] - 1.0, equity=e, timestamps=np.asarray(stamps, dtype=np.int64),
        fees=np.asarray([float(r["fees"]) for r in rows]), slippage=np.asarray(slip), turnover=np.asarray(turn),
        n_fills=np.asarray([len(f) for f in fills], dtype=np.int64),
        weights=np.asarray(weights, dtype=np.float64).reshape(n, len(assets)),
        target_weights=np.asarray(targets, dtype=np.float64).reshape(n, len(assets)),
        actions=np.asarray(actions, dtype=np.float64).reshape(n, -1) if n else np.zeros((0, len(assets) + 1)),
        fills=fills, interventions=intervention_counts(risk),
        intervention_rules=[tuple(sorted({iv["rule"] for iv in x["interventions"]})) for x in risk],
        termination_reason=None, assets=assets,
    )


def paper_report(store: StateStore, built: Any, out_dir: Path, n_boot: int = 200) -> dict[str, Any]:
    """metrics.json + report.html of the paper run against the baselines over the same bars."""
    import dataclasses

    from agents.baselines import default_baselines, run_policy
    from agents.envs import evaluation_env
    from agents.evaluation import in_cash_until, metrics_document, write_metrics
    from agents.pipeline import Period
    from agents.report import write_report

    setup = built.setup
    market = built.feed.market
    paper = episode_from_store(store, market, float(setup.env_config.initial_cash))
    if paper.fees.size == 0:
        raise ValueError(f"report: {store.path} has no completed hour yet")
    lo = int(np.searchsorted(market.timestamps, store.first_hour))
    hi = int(np.searchsorted(market.timestamps, int(paper.timestamps[-1])))
    period = Period.of(market, lo, hi)
    results: dict[str, EpisodeResult] = {"paper": paper}
    cfg = dataclasses.replace(setup.env_config, action_mode="weights")
    for b in default_baselines():
        needs_signals = b.name in ("top3_predictor", "rule_strategy")
        if needs_signals and setup.signals is None:
            continue
        env = evaluation_env(market, setup.signals, setup.signal_names, cfg, setup.limits, period)
        results[b.name] = in_cash_until(run_policy(env, b, seed=0), market.timestamps[lo : hi + 1])
    doc = metrics_document(results, period.to_dict(), n_boot=n_boot,
                           extra={"paper": {"state": str(store.path), "run_id": store.run_id,
                                            "hours": int(paper.fees.size), "audit_head": store.audit_head()[1]}})
    out_dir.mkdir(parents=True, exist_ok=True)
    write_metrics(out_dir / "metrics.json", doc)
    write_report(out_dir, doc, results, None, title="krakenrl paper trading")
    return doc


__all__ = ["episode_from_store", "paper_report"]
