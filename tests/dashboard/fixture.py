"""A synthetic paper run written through the real `StateStore`, for the dashboard tests.

Three assets on a seeded random walk; each hour fetches a bar, decides (predictions per asset,
horizon and model, regime probabilities, proposed and risk-projected weights, interventions),
sends market orders (plus a BTC limit order that sometimes expires), fills them, commits the
Decimal ledger and seals the hour. Hours 60-61 are missed (process down), the kill switch
engages at hour `KILL_AT` (event + ``halted`` hours, positions sold) and an operator reactivates
it `KILL_HOURS` later. The decision has the loop's shape (``proposal``, ``target``,
``risk.interventions`` …); from hour `PAYLOAD_FROM` on the terminal payload repeats the
signals too, so both places the dashboard reads are exercised.

``python -m tests.dashboard.fixture STATE --hours N [--delay S]`` appends N hours to STATE
(creating it), sleeping S seconds between hours: the writer of the concurrency test.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import numpy as np

from paper import AuditEvent, Fill, LedgerUpdate, OrderIntent, Portfolio, RiskState, StateStore

T0 = 1_704_067_200  # 2024-01-01 00:00 UTC
RUN_ID = "dash-fixture"
ASSETS = ("BTC", "ETH", "SOL")
HORIZONS = (1, 4, 24)
MODELS = ("meta", "xgboost")
REGIMES = ("trend", "range", "high_vol", "crash")
MISSED = (60, 61)
KILL_AT, KILL_HOURS = 200, 24
PAYLOAD_FROM = 150
MAX_HOURS = 4000
INITIAL_CASH = Decimal("10000")
TAKER, MAKER = Decimal("0.004"), Decimal("0.0025")
UNITS_Q, MONEY_Q, PRICE_Q = Decimal("0.000001"), Decimal("0.0001"), Decimal("0.01")


def _walk(seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array([42000.0, 2300.0, 95.0])
    steps = rng.normal(0.0, [0.006, 0.008, 0.012], size=(MAX_HOURS, len(ASSETS)))
    steps[KILL_AT - 3:KILL_AT] -= 0.03  # a sharp drop: the kill switch's reason
    return base * np.exp(np.cumsum(steps, axis=0))


PRICES = _walk()


def use_market(assets: tuple[str, ...], prices: np.ndarray, t0: int) -> None:
    """Run the fixture over other prices (e.g. real Kraken closes): ``prices`` is (hours, len(assets))."""
    global ASSETS, PRICES, T0
    if prices.shape[1] != len(assets) or t0 % 3600:
        raise ValueError(f"use_market: prices {prices.shape} for {len(assets)} assets, t0 {t0}")
    ASSETS, PRICES, T0 = tuple(assets), np.asarray(prices, dtype=np.float64), int(t0)


def hour_of(i: int) -> int:
    return T0 + 3600 * i


def price(i: int, k: int) -> Decimal:
    return Decimal(repr(float(PRICES[i, k]))).quantize(PRICE_Q)


class Clock:
    """Wall time: real time (a live writer) unless pinned."""

    def __init__(self, pinned: datetime | None = None) -> None:
        self.pinned = pinned

    def __call__(self) -> datetime:
        return self.pinned or datetime.now(UTC)


def killed(i: int) -> bool:
    return KILL_AT <= i < KILL_AT + KILL_HOURS


def decision(i: int) -> dict[str, Any]:
    """The hour's decision in the loop's shape, with predictions and regimes added."""
    rng = np.random.default_rng(1000 + i)
    p_up = np.clip(0.5 + rng.normal(0, 0.08, size=(len(ASSETS), len(HORIZONS), len(MODELS))), 0.01, 0.99)
    preds = [{"asset": a, "horizon": h, "model": m, "p_up": float(p_up[k, j, n]),
              "exp_return": float((p_up[k, j, n] - 0.5) * 0.01 * h)}
             for k, a in enumerate(ASSETS) for j, h in enumerate(HORIZONS) for n, m in enumerate(MODELS)]
    reg = rng.dirichlet(np.ones(len(REGIMES)), size=len(ASSETS))
    proposal = [float(x) for x in np.clip(p_up[:, 0, 0] - 0.3, 0, 0.5)]
    target, interventions = list(proposal), []
    if killed(i):
        interventions.append({"rule": "kill_switch", "assets": list(ASSETS), "amount": float(sum(target)),
                              "detail": "reduce-only"})
        target = [0.0] * len(ASSETS)
    else:
        for k, a in enumerate(ASSETS):
            if target[k] > 0.3:
                interventions.append({"rule": "asset_cap", "assets": [a], "amount": target[k] - 0.3, "detail": ""})
                target[k] = 0.3
        if i % 7 == 0 and target[2] > 0:
            interventions.append({"rule": "cost_gate", "assets": [ASSETS[2]], "amount": target[2],
                                  "detail": "edge < cost"})
            target[2] = 0.0
    engaged_now = i == KILL_AT
    return {
        "t": i, "hour": hour_of(i), "obs_hash": f"{i:064x}", "action": proposal, "proposal": proposal,
        "target": target, "weights": target, "hold": False, "urgency": None,
        "predictions": preds, "regime": {a: [float(x) for x in reg[k]] for k, a in enumerate(ASSETS)},
        "risk": {"proposed": proposal, "executed": target, "interventions": interventions,
                 "ladder_level": 0, "ladder_state": "normal", "drawdown": 0.0, "halt": False,
                 "kill_switch": {"engaged": killed(i), "reasons": ["drawdown_velocity"] if killed(i) else [],
                                 "engaged_now": engaged_now, "active_triggers": []}},
    }


def ladder_of(drawdown: Decimal) -> int:
    return 3 if drawdown <= Decimal("-0.2") else 2 if drawdown <= Decimal("-0.1") else 1 if drawdown <= Decimal(
        "-0.05") else 0


def run_hour(store: StateStore, i: int) -> None:
    """Hour ``i``: FETCHED … AUDIT_SEALED (or missed)."""
    h = hour_of(i)
    if i in MISSED:
        store.record_missed([h], "process down")
        return
    bar = {"hour": h, "assets": list(ASSETS), "close": [float(price(i, k)) for k in range(len(ASSETS))],
           "raw_hash": f"{h:064x}", "flags": []}
    events = [AuditEvent("reactivate", {"operator": "ops", "reason": "drop absorbed"})] if i == KILL_AT + KILL_HOURS else []
    store.record_fetched(h, {"bar": bar, "history_hash": "fixture"}, events)
    d = decision(i)
    ks_events = [AuditEvent("kill_switch", {"reasons": ["drawdown_velocity"], "t": i})] if i == KILL_AT else []
    store.record_decided(h, d, ks_events)
    port, prev = store.portfolio(), store.risk_state()
    px = {a: price(i, k) for k, a in enumerate(ASSETS)}
    equity = port.cash + sum((port.units.get(a, Decimal(0)) * px[a] for a in ASSETS), Decimal(0))
    intents: list[OrderIntent] = []
    cash_after_sells = port.cash
    deltas = {}
    rebalance = i % 6 == 0 or killed(i)  # trade every 6 hours (and to flatten under the kill switch)
    for k, a in enumerate(ASSETS):
        want = Decimal(repr(d["target"][k])) * equity / px[a]
        delta = (want - port.units.get(a, Decimal(0))).quantize(UNITS_Q, rounding=ROUND_DOWN)
        deltas[a] = delta if rebalance else Decimal(0)
    for a in ASSETS:  # sells first: they fund the buys
        if deltas[a] < 0 and -deltas[a] * px[a] >= 10:
            intents.append(OrderIntent(a, "sell", -deltas[a], "market"))
            cash_after_sells += -deltas[a] * px[a] * (1 - TAKER)
    budget = cash_after_sells * Decimal("0.98")
    for a in ASSETS:
        if deltas[a] > 0 and deltas[a] * px[a] >= 10:
            units = min(deltas[a], (budget / (px[a] * (1 + TAKER))).quantize(UNITS_Q, rounding=ROUND_DOWN))
            if units * px[a] >= 10:
                budget -= units * px[a] * (1 + TAKER)
                intents.append(OrderIntent(a, "buy", units, "market"))
    if i % 5 == 0 and not killed(i):  # a resting bid far below on the first asset: expires
        a0 = ASSETS[0]
        intents.append(OrderIntent(a0, "buy", Decimal("0.001"), "limit", (px[a0] * Decimal("0.9")).quantize(PRICE_Q), 1))
    orders = store.record_intents(h, intents)
    fills, statuses = [], {}
    cash, units, fees = port.cash, dict(port.units), Decimal(0)
    for o in orders:
        if o.order_type == "limit":
            statuses[o.client_order_id] = "expired"
            continue
        p = (px[o.pair] * (Decimal("1.0005") if o.side == "buy" else Decimal("0.9995"))).quantize(PRICE_Q)
        fee = (p * o.units * TAKER).quantize(MONEY_Q)
        fills.append(Fill(o.client_order_id, p, o.units, fee, "taker"))
        statuses[o.client_order_id] = "filled"
        sign = 1 if o.side == "buy" else -1
        cash -= sign * p * o.units + fee
        units[o.pair] = units.get(o.pair, Decimal(0)) + sign * o.units
        fees += fee
    store.record_fills(h, fills, statuses)
    equity = (cash + sum((units.get(a, Decimal(0)) * px[a] for a in ASSETS), Decimal(0))).quantize(MONEY_Q)
    peak = max(prev.peak_equity, equity)
    level = ladder_of(equity / peak - 1)
    engaged = killed(i)
    risk = RiskState(ladder_level=level, peak_equity=peak, kill_switch_engaged=engaged,
                     kill_switch_trigger="drawdown_velocity" if engaged else None,
                     kill_switch_since=hour_of(KILL_AT) if engaged else None, halted=False,
                     detail={"fixture": True})
    store.commit_ledger(h, LedgerUpdate(Portfolio(cash, units), px, equity, fees, risk))
    payload: dict[str, Any] = {"equity": equity, "fees": fees, "n_fills": len(fills), "decision_hash": f"{i:064x}"}
    if i >= PAYLOAD_FROM:
        payload.update({k: d[k] for k in ("predictions", "regime", "proposal", "target")})
        payload["interventions"] = d["risk"]["interventions"]
        payload["ladder_level"] = level
    store.seal_hour(h, "halted" if engaged else ("traded" if fills else "held"), payload)


def open_or_create(path: Path, clock: Clock) -> StateStore:
    if path.exists():
        return StateStore.open(path, clock=clock)
    store = StateStore.create(path, run_id=RUN_ID, config_hash="fixture-cfg", first_hour=T0,
                              initial_cash=INITIAL_CASH, clock=clock)
    store.record_event("start", {"initial_cash": INITIAL_CASH, "assets": list(ASSETS)})
    return store


def append_hours(path: str | Path, n: int, delay: float = 0.0, clock: Clock | None = None) -> int:
    """Append ``n`` hours to the run at ``path`` (created if missing); returns the next hour index."""
    with open_or_create(Path(path), clock or Clock()) as store:
        i = (store.next_hour() - T0) // 3600
        for _ in range(n):
            run_hour(store, i)
            i += 1
            if delay:
                time.sleep(delay)
        return i


def build_state(path: str | Path, n_hours: int = 300, pinned: datetime | None = None) -> Path:
    """A complete state file of ``n_hours`` hours (wall times pinned: a reproducible file)."""
    clock = Clock(pinned or datetime(2024, 2, 1, tzinfo=UTC) + timedelta(0))
    append_hours(path, n_hours, clock=clock)
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("state", type=Path)
    ap.add_argument("--hours", type=int, required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args(argv)
    nxt = append_hours(args.state, args.hours, args.delay)
    print(f"next {nxt}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
