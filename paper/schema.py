"""The state file's schema and its explicit, numbered migrations.

A state file is identified by SQLite's header ``application_id`` (`APPLICATION_ID`) and carries
its schema version in ``user_version`` (mirrored in ``meta.schema_version``). Opening a file
whose version is below `SCHEMA_VERSION` runs the missing migrations, in order, inside one
transaction, and records each in ``schema_migrations``; a failure rolls the file back to the
version it had. A file of a newer version is refused: this code cannot know what it means.

To change the schema: append a `Migration` (never edit a released one), bump nothing else —
`SCHEMA_VERSION` is the last migration's number.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

APPLICATION_ID = 0x4B524C50  # "KRLP": krakenrl paper state
APPLICATION_NAME = "krakenrl-paper"

_V1 = (
    """CREATE TABLE schema_migrations (
        version INTEGER PRIMARY KEY,
        description TEXT NOT NULL,
        applied_at TEXT NOT NULL
    )""",
    f"""CREATE TABLE meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        application TEXT NOT NULL CHECK (application = '{APPLICATION_NAME}'),
        run_id TEXT NOT NULL CHECK (length(run_id) > 0),
        config_hash TEXT NOT NULL,
        first_hour INTEGER NOT NULL CHECK (first_hour % 3600 = 0),
        created_at TEXT NOT NULL,
        schema_version INTEGER NOT NULL
    )""",
    """CREATE TABLE portfolio (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        cash TEXT NOT NULL,
        as_of_hour INTEGER
    )""",
    """CREATE TABLE positions (
        asset TEXT PRIMARY KEY,
        units TEXT NOT NULL
    )""",
    """CREATE TABLE risk_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        ladder_level INTEGER NOT NULL CHECK (ladder_level BETWEEN 0 AND 3),
        peak_equity TEXT NOT NULL,
        kill_switch_engaged INTEGER NOT NULL CHECK (kill_switch_engaged IN (0, 1)),
        kill_switch_trigger TEXT,
        kill_switch_since INTEGER,
        halted INTEGER NOT NULL CHECK (halted IN (0, 1)),
        detail TEXT NOT NULL,
        as_of_hour INTEGER,
        CHECK ((kill_switch_engaged = 1) = (kill_switch_trigger IS NOT NULL AND kill_switch_since IS NOT NULL))
    )""",
    """CREATE TABLE cursor (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last_bar INTEGER,
        last_terminal_hour INTEGER
    )""",
    """CREATE TABLE cycles (
        hour INTEGER PRIMARY KEY CHECK (hour % 3600 = 0),
        stage INTEGER NOT NULL CHECK (stage BETWEEN 1 AND 6),
        outcome TEXT CHECK (outcome IN ('traded', 'held', 'halted', 'missed')),
        seal_hash TEXT,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE cycle_stages (
        hour INTEGER NOT NULL REFERENCES cycles(hour),
        stage INTEGER NOT NULL CHECK (stage BETWEEN 1 AND 6),
        payload TEXT NOT NULL,
        payload_hash TEXT NOT NULL,
        committed_at TEXT NOT NULL,
        PRIMARY KEY (hour, stage)
    )""",
    """CREATE TABLE orders (
        client_order_id TEXT PRIMARY KEY,
        hour INTEGER NOT NULL REFERENCES cycles(hour),
        pair TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        seq INTEGER NOT NULL CHECK (seq >= 0),
        order_type TEXT NOT NULL CHECK (order_type IN ('limit', 'market')),
        units TEXT NOT NULL,
        limit_price TEXT,
        status TEXT NOT NULL CHECK (status IN ('open', 'filled', 'partial', 'cancelled', 'expired', 'rejected')),
        UNIQUE (hour, pair, side, seq)
    )""",
    """CREATE TABLE fills (
        client_order_id TEXT NOT NULL REFERENCES orders(client_order_id),
        fill_seq INTEGER NOT NULL CHECK (fill_seq >= 0),
        hour INTEGER NOT NULL REFERENCES cycles(hour),
        price TEXT NOT NULL,
        units TEXT NOT NULL,
        fee TEXT NOT NULL,
        liquidity TEXT NOT NULL CHECK (liquidity IN ('maker', 'taker')),
        PRIMARY KEY (client_order_id, fill_seq)
    )""",
    """CREATE TABLE ledger (
        hour INTEGER PRIMARY KEY REFERENCES cycles(hour),
        cash TEXT NOT NULL,
        equity TEXT NOT NULL,
        fees TEXT NOT NULL,
        positions TEXT NOT NULL,
        marks TEXT NOT NULL
    )""",
    """CREATE TABLE audit (
        seq INTEGER PRIMARY KEY CHECK (seq >= 1),
        hour INTEGER NOT NULL,
        kind TEXT NOT NULL,
        terminal INTEGER NOT NULL CHECK (terminal IN (0, 1)),
        wall_time TEXT NOT NULL,
        state_hash TEXT NOT NULL,
        payload TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE
    )""",
    "CREATE UNIQUE INDEX audit_one_terminal_per_hour ON audit(hour) WHERE terminal = 1",
)

_V2 = (
    # the chain head, written with every append: deleting the last record(s) becomes detectable
    """CREATE TABLE audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL CHECK (seq >= 0),
        hash TEXT NOT NULL
    )""",
)


def _run(statements: tuple[str, ...]) -> Callable[[sqlite3.Connection], None]:
    def apply(conn: sqlite3.Connection) -> None:
        for sql in statements:
            conn.execute(sql)

    return apply


def _v2(conn: sqlite3.Connection) -> None:
    """Add the head row; backfill it from an existing chain (the genesis hash when empty)."""
    from paper.audit import genesis_hash

    _run(_V2)(conn)
    last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    if last is None:
        row = conn.execute("SELECT run_id FROM meta WHERE id = 1").fetchone()
        # a brand-new file gets its head once meta exists (StateStore.create)
        if row is None:
            return
        last = (0, genesis_hash(row[0]))
    conn.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)", (int(last[0]), str(last[1])))


@dataclass(frozen=True)
class Migration:
    """Schema version ``version`` is reached by ``apply`` from ``version - 1``."""

    version: int
    description: str
    apply: Callable[[sqlite3.Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "core tables: meta, portfolio, positions, risk state, cursor, cycles, orders, fills, ledger, audit",
              _run(_V1)),
    Migration(2, "audit_head: the chain head, so that a deleted tail is detected", _v2),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def apply_migrations(
    conn: sqlite3.Connection, from_version: int, now: str, migrations: Sequence[Migration] | None = None
) -> None:
    """Run migrations ``from_version + 1 …`` on a connection already inside a transaction."""
    for m in (MIGRATIONS if migrations is None else migrations)[from_version:]:
        m.apply(conn)
        conn.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
            (m.version, m.description, now),
        )
        conn.execute(f"PRAGMA user_version = {int(m.version)}")
        conn.execute("UPDATE meta SET schema_version = ? WHERE id = 1", (m.version,))


def check_migrations(migrations: tuple[Migration, ...] = MIGRATIONS) -> None:
    """Migrations are numbered 1, 2, 3 … without gaps (a mistake here would corrupt files)."""
    for i, m in enumerate(migrations, start=1):
        if m.version != i:
            raise RuntimeError(f"paper.schema: migration #{i} has version {m.version}; expected {i}")


check_migrations()
