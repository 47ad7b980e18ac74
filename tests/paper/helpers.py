"""Small builders shared by the paper state tests."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from paper import Fill, LedgerUpdate, OrderIntent, Portfolio, RiskState, StateStore

T0 = 1_700_002_800  # 2023-11-14 23:00 UTC
H = 3600


def fixed_clock() -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC)


def new_store(tmp_path: Path, name: str = "state.db", **kw: Any) -> StateStore:
    kw.setdefault("clock", fixed_clock)
    return StateStore.create(
        tmp_path / name, run_id="run-1", config_hash="cfg", first_hour=T0, initial_cash="1000", **kw
    )


def ledger(cash: str = "989.96", btc: str = "0.1", price: str = "100", equity: str = "999.96") -> LedgerUpdate:
    return LedgerUpdate(
        Portfolio(Decimal(cash), {"BTC": Decimal(btc)}),
        {"BTC": Decimal(price)},
        Decimal(equity),
        Decimal("0.04"),
        RiskState(peak_equity=Decimal("1000")),
    )


def full_cycle(store: StateStore, h: int, kind: str = "traded") -> None:
    """FETCHED … AUDIT_SEALED for hour ``h`` with one market buy filled."""
    store.record_fetched(h, {"bars": {"BTC": {"close": "100"}}, "hour": h})
    store.record_decided(h, {"target": {"BTC": 0.01}})
    orders = store.record_intents(h, [OrderIntent("BTC", "buy", Decimal("0.1"), "market")])
    cid = orders[0].client_order_id
    store.record_fills(h, [Fill(cid, Decimal("100"), Decimal("0.1"), Decimal("0.04"), "taker")], {cid: "filled"})
    store.commit_ledger(h, ledger())
    store.seal_hour(h, kind, {"orders": 1})


def dump_db(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows in a fixed order (for comparing whole files)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out: dict[str, list[tuple[Any, ...]]] = {}
        for t in tables:
            n = len(conn.execute(f"SELECT * FROM {t} LIMIT 0").description)
            order = ", ".join(str(i) for i in range(1, n + 1))
            out[t] = conn.execute(f"SELECT * FROM {t} ORDER BY {order}").fetchall()
        return out
    finally:
        conn.close()
