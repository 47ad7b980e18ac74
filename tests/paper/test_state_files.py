"""Foreign, corrupted, truncated and newer state files are refused, unchanged (REC-4, contract 7);
older ones are migrated explicitly, all or nothing."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from paper import AuditChainError, MigrationError, StateFileError, StateLock, StateStore
from paper.schema import MIGRATIONS, Migration
from tests.paper.helpers import T0, H, dump_db, fixed_clock, full_cycle, new_store


def built(tmp_path: Path, hours: int = 3) -> Path:
    store = new_store(tmp_path)
    for i in range(hours):
        full_cycle(store, T0 + i * H)
    store.record_event("note", {"marker": "unique-marker-4711"})
    store.close()
    path = tmp_path / "state.db"
    assert not Path(f"{path}-wal").exists()  # closed cleanly: everything is in the main file
    return path


def refused_unchanged(path: Path, match: str, error: type[Exception] = StateFileError) -> None:
    before = path.read_bytes() if path.is_file() else None
    for readonly in (False, True):
        with pytest.raises(error, match=match) as err:
            StateStore.open(path, readonly=readonly)
        assert str(path) in str(err.value)
    if before is not None:
        assert path.read_bytes() == before  # refusing never modifies the file


def test_missing_empty_and_directory_paths(tmp_path: Path) -> None:
    with pytest.raises(StateFileError, match="no such state file"):
        StateStore.open(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()
    (tmp_path / "empty.db").touch()
    refused_unchanged(tmp_path / "empty.db", "empty file")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StateFileError, match="not a regular file"):
        StateStore.open(tmp_path / "dir.db")


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("cash: 1000\n" * 50)
    refused_unchanged(text, "foreign file: not a SQLite database")
    noise = tmp_path / "noise.db"
    noise.write_bytes(random.Random(0).randbytes(8192))
    refused_unchanged(noise, "foreign file: not a SQLite database")
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE meta (k TEXT, v TEXT)")
    conn.commit()
    conn.close()
    refused_unchanged(other, r"foreign file: SQLite application_id is 0x0, expected 0x4b524c50")


def test_newer_or_unfinished_schema_is_refused(tmp_path: Path) -> None:
    path = built(tmp_path, hours=1)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    refused_unchanged(path, "schema version 3 is newer than this code knows \\(2\\)")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 0")
    conn.close()
    refused_unchanged(path, "never fully created")


def test_meta_must_agree_with_the_header(tmp_path: Path) -> None:
    path = built(tmp_path, hours=1)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET schema_version = 1")
    conn.commit()
    conn.close()
    refused_unchanged(path, "meta says application 'krakenrl-paper' schema 1")


@pytest.mark.parametrize("cut", ["one_byte", "half_page", "one_page", "half_file"])
def test_a_truncated_file_is_refused(tmp_path: Path, cut: str) -> None:
    path = built(tmp_path)
    data = path.read_bytes()
    page = int.from_bytes(data[16:18], "big")
    n = {"one_byte": 1, "half_page": page // 2, "one_page": page, "half_file": len(data) // page // 2 * page}[cut]
    path.write_bytes(data[:-n])
    message = "truncated: the header says" if n % page == 0 else "truncated or torn"
    refused_unchanged(path, message)


def test_a_corrupted_page_is_refused(tmp_path: Path) -> None:
    path = built(tmp_path)
    conn = sqlite3.connect(path)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'ledger'").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[(root - 1) * page: (root - 1) * page + 12] = b"\xff" * 12  # the table's b-tree page header
    path.write_bytes(bytes(data))
    refused_unchanged(path, "corrupted")


def test_a_flipped_byte_in_an_audit_record_is_named(tmp_path: Path) -> None:
    path = built(tmp_path)
    data = path.read_bytes()
    assert data.count(b"unique-marker-4711") == 1
    path.write_bytes(data.replace(b"unique-marker-4711", b"unique-marker-4712"))
    with pytest.raises(AuditChainError, match=r"audit record seq 4 .* hash does not match") as err:
        StateStore.open(path)
    assert err.value.seq == 4 and str(path) in str(err.value)
    with pytest.raises(AuditChainError):
        StateStore.open(path, readonly=True)
    with StateStore.open(path, readonly=True, verify=False) as store:  # the evidence stays readable
        assert store.audit_records()[3].payload == '{"marker":"unique-marker-4712"}'


def downgrade_to_v1(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("DROP TABLE audit_head")
    conn.execute("DELETE FROM schema_migrations WHERE version = 2")
    conn.execute("UPDATE meta SET schema_version = 1")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    conn.close()


def test_an_older_file_is_migrated_and_the_migration_recorded(tmp_path: Path) -> None:
    path = built(tmp_path)
    with StateStore.open(path, readonly=True) as store:
        head = store.audit_head()
    downgrade_to_v1(path)
    with pytest.raises(StateFileError, match="schema version 1 needs migrating to 2"):
        StateStore.open(path, readonly=True)
    with StateStore.open(path, clock=fixed_clock) as store:
        assert store.schema_version == 2
        assert store.audit_head() == head  # backfilled from the chain
        rows = store._conn.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version").fetchall()
        assert rows == [(1, "2024-01-01T00:00:00Z"), (2, "2024-01-01T00:00:00Z")]
        full_cycle(store, store.next_hour())
        assert store.verify().n_terminal == 4


def test_a_failing_migration_leaves_the_file_at_its_version(tmp_path: Path) -> None:
    path = built(tmp_path)
    downgrade_to_v1(path)
    before = dump_db(path)

    def broken(conn: sqlite3.Connection) -> None:
        MIGRATIONS[1].apply(conn)
        raise RuntimeError("disk full (simulated)")

    lock = StateLock(path).acquire()
    try:
        with pytest.raises(MigrationError, match="migrating schema 1 → 2 failed, file left at 1: disk full"):
            StateStore._open_locked(path, lock, fixed_clock, None, verify=True, quick=False,
                                    migrations=(MIGRATIONS[0], Migration(2, "broken", broken)))
    finally:
        lock.release()
    assert dump_db(path) == before
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    with StateStore.open(path) as store:  # the real migration still works afterwards
        assert store.schema_version == 2


def test_our_id_without_a_meta_table_is_refused(tmp_path: Path) -> None:
    path = built(tmp_path, hours=1)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE meta")
    conn.commit()
    conn.close()
    refused_unchanged(path, "corrupted: no such table: meta")
