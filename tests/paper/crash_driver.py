"""A deterministic paper run through the real `StateStore`, for the crash/restart tests (REC-1..3).

Synthetic but complete: each hour fetches a snapshot (two pairs), decides target weights,
derives orders from the *persisted* snapshot and decision, simulates fills from the persisted
orders and snapshot, commits the Decimal ledger and seals the hour. Like the real loop it
resumes where the file says it stopped: it skips recorded stages and re-derives the rest from
what was persisted (REC-2), never from fresh data. Hour 4 of the window is "down" (recorded
missed on resume), hour 2 holds, hour 6 halts on a kill-switch event, hour 7 carries an
operator's reactivation.

Run as ``python -m tests.paper.crash_driver STATE [--kill POINT@INDEX]``: with ``--kill`` the
store's fault hook SIGKILLs the process when it reaches ``POINT`` (``"INTENTS:mid"``,
``"CREATE:after"`` …) while processing hour ``INDEX`` (the hook is a test argument; the library
reads no environment).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from paper import AuditEvent, Fill, LedgerUpdate, OrderIntent, Portfolio, RiskState, Stage, StateStore

T0 = 1_700_002_800  # 2023-11-14 23:00 UTC
RUN_ID = "crash-test-run"
PAIRS = ("BTC", "ETH")
INDICES = (0, 1, 2, 3, 5, 6, 7)  # hour 4: the process was down
HOLD, HALT, REACTIVATE = 2, 6, 7
UNITS_Q = Decimal("0.0001")
MONEY_Q = Decimal("0.0001")
PRICE_Q = Decimal("0.01")
MAKER, TAKER = Decimal("0.0025"), Decimal("0.004")


class Clock:
    """Wall time derived from the hour being processed (deterministic across restarts)."""

    def __init__(self) -> None:
        self.hour = T0

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.hour, tz=UTC) + timedelta(hours=1, minutes=2)


def hour_of(i: int) -> int:
    return T0 + 3600 * i


def snapshot(i: int) -> dict[str, Any]:
    """The hour's bars (as the feed would store them: strings) and the next bar's open."""
    bars: dict[str, Any] = {}
    for k, pair in enumerate(PAIRS):
        base = Decimal(30000 if pair == "BTC" else 2000)
        close = base + Decimal(137 - 90 * k) * i - Decimal(50) * (i % 3)
        bars[pair] = {
            "open": str(close - 20),
            "high": str(close + 40),
            "low": str(close - 60),
            "close": str(close),
            "next_open": str(close + 5),
            "next_low": str(close - 30),
        }
    return {"hour": hour_of(i), "bars": bars}


def decision(i: int) -> dict[str, Any]:
    if i == HOLD:
        return {"hold": True, "target": {}}
    if i == HALT:
        return {"hold": True, "target": {"BTC": "0", "ETH": "0"}, "risk": {"kill_switch": "volatility"}}
    odd = i % 2
    return {"hold": False, "target": {"BTC": "0.1" if odd else "0.3", "ETH": "0.25" if odd else "0.05"}}


def intents(store: StateStore, h: int) -> list[OrderIntent]:
    """Orders from the persisted snapshot and decision and the pre-hour portfolio."""
    snap = store.stage_payload(h, Stage.FETCHED)["snapshot"]
    dec = store.stage_payload(h, Stage.DECIDED)["decision"]
    if dec["hold"]:
        return []
    port = store.portfolio()
    price = {p: Decimal(snap["bars"][p]["next_open"]) for p in PAIRS}
    equity = port.cash + sum((port.units.get(p, Decimal(0)) * price[p] for p in PAIRS), Decimal(0))
    out: list[OrderIntent] = []
    for p in PAIRS:
        delta = (Decimal(dec["target"][p]) * equity - port.units.get(p, Decimal(0)) * price[p]) / price[p]
        delta = delta.quantize(UNITS_Q, rounding=ROUND_DOWN)
        if abs(delta) * price[p] < 10:
            continue
        side = "buy" if delta > 0 else "sell"
        if p == "BTC":  # limit first, at the next open less 0.1%
            limit = (price[p] * Decimal("0.999")).quantize(PRICE_Q)
            out.append(OrderIntent(p, side, abs(delta), "limit", limit, 0))
        else:
            out.append(OrderIntent(p, side, abs(delta), "market", None, 0))
    return out


def fills(store: StateStore, h: int) -> tuple[list[Fill], dict[str, str]]:
    """Fills simulated from the persisted orders and the persisted snapshot (never fresh data)."""
    snap = store.stage_payload(h, Stage.FETCHED)["snapshot"]
    out: list[Fill] = []
    status: dict[str, str] = {}
    for o in store.orders(hour=h):
        bar = snap["bars"][o.pair]
        if o.order_type == "limit":
            if o.limit_price is None or Decimal(bar["next_low"]) > o.limit_price:
                status[o.client_order_id] = "expired"
                continue
            price, rate, liq = o.limit_price, MAKER, "maker"
        else:
            slip = Decimal("1.0005") if o.side == "buy" else Decimal("0.9995")
            price, rate, liq = (Decimal(bar["next_open"]) * slip).quantize(PRICE_Q), TAKER, "taker"
        fee = (price * o.units * rate).quantize(MONEY_Q)
        out.append(Fill(o.client_order_id, price, o.units, fee, liq))
        status[o.client_order_id] = "filled"
    return out, status


def ledger(store: StateStore, h: int, i: int) -> LedgerUpdate:
    """The pre-hour portfolio plus this hour's fills, marked at the close."""
    snap = store.stage_payload(h, Stage.FETCHED)["snapshot"]
    port = store.portfolio()
    cash, units = port.cash, dict(port.units)
    orders = {o.client_order_id: o for o in store.orders(hour=h)}
    fees = Decimal(0)
    for f in store.fills(hour=h):
        o = orders[f.client_order_id]
        sign = 1 if o.side == "buy" else -1
        cash -= sign * f.price * f.units + f.fee
        units[o.pair] = units.get(o.pair, Decimal(0)) + sign * f.units
        fees += f.fee
    marks = {p: Decimal(snap["bars"][p]["close"]) for p in PAIRS}
    equity = (cash + sum((units.get(p, Decimal(0)) * marks[p] for p in PAIRS), Decimal(0))).quantize(MONEY_Q)
    prev = store.risk_state()
    engaged = i == HALT
    risk = RiskState(
        ladder_level=0,
        peak_equity=max(prev.peak_equity, equity),
        kill_switch_engaged=engaged,
        kill_switch_trigger="volatility" if engaged else None,
        kill_switch_since=h if engaged else None,
        halted=False,
        detail={"kill_switch": {"engaged": engaged}},
    )
    return LedgerUpdate(Portfolio(cash, units), marks, equity, fees, risk)


