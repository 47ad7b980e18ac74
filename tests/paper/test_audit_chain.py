"""The hash-chained audit trail: every edit, deletion, insertion and reordering is refused (AUD-2, SEC-7),
and every hour closes exactly once (AUD-3)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from paper import AuditChainError, AuditEvent, AuditRecord, StateStore, verify_chain
from paper.audit import envelope_text, genesis_hash, record_hash, verify_records
from paper.canonical import canonical_json
from tests.paper.helpers import T0, H, full_cycle, new_store

RUN = "run-1"


def build(tmp_path: Path) -> Path:
    """Five records: traded T0, kill_switch event + traded T0+1h, missed T0+2h, traded T0+3h."""
    store = new_store(tmp_path)
    full_cycle(store, T0)
    store.record_event("kill_switch", {"trigger": "spread"})
    full_cycle(store, T0 + H)
    store.record_missed([T0 + 2 * H], "down")
    full_cycle(store, T0 + 3 * H)
    assert [r.kind for r in store.audit_records()] == ["traded", "kill_switch", "traded", "missed", "traded"]
    store.close()
    return tmp_path / "state.db"


def tamper(path: Path, *sql: str) -> None:
    conn = sqlite3.connect(path)
    for s in sql:
        conn.execute(s)
    conn.commit()
    conn.close()


def refused(path: Path) -> AuditChainError:
    with pytest.raises(AuditChainError) as err:
        StateStore.open(path)
    assert str(path) in str(err.value)
    return err.value


def test_untouched_chain_verifies(tmp_path: Path) -> None:
    path = build(tmp_path)
    with StateStore.open(path, readonly=True) as store:
        report = verify_chain(store)
        assert (report.n_records, report.n_terminal, report.last_terminal_hour) == (5, 4, T0 + 3 * H)
        assert report.head_hash == store.audit_records()[-1].hash
        assert store.audit_records()[0].prev_hash == genesis_hash(RUN)


@pytest.mark.parametrize(
    ("edit", "seq", "message"),
    [
        ("UPDATE audit SET payload = '{\"orders\":2}' WHERE seq = 3", 3, "hash does not match"),
        ("UPDATE audit SET payload = '{\"orders\": 1}' WHERE seq = 3", 3, "not in canonical form"),
        ("UPDATE audit SET kind = 'held' WHERE seq = 3", 3, "hash does not match"),
        ("UPDATE audit SET wall_time = '2024-01-01T00:00:01Z' WHERE seq = 2", 2, "hash does not match"),
        ("UPDATE audit SET state_hash = '00' WHERE seq = 1", 1, "hash does not match"),
        ("UPDATE audit SET prev_hash = hash WHERE seq = 4", 4, "prev_hash"),
        ("UPDATE audit SET kind = 'bogus' WHERE seq = 2", 2, "unknown kind"),
    ],
)
def test_an_edited_record_is_named(tmp_path: Path, edit: str, seq: int, message: str) -> None:
    path = build(tmp_path)
    tamper(path, edit)
    err = refused(path)
    assert err.seq == seq and f"seq {seq}" in str(err) and message in str(err)


def test_an_edit_with_its_own_hash_recomputed_breaks_the_next_link(tmp_path: Path) -> None:
    path = build(tmp_path)
    with StateStore.open(path, readonly=True) as store:
        rec = store.audit_records()[2]
    forged_payload = canonical_json({"orders": 9})
    new_hash = record_hash(rec.prev_hash, envelope_text(rec.seq, rec.hour, rec.kind, rec.wall_time, rec.state_hash,
                                                        {"orders": 9}))
    tamper(path, f"UPDATE audit SET payload = '{forged_payload}', hash = '{new_hash}' WHERE seq = 3")
    err = refused(path)
    assert err.seq == 4 and "prev_hash" in str(err)


def test_a_deleted_record_is_named(tmp_path: Path) -> None:
    path = build(tmp_path)
    tamper(path, "DELETE FROM audit WHERE seq = 2")
    err = refused(path)
    assert err.seq == 3 and "expected seq 2" in str(err)


def test_a_deleted_last_record_is_caught_by_the_head(tmp_path: Path) -> None:
    path = build(tmp_path)
    tamper(path, "DELETE FROM audit WHERE seq = 5")
    err = refused(path)
    assert "audit head says seq 5" in str(err)


def test_a_deleted_last_record_with_the_head_moved_back_is_caught_by_the_cycle_seal(tmp_path: Path) -> None:
    path = build(tmp_path)
    tamper(path, "DELETE FROM audit WHERE seq = 5",
           "UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit WHERE seq = 4)")
    err = refused(path)
    assert "cycle 2023-11-15T02:00:00Z is sealed as 'traded'" in str(err)


def test_an_inserted_record_is_named(tmp_path: Path) -> None:
    path = build(tmp_path)
    with StateStore.open(path, readonly=True) as store:
        before = store.audit_records()[1]  # forge a well-formed note right after seq 2, for the open hour
    payload = {"note": "forged"}
    forged = record_hash(before.hash, envelope_text(3, T0 + H, "note", before.wall_time, before.state_hash, payload))
    tamper(
        path,
        "UPDATE audit SET seq = seq + 100 WHERE seq >= 3",
        "UPDATE audit SET seq = seq - 99 WHERE seq >= 103",
        "INSERT INTO audit (seq, hour, kind, terminal, wall_time, state_hash, payload, prev_hash, hash) VALUES "
        f"(3, {T0 + H}, 'note', 0, '{before.wall_time}', '{before.state_hash}', '{canonical_json(payload)}', "
        f"'{before.hash}', '{forged}')",
        "UPDATE audit_head SET seq = 6",
    )
    err = refused(path)
    assert err.seq == 4 and "prev_hash" in str(err)


def test_reordered_records_are_named(tmp_path: Path) -> None:
    path = build(tmp_path)
    tamper(path, "UPDATE audit SET seq = 100 WHERE seq = 4", "UPDATE audit SET seq = 4 WHERE seq = 5",
           "UPDATE audit SET seq = 5 WHERE seq = 100")
    err = refused(path)
    assert err.seq == 4


def test_a_tampered_cycle_or_stored_input_is_refused(tmp_path: Path) -> None:
    path = build(tmp_path)
    tamper(path, f"UPDATE cycles SET outcome = 'held' WHERE hour = {T0}")
    assert "sealed as 'held'" in str(refused(path))
    path2 = build(tmp_path / "b")
    tamper(path2, f"UPDATE cycle_stages SET payload = replace(payload, '100', '101') WHERE hour = {T0} AND stage = 1")
    assert "stored input does not match its hash" in str(refused(path2))


def test_a_full_rewrite_including_the_head_needs_an_external_anchor(tmp_path: Path) -> None:
    """The documented limit: the chain alone cannot catch someone who rewrites every hash after an edit."""
    path = build(tmp_path)
    with StateStore.open(path, readonly=True) as store:
        records = store.audit_records()
    anchor = records[-1].hash  # what the status line printed
    prev = genesis_hash(RUN)
    conn = sqlite3.connect(path)
    for r in records:
        payload = {"orders": 7} if r.seq == 1 else r.payload_obj()
        h = record_hash(prev, envelope_text(r.seq, r.hour, r.kind, r.wall_time, r.state_hash, payload))
        conn.execute("UPDATE audit SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                     (canonical_json(payload), prev, h, r.seq))
        if r.terminal:
            conn.execute("UPDATE cycles SET seal_hash = ? WHERE hour = ?", (h, r.hour))
        prev = h
    conn.execute("UPDATE audit_head SET hash = ?", (prev,))
    conn.commit()
    conn.close()
    with StateStore.open(path) as store:
        assert store.verify().head_hash != anchor


# --- terminal-record invariants on hand-built chains (the table's unique index is bypassed here)


def chain(spec: list[tuple[int, str]]) -> list[AuditRecord]:
    prev, out = genesis_hash(RUN), []
    for seq, (hour, kind) in enumerate(spec, start=1):
        text = envelope_text(seq, hour, kind, "w", "s", {})
        h = record_hash(prev, text)
        out.append(AuditRecord(seq, hour, kind, kind in ("traded", "held", "missed", "halted"), "w", "s", "{}", prev, h))
        prev = h
    return out


@pytest.mark.parametrize(
    ("spec", "seq", "message"),
    [
        ([(T0, "traded"), (T0, "held")], 2, "open hour is 2023-11-15T00:00:00Z"),
        ([(T0, "traded"), (T0 + 2 * H, "traded")], 2, "open hour is 2023-11-15T00:00:00Z"),
        ([(T0 + H, "missed")], 1, "open hour is 2023-11-14T23:00:00Z"),
        ([(T0, "traded"), (T0, "note")], 2, "event for hour 2023-11-14T23:00:00Z"),
        ([(T0, "note"), (T0 + H, "held")], 2, "terminal record for hour 2023-11-15T00:00:00Z"),
    ],
)
def test_each_hour_closes_exactly_once_in_order(spec: list[tuple[int, str]], seq: int, message: str) -> None:
    with pytest.raises(AuditChainError, match=message) as err:
        verify_records(chain(spec), run_id=RUN, first_hour=T0, head=None)
    assert err.value.seq == seq


def test_a_well_formed_hand_built_chain_passes_and_its_genesis_binds_the_run() -> None:
    records = chain([(T0, "note"), (T0, "traded"), (T0 + H, "missed"), (T0 + 2 * H, "retrain"), (T0 + 2 * H, "held")])
    report = verify_records(records, run_id=RUN, first_hour=T0, head=(5, records[-1].hash))
    assert report.n_terminal == 3
    with pytest.raises(AuditChainError, match="seq 1") as err:
        verify_records(records, run_id="another-run", first_hour=T0, head=None)
    assert err.value.seq == 1


def test_every_appended_record_names_the_open_hour(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    hook_points: list[str] = []
    store._fault_hook = hook_points.append
    store.record_fetched(T0, {"x": 1}, events=[AuditEvent("retrain", {"model": "m1"})])
    assert store.audit_records()[-1].hour == T0
    assert hook_points == ["FETCHED:before", "FETCHED:mid", "FETCHED:commit", "FETCHED:after"]
    store.close()


def test_verify_does_not_write(tmp_path: Path) -> None:
    path = build(tmp_path)
    before = path.read_bytes()
    with StateStore.open(path, readonly=True) as store:
        store.verify()
    assert path.read_bytes() == before

