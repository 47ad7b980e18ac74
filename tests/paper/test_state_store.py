"""The state store: durable settings, the per-hour cycle state machine, idempotence, ordering."""

from __future__ import annotations

import json
import sqlite3
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from paper import (
    AuditEvent,
    CycleConflictError,
    CycleOrderError,
    Fill,
    OrderIntent,
    PaperStateError,
    RiskState,
    Stage,
    StateFileError,
    StateStore,
    client_order_id,
)
from tests.paper.helpers import T0, H, full_cycle, ledger, new_store


def test_new_file_settings_and_permissions(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.schema_version == 2
    assert (store.run_id, store.config_hash, store.first_hour) == ("run-1", "cfg", T0)
    assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == [1, 2]
    assert store.portfolio().cash == Decimal("1000") and store.risk_state().peak_equity == Decimal("1000")
    assert store.next_hour() == T0 and store.last_bar() is None and store.open_cycle() is None
    store.close()
    path = tmp_path / "state.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".state.db.creating*"))


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    new_store(tmp_path).close()
    before = (tmp_path / "state.db").read_bytes()
    with pytest.raises(StateFileError, match="already exists"):
        new_store(tmp_path)
    assert (tmp_path / "state.db").read_bytes() == before


def test_full_cycle_round_trip_after_reopen(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    full_cycle(store, T0)
    store.close()
    store = StateStore.open(tmp_path / "state.db")
    assert store.cycle_stage(T0) == Stage.AUDIT_SEALED and store.last_bar() == T0 and store.next_hour() == T0 + H
    assert store.portfolio().units == {"BTC": Decimal("0.1")} and store.portfolio().cash == Decimal("989.96")
    (order,) = store.orders(hour=T0)
    assert order.client_order_id == client_order_id("run-1", T0, "BTC", "buy", 0) and order.status == "filled"
    (fill,) = store.fills(hour=T0)
    assert fill.fee == Decimal("0.04") and fill.liquidity == "taker"
    (row,) = store.ledger_rows()
    assert row["equity"] == Decimal("999.96") and row["marks"] == {"BTC": Decimal("100")}
    assert store.stage_payload(T0, Stage.FETCHED)["snapshot"]["bars"]["BTC"]["close"] == "100"
    (rec,) = store.audit_records()
    assert rec.kind == "traded" and rec.terminal and rec.state_hash == store.state_hash()
    assert store.verify().n_terminal == 1
    store.close()


def test_every_transition_is_idempotent(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    full_cycle(store, T0)
    n_audit, n_stages = len(store.audit_records()), store._conn.execute("SELECT count(*) FROM cycle_stages").fetchone()
    full_cycle(store, T0)  # every transition again, same content: all no-ops
    assert len(store.audit_records()) == n_audit
    assert store._conn.execute("SELECT count(*) FROM cycle_stages").fetchone() == n_stages
    assert len(store.orders()) == 1 and len(store.fills()) == 1
    assert store.record_fetched(T0, {"bars": {"BTC": {"close": "100"}}, "hour": T0}) is False
    store.close()


def test_reapplying_with_different_content_is_a_conflict(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.record_fetched(T0, {"bars": {"BTC": {"close": "100"}}})
    with pytest.raises(CycleConflictError, match=r"FETCHED .* already recorded with different content"):
        store.record_fetched(T0, {"bars": {"BTC": {"close": "101"}}})
    store.record_decided(T0, {"target": {"BTC": 0.5}})
    store.record_intents(T0, [OrderIntent("BTC", "buy", Decimal("1"), "market")])
    with pytest.raises(CycleConflictError, match="INTENTS"):
        store.record_intents(T0, [OrderIntent("BTC", "buy", Decimal("2"), "market")])
    assert [o.units for o in store.orders()] == [Decimal("1")]
    store.close()


def test_transitions_out_of_order_are_refused(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    with pytest.raises(CycleOrderError, match="no cycle"):
        store.record_decided(T0, {})
    store.record_fetched(T0, {"x": 1})
    with pytest.raises(CycleOrderError, match=r"INTENTS .* out of order: the cycle is at FETCHED"):
        store.record_intents(T0, [])
    with pytest.raises(CycleOrderError, match="LEDGER_COMMITTED"):
        store.seal_hour(T0, "traded", {})
    with pytest.raises(CycleOrderError, match="have no terminal record"):
        store.record_missed([T0 + H], "down")  # the open hour is T0, its cycle is in progress
    store.record_decided(T0, {})
    store.record_intents(T0, [])
    with pytest.raises(CycleOrderError, match="orders exist"):
        store.seal_hour(T0, "halted", {})
    assert store.open_cycle() == (T0, Stage.INTENTS)
    store.close()


def test_hours_close_in_order_and_gaps_must_be_recorded_missed(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    full_cycle(store, T0)
    with pytest.raises(CycleOrderError, match="have no terminal record; record them missed first"):
        store.record_fetched(T0 + 3 * H, {"x": 1})
    assert store.missed_hours_until(T0 + 3 * H) == [T0 + H, T0 + 2 * H]
    recs = store.record_missed(store.missed_hours_until(T0 + 3 * H), "process down")
    assert [(r.hour, r.kind) for r in recs] == [(T0 + H, "missed"), (T0 + 2 * H, "missed")]
    assert store.record_missed([T0 + H, T0 + 2 * H], "process down") == recs  # idempotent
    # a missed hour is never filled retroactively
    with pytest.raises(CycleOrderError, match=r"closed \(missed\).*never filled retroactively"):
        store.record_fetched(T0 + H, {"x": 1})
    with pytest.raises(CycleConflictError, match="already closed as 'traded'"):
        store.record_missed([T0], "late")
    full_cycle(store, T0 + 3 * H)
    report = store.verify()
    assert report.n_terminal == 4 and report.last_terminal_hour == T0 + 3 * H
    terminal_hours = [r.hour for r in store.audit_records() if r.terminal]
    assert terminal_hours == [T0 + i * H for i in range(4)]
    assert store.last_bar() == T0 + 3 * H
    store.close()


def test_an_hour_can_be_closed_without_trading_before_any_order(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.record_fetched(T0, {"x": 1})
    store.record_decided(T0, {"halt": "exchange maintenance"})
    rec = store.seal_hour(T0, "halted", {"reason": "exchange maintenance"})
    assert rec.kind == "halted" and store.cycle_stage(T0) == Stage.AUDIT_SEALED
    assert store.last_bar() is None  # not processed: no ledger
    with pytest.raises(CycleOrderError, match="closed"):
        store.record_intents(T0, [])
    with pytest.raises(ValueError, match="kind must be one of"):
        store.seal_hour(T0 + H, "skipped", {})
    with pytest.raises(CycleOrderError, match=r"cannot seal .* as 'traded'"):
        store.seal_hour(T0 + H, "traded", {})
    store.close()


def test_events_ride_on_transitions_and_are_not_duplicated(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    ev = [AuditEvent("kill_switch", {"trigger": "spread"})]
    store.record_fetched(T0, {"x": 1})
    store.record_decided(T0, {"w": 0}, events=ev)
    store.record_decided(T0, {"w": 0}, events=ev)  # a replay after a crash: no second event
    assert [r.kind for r in store.audit_records()] == ["kill_switch"]
    op = store.record_event("reactivate", {"operator": "ops", "reason": "ok"})
    assert op.hour == T0 and not op.terminal
    with pytest.raises(ValueError, match="expected one of"):
        AuditEvent("traded", {})
    store.close()


def test_fills_are_checked_against_the_hours_orders(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.record_fetched(T0, {"x": 1})
    store.record_decided(T0, {})
    (o,) = store.record_intents(T0, [OrderIntent("BTC", "sell", Decimal("1"), "limit", Decimal("99"))])
    cid = o.client_order_id
    with pytest.raises(ValueError, match="unknown order"):
        store.record_fills(T0, [Fill("f" * 32, Decimal(1), Decimal(1), Decimal(0), "maker")], {})
    with pytest.raises(ValueError, match="filled 2 > ordered 1"):
        store.record_fills(T0, [Fill(cid, Decimal(99), Decimal(2), Decimal(0), "maker")], {cid: "filled"})
    with pytest.raises(ValueError, match="unknown status"):
        store.record_fills(T0, [], {cid: "done"})
    assert store.cycle_stage(T0) == Stage.INTENTS and store.fills() == []  # each failure rolled back
    store.record_fills(T0, [], {cid: "expired"})
    assert store.orders()[0].status == "expired"
    store.close()


def test_risk_state_survives_restart_exactly(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.record_fetched(T0, {"x": 1})
    store.record_decided(T0, {})
    store.record_intents(T0, [])
    store.record_fills(T0, [], {})
    risk = RiskState(
        ladder_level=2, peak_equity=Decimal("1234.5600"), kill_switch_engaged=True, kill_switch_trigger="spread",
        kill_switch_since=T0, halted=False, detail={"ladder": {"peak_equity": 1234.56}, "clusters": [["BTC", "ETH"]]},
    )
    upd = ledger()
    store.commit_ledger(T0, type(upd)(upd.portfolio, upd.marks, upd.equity, upd.fees, risk))
    store.close()
    with StateStore.open(tmp_path / "state.db") as again:
        assert again.risk_state() == risk
        assert str(again.risk_state().peak_equity) == "1234.5600"


def test_readonly_store_reads_and_refuses_writes(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    full_cycle(store, T0)
    with StateStore.open(tmp_path / "state.db", readonly=True) as ro:  # while the writer holds the lock
        assert ro.readonly and ro.last_bar() == T0 and ro.verify().n_records == 1
        with pytest.raises(PaperStateError, match="read-only"):
            ro.record_event("note", {"x": 1})
    store.close()


def test_state_hash_covers_the_books(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    before = store.state_hash()
    full_cycle(store, T0)
    assert store.state_hash() != before
    rec = store.audit_records()[-1]
    assert rec.state_hash == store.state_hash()
    assert json.loads(rec.payload) == {"orders": 1}
    store.close()


def test_database_constraints_back_the_invariants(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    full_cycle(store, T0)
    conn = store._conn
    with pytest.raises(sqlite3.IntegrityError):  # one terminal record per hour, even by hand
        conn.execute(
            "INSERT INTO audit (seq, hour, kind, terminal, wall_time, state_hash, payload, prev_hash, hash)"
            " VALUES (2, ?, 'held', 1, 'w', 's', '{}', 'p', 'h')",
            (T0,),
        )
    with pytest.raises(sqlite3.IntegrityError):  # a fill needs its order (foreign key)
        conn.execute("INSERT INTO fills VALUES ('nope', 0, ?, '1', '1', '0', 'maker')", (T0,))
    store.close()