def run_hour(store: StateStore, clock: Clock, i: int) -> None:
    """One hour, resumed from whatever stage the file is at."""
    h = hour_of(i)
    clock.hour = h
    store.record_missed(store.missed_hours_until(h), "process down")
    stage = store.cycle_stage(h) or 0
    if stage < Stage.FETCHED:
        events = [AuditEvent("reactivate", {"operator": "ops", "reason": "vol back to normal"})] if i == REACTIVATE else []
        store.record_fetched(h, snapshot(i), events)
    if stage < Stage.DECIDED:
        events = [AuditEvent("kill_switch", {"trigger": "volatility", "hour": h})] if i == HALT else []
        store.record_decided(h, decision(i), events)
    if stage < Stage.INTENTS:
        store.record_intents(h, intents(store, h))
    if stage < Stage.FILLED:
        f, status = fills(store, h)
        store.record_fills(h, f, status)
    if stage < Stage.LEDGER_COMMITTED:
        store.commit_ledger(h, ledger(store, h, i))
    if stage < Stage.AUDIT_SEALED:
        n_fills = len(store.fills(hour=h))
        kind = "halted" if i == HALT else ("traded" if n_fills else "held")
        store.seal_hour(h, kind, {"orders": len(store.orders(hour=h)), "fills": n_fills})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("state", type=Path)
    ap.add_argument("--kill", default=None, help="POINT@INDEX: SIGKILL self at that fault point and hour index")
    args = ap.parse_args(argv)
    clock = Clock()
    current = {"i": -1}
    kill_point, kill_index = (args.kill.split("@") if args.kill else (None, "-2"))

    def hook(point: str) -> None:
        if point == kill_point and current["i"] == int(kill_index):
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    if args.state.exists():
        store = StateStore.open(args.state, clock=clock, fault_hook=hook)
    else:
        current["i"] = 0
        store = StateStore.create(
            args.state, run_id=RUN_ID, config_hash="cfg-0", first_hour=T0, initial_cash="10000",
            clock=clock, fault_hook=hook,
        )
    with store:
        for i in INDICES:
            current["i"] = i
            run_hour(store, clock, i)
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
