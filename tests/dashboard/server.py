"""A real uvicorn server over any state file, and the check of every endpoint against that file.

`running_dashboard(state_path, ...)` serves `create_app` on a free port in a thread and yields
its base URL; `check_against_db(base_url, state_path)` calls every endpoint and compares the
numbers with what `StateStore.open(readonly=True)` reads from the same file. Both take any
state path: the replayed real run's test uses them unchanged.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
import uvicorn

from paper import StateStore
from paper.dashboard import create_app

ENDPOINTS = ("/api/config", "/api/status", "/api/equity", "/api/positions", "/api/allocation", "/api/orders",
             "/api/fills", "/api/signals", "/api/interventions", "/api/confidence", "/api/hours", "/metrics",
             "/openapi.json", "/", "/static/app.js")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def running_dashboard(state_path: str | Path, token: str | None = None, host: str = "127.0.0.1",
                      **kw: Any) -> Iterator[str]:
    """Serve the dashboard on ``host``:free port in a thread; yields ``http://127.0.0.1:PORT``."""
    app = create_app(state_path, token, host=host, **kw)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                            server_header=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def get(session: requests.Session, url: str, **kw: Any) -> Any:
    r = session.get(url, timeout=30, **kw)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    return r.json()


def check_against_db(base: str, state_path: str | Path, session: requests.Session | None = None) -> dict[str, Any]:
    """Every endpoint answers 200 and its numbers equal the state file's (equity, drawdown, positions, ...)."""
    s = session or requests.Session()
    for path in ENDPOINTS:
        r = s.get(base + path, timeout=30)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    store = StateStore.open(state_path, readonly=True, verify=True)
    try:
        ledger = store.ledger_rows()
        risk, port = store.risk_state(), store.portfolio()
        records = store.audit_records()
        all_orders, all_fills = store.orders(), store.fills()
        head = store.audit_head()
    finally:
        store.close()
    status = get(s, base + "/api/status")
    last = ledger[-1]
    assert Decimal(status["equity"]) == last["equity"]
    assert status["as_of_hour"] == last["hour"]
    assert Decimal(status["peak_equity"]) == risk.peak_equity
    assert status["drawdown"] == float(last["equity"] / risk.peak_equity - 1)
    assert status["ladder_level"] == risk.ladder_level
    assert status["kill_switch"]["engaged"] == risk.kill_switch_engaged
    assert status["kill_switch"]["trigger"] == risk.kill_switch_trigger
    assert status["audit_head"] == {"seq": head[0], "hash": head[1]}
    assert Decimal(status["fees_total"]) == sum((r["fees"] for r in ledger), Decimal(0))
    terminal = [r for r in records if r.terminal]
    assert status["last_closed_hour"] == terminal[-1].hour
    assert sum(status["hours"].values()) == len(terminal)

    eq = get(s, base + "/api/equity", params={"limit": 10000})
    assert eq["total"] == len(ledger) == len(eq["points"])
    peak = -1.0
    for p, row in zip(eq["points"], ledger, strict=True):
        assert p["hour"] == row["hour"] and Decimal(p["equity"]) == row["equity"]
        peak = max(peak, float(row["equity"]))
        assert abs(p["drawdown"] - (float(row["equity"]) / peak - 1)) < 1e-12
    # a page in the middle carries the drawdown from the whole curve's running peak
    mid = get(s, base + "/api/equity", params={"limit": 5, "offset": len(ledger) // 2})
    assert [p["drawdown"] for p in mid["points"]] == [p["drawdown"] for p in eq["points"][len(ledger) // 2:][:5]]

    pos = get(s, base + "/api/positions")
    assert Decimal(pos["cash"]) == port.cash
    assert {r["asset"]: Decimal(r["units"]) for r in pos["positions"]} == dict(port.units)
    for r in pos["positions"]:
        if r["asset"] not in last["marks"]:  # only a zero balance may lack a mark (LedgerUpdate's rule)
            assert port.units[r["asset"]] == 0 and r["value"] is None
            continue
        value = port.units[r["asset"]] * last["marks"][r["asset"]]
        assert Decimal(r["value"]) == value
        assert r["weight"] == float(value / last["equity"])

    alloc = get(s, base + "/api/allocation", params={"limit": 10000})
    assert alloc["hours"] == [r["hour"] for r in ledger]
    for a in alloc["assets"]:
        for w, row in zip(alloc["weights"][a], ledger, strict=True):
            if a in row["positions"] and a in row["marks"]:
                assert w == float(row["positions"][a] * row["marks"][a] / row["equity"])

    orders = get(s, base + "/api/orders", params={"limit": 10000})
    assert orders["total"] == len(all_orders) == len(orders["orders"])
    assert {o["client_order_id"] for o in orders["orders"]} == {o.client_order_id for o in all_orders}
    fills = get(s, base + "/api/fills", params={"limit": 10000})
    assert fills["total"] == len(all_fills)
    assert sum(Decimal(f["fee"]) for f in fills["fills"]) == sum((f.fee for f in all_fills), Decimal(0))

    hours = get(s, base + "/api/hours", params={"limit": 10000})
    assert hours["total"] == len(terminal)
    newest = hours["hours"][0]
    audit = get(s, base + newest["audit"])
    want = [r for r in records if r.hour == newest["hour"]]
    assert [r["hash"] for r in audit["records"]] == [r.hash for r in want]
    assert all(r["hash_ok"] for r in audit["records"])
    assert [json.dumps(r["payload"], sort_keys=True) for r in audit["records"]] == [
        json.dumps(r.payload_obj(), sort_keys=True) for r in want]
    for path in ("/api/signals", "/api/interventions", "/api/confidence"):
        get(s, base + path)
    return {"status": status, "ledger": ledger, "records": records}
