"""The durable paper-trading state: one SQLite file, one writer, one commit per cycle transition.

Each hour is a cycle keyed by its bar's open time and moves through six stages
(TEST_PLAN §7), each one durable commit::

    FETCHED → DECIDED → INTENTS → FILLED → LEDGER_COMMITTED → AUDIT_SEALED

A transition stores its canonical input (``cycle_stages``) next to its effect (orders, fills,
portfolio, risk state, audit record), so a process killed anywhere resumes from the last
commit and re-derives the rest from persisted inputs (REC-2). Re-applying a recorded
transition with the same input is a no-op; with a different input it is a
`CycleConflictError`; a transition out of order is a `CycleOrderError`. Hours close in
order, exactly once each: sealed (traded, held, halted) or closed without trading (missed,
halted) — an hour recorded missed is never filled afterwards.

SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk when it returns) and
foreign keys on. ``fault_hook`` is called at named points so that tests can kill the process
there: ``"<STAGE>:before"`` (before BEGIN), ``":mid"`` (inside the transaction, effects written
but not the stage row), ``":commit"`` (just before COMMIT), ``":after"``; ``"EVENT:…"`` for
standalone events and ``"CREATE:mid"``/``"CREATE:after"`` during creation. It is an argument,
never read from the environment.
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

from paper.audit import (
    EVENT_KINDS,
    TERMINAL_KINDS,
    AuditEvent,
    AuditRecord,
    ChainReport,
    envelope_text,
    genesis_hash,
    record_hash,
    verify_chain,
)
from paper.canonical import canonical_json, content_hash, iso_utc, sha256_hex
from paper.errors import (
    AuditChainError,
    CycleConflictError,
    CycleOrderError,
    MigrationError,
    PaperStateError,
    StateFileError,
)
from paper.fileguard import check_header, configure, connect, fsync_path, identify
from paper.hours import HOUR_S, as_hour, iso
from paper.ledger import LedgerUpdate, Portfolio, RiskState
from paper.lock import StateLock
from paper.money import as_decimal, decimal_text, parse_stored
from paper.orders import ORDER_STATUSES, Fill, Order, OrderIntent, client_order_id
from paper.schema import APPLICATION_ID, APPLICATION_NAME, MIGRATIONS, SCHEMA_VERSION, Migration, apply_migrations

Clock = Callable[[], datetime]
FaultHook = Callable[[str], None]


class Stage(enum.IntEnum):
    """The per-hour cycle stages, in order."""

    FETCHED = 1
    DECIDED = 2
    INTENTS = 3
    FILLED = 4
    LEDGER_COMMITTED = 5
    AUDIT_SEALED = 6


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _events_content(events: Sequence[AuditEvent]) -> list[dict[str, Any]]:
    for e in events:
        if not isinstance(e, AuditEvent):
            raise TypeError(f"events: expected AuditEvent, got {type(e).__name__}")
    return [{"kind": e.kind, "payload": e.payload} for e in events]


class StateStore:
    """One paper-trading state file. Use `create` or `open`; close it (or use ``with``)."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        lock: StateLock | None,
        clock: Clock,
        fault_hook: FaultHook | None,
    ) -> None:
        self.path = path
        self._conn = conn
        self._lock = lock
        self._clock = clock
        self._fault_hook = fault_hook
        row = conn.execute("SELECT run_id, config_hash, first_hour, created_at FROM meta WHERE id = 1").fetchone()
        self.run_id: str = row[0]
        self.config_hash: str = row[1]
        self.first_hour: int = int(row[2])
        self.created_at: str = row[3]

    # ------------------------------------------------------------------ opening

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        run_id: str,
        config_hash: str,
        first_hour: int | datetime,
        initial_cash: Decimal | str | int,
        clock: Clock | None = None,
        fault_hook: FaultHook | None = None,
    ) -> StateStore:
        """Create a new state file (never overwrites one) and open it for writing.

        The file is built under a temporary name and linked into place only once complete,
        so a crash during creation leaves no half-written state file behind.
        """
        path = Path(path)
        clock = clock or _utc_now
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"create: run_id must be a non-empty str, got {run_id!r}")
        if not isinstance(config_hash, str):
            raise TypeError(f"create: config_hash must be a str, got {type(config_hash).__name__}")
        first = as_hour(first_hour, "create: first_hour")
        cash = as_decimal(initial_cash, "create: initial_cash")
        if cash < 0:
            raise ValueError(f"create: initial_cash is negative: {cash}")
        if path.exists():
            raise StateFileError(f"{path}: already exists; refusing to overwrite a state file")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = StateLock(path).acquire()
        try:
            if path.exists():
                raise StateFileError(f"{path}: already exists; refusing to overwrite a state file")
            tmp = path.with_name(f".{path.name}.creating")
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
                leftover.unlink(missing_ok=True)  # a crashed creation; we hold the lock
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            now = iso_utc(clock(), "clock()")
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                configure(conn, tmp, writable=True)
                conn.execute("BEGIN IMMEDIATE")
                MIGRATIONS[0].apply(conn)
                conn.execute(
                    "INSERT INTO meta (id, application, run_id, config_hash, first_hour, created_at, schema_version)"
                    " VALUES (1, ?, ?, ?, ?, ?, 1)",
                    (APPLICATION_NAME, run_id, config_hash, first, now),
                )
                conn.execute(
                    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (1, ?, ?)",
                    (MIGRATIONS[0].description, now),
                )
                conn.execute("PRAGMA user_version = 1")
                apply_migrations(conn, 1, now)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute("INSERT INTO portfolio (id, cash, as_of_hour) VALUES (1, ?, NULL)", (decimal_text(cash),))
                conn.execute(
                    "INSERT INTO risk_state (id, ladder_level, peak_equity, kill_switch_engaged, kill_switch_trigger,"
                    " kill_switch_since, halted, detail, as_of_hour) VALUES (1, 0, ?, 0, NULL, NULL, 0, '{}', NULL)",
                    (decimal_text(cash),),
                )
                conn.execute("INSERT INTO cursor (id, last_bar, last_terminal_hour) VALUES (1, NULL, NULL)")
                conn.execute(
                    "INSERT OR REPLACE INTO audit_head (id, seq, hash) VALUES (1, 0, ?)", (genesis_hash(run_id),)
                )
                if fault_hook is not None:
                    fault_hook("CREATE:mid")
                conn.execute("COMMIT")
            finally:
                conn.close()
            if fault_hook is not None:
                fault_hook("CREATE:after")  # complete under the temporary name, not yet in place
            fsync_path(tmp)
            os.link(tmp, path)  # fails if something appeared at path meanwhile: never overwrites
            tmp.unlink()
            fsync_path(path.parent)
            return cls._open_locked(path, lock, clock, fault_hook, verify=True, quick=False)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        verify: bool = True,
        quick_check: bool = False,
        clock: Clock | None = None,
        fault_hook: FaultHook | None = None,
    ) -> StateStore:
        """Open an existing state file, refusing a foreign, corrupted or tampered one.

        Writers take the lock (a second writer is refused) and migrate an older schema;
        readers (``readonly=True``: status, verify, the dashboard) take no lock and write nothing.
        ``verify`` walks the audit chain and the cycle seals at open (SEC-7).
        """
        path = Path(path)
        clock = clock or _utc_now
        if readonly:
            check_header(path)
            conn = connect(path, readonly=True)
            try:
                version = identify(conn, path, quick=quick_check)
                if version != SCHEMA_VERSION:
                    raise StateFileError(
                        f"{path}: schema version {version} needs migrating to {SCHEMA_VERSION}; "
                        "open it once for writing (a paper run does)"
                    )
                store = cls(path, conn, None, clock, fault_hook)
                if verify:
                    store.verify()
                return store
            except BaseException:
                conn.close()
                raise
        lock = StateLock(path).acquire()
        try:
            return cls._open_locked(path, lock, clock, fault_hook, verify=verify, quick=quick_check)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_locked(
        cls,
        path: Path,
        lock: StateLock,
        clock: Clock,
        fault_hook: FaultHook | None,
        *,
        verify: bool,
        quick: bool,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> StateStore:
        check_header(path)
        conn = connect(path, readonly=False)
        try:
            version = identify(conn, path, quick=quick)
            configure(conn, path, writable=True)
            if version < len(migrations):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    apply_migrations(conn, version, iso_utc(clock(), "clock()"), migrations)
                    conn.execute("COMMIT")
                except Exception as exc:
                    conn.execute("ROLLBACK")
                    raise MigrationError(
                        f"{path}: migrating schema {version} → {len(migrations)} failed, file left at {version}: {exc}"
                    ) from exc
            store = cls(path, conn, lock, clock, fault_hook)
            if verify:
                store.verify()
            return store
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL) and release the lock."""
        try:
            self._conn.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def readonly(self) -> bool:
        return self._lock is None

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------------ reads

    def next_hour(self) -> int:
        """The open hour: the first hour without a terminal record."""
        return self._next_hour(self._conn)

    def last_bar(self) -> int | None:
        """The last hour whose cycle was sealed after trading or holding (not missed/aborted)."""
        row = self._conn.execute("SELECT last_bar FROM cursor WHERE id = 1").fetchone()
        return None if row[0] is None else int(row[0])

    def cycle_stage(self, hour: int | datetime) -> Stage | None:
        row = self._conn.execute("SELECT stage FROM cycles WHERE hour = ?", (as_hour(hour),)).fetchone()
        return None if row is None else Stage(row[0])

    def open_cycle(self) -> tuple[int, Stage] | None:
        """The cycle in progress (started, not closed), where a restarted loop resumes."""
        row = self._conn.execute("SELECT hour, stage FROM cycles WHERE stage < 6").fetchone()
        return None if row is None else (int(row[0]), Stage(row[1]))

    def stage_payload(self, hour: int | datetime, stage: Stage) -> Any:
        """The persisted input of a recorded transition (the market snapshot for FETCHED)."""
        h = as_hour(hour)
        row = self._conn.execute(
            "SELECT payload FROM cycle_stages WHERE hour = ? AND stage = ?", (h, int(stage))
        ).fetchone()
        if row is None:
            raise KeyError(f"{self.path}: no {Stage(stage).name} recorded for hour {iso(h)}")
        return json.loads(row[0])

    def portfolio(self) -> Portfolio:
        cash = self._conn.execute("SELECT cash FROM portfolio WHERE id = 1").fetchone()[0]
        rows = self._conn.execute("SELECT asset, units FROM positions ORDER BY asset").fetchall()
        return Portfolio(
            parse_stored(cash, "portfolio.cash"), {a: parse_stored(u, f"positions[{a}].units") for a, u in rows}
        )

    def risk_state(self) -> RiskState:
        r = self._conn.execute(
            "SELECT ladder_level, peak_equity, kill_switch_engaged, kill_switch_trigger, kill_switch_since, halted,"
            " detail FROM risk_state WHERE id = 1"
        ).fetchone()
        return RiskState(
            ladder_level=int(r[0]),
            peak_equity=parse_stored(r[1], "risk_state.peak_equity"),
            kill_switch_engaged=bool(r[2]),
            kill_switch_trigger=r[3],
            kill_switch_since=None if r[4] is None else int(r[4]),
            halted=bool(r[5]),
            detail=json.loads(r[6]),
        )

    def orders(self, hour: int | datetime | None = None, status: str | None = None) -> list[Order]:
        sql = "SELECT client_order_id, hour, pair, side, seq, order_type, units, limit_price, status FROM orders"
        where: list[str] = []
        args: list[Any] = []
        if hour is not None:
            where.append("hour = ?")
            args.append(as_hour(hour))
        if status is not None:
            where.append("status = ?")
            args.append(status)
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY hour, pair, side, seq"
        return [
            Order(
                r[0], int(r[1]), r[2], r[3], int(r[4]), r[5], parse_stored(r[6], f"orders[{r[0]}].units"),
                None if r[7] is None else parse_stored(r[7], f"orders[{r[0]}].limit_price"), r[8],
            )
            for r in self._conn.execute(sql, args).fetchall()
        ]

    def fills(self, hour: int | datetime | None = None) -> list[Fill]:
        sql = "SELECT client_order_id, fill_seq, price, units, fee, liquidity FROM fills"
        args: list[Any] = []
        if hour is not None:
            sql += " WHERE hour = ?"
            args.append(as_hour(hour))
        sql += " ORDER BY hour, client_order_id, fill_seq"
        return [
            Fill(r[0], parse_stored(r[2], "fills.price"), parse_stored(r[3], "fills.units"),
                 parse_stored(r[4], "fills.fee"), r[5], int(r[1]))
            for r in self._conn.execute(sql, args).fetchall()
        ]

    def ledger_rows(self) -> list[dict[str, Any]]:
        """The committed books per hour (equity curve, fees), oldest first."""
        rows = self._conn.execute("SELECT hour, cash, equity, fees, positions, marks FROM ledger ORDER BY hour")
        return [
            {
                "hour": int(h),
                "cash": parse_stored(c, "ledger.cash"),
                "equity": parse_stored(e, "ledger.equity"),
                "fees": parse_stored(f, "ledger.fees"),
                "positions": {a: Decimal(u) for a, u in json.loads(p).items()},
                "marks": {a: Decimal(u) for a, u in json.loads(m).items()},
            }
            for h, c, e, f, p, m in rows.fetchall()
        ]

    def decided_before(self, hour: int | datetime) -> int | None:
        """The last hour before ``hour`` with committed books (a decided hour, not a missed one), or None."""
        row = self._conn.execute("SELECT MAX(hour) FROM ledger WHERE hour < ?", (as_hour(hour),)).fetchone()
        return None if row[0] is None else int(row[0])

    def audit_records(self) -> list[AuditRecord]:
        rows = self._conn.execute(
            "SELECT seq, hour, kind, terminal, wall_time, state_hash, payload, prev_hash, hash FROM audit ORDER BY seq"
        ).fetchall()
        return [AuditRecord(int(r[0]), int(r[1]), r[2], bool(r[3]), r[4], r[5], r[6], r[7], r[8]) for r in rows]

    def audit_head(self) -> tuple[int, str]:
        row = self._conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        if row is None:
            raise AuditChainError(f"{self.path}: the audit head row is missing")
        return int(row[0]), str(row[1])

    def state_hash(self) -> str:
        """Hash of the books: portfolio, positions, risk state, open orders, last bar."""
        return self._state_hash(self._conn)

    def verify(self) -> ChainReport:
        """Walk the audit chain and check every closed cycle against its terminal record.

        Raises `AuditChainError` (prefixed with the file name) at the first problem.
        """
        try:
            report = verify_chain(self)
            self._verify_cycles()
        except AuditChainError as exc:
            raise AuditChainError(f"{self.path}: {exc}", exc.seq) from None
        return report

    # ------------------------------------------------------------------ transitions

    def record_fetched(
        self, hour: int | datetime, snapshot: Mapping[str, Any], events: Sequence[AuditEvent] = ()
    ) -> bool:
        """FETCHED: the validated market snapshot the hour's decision and fills will use.

        Returns False when this exact transition was already recorded (no-op).
        """
        content = {"snapshot": snapshot, "snapshot_hash": content_hash(snapshot), "events": _events_content(events)}
        return self._transition(hour, Stage.FETCHED, content, lambda c, h: self._append_events(c, h, events))

    def record_decided(
        self, hour: int | datetime, decision: Mapping[str, Any], events: Sequence[AuditEvent] = ()
    ) -> bool:
        """DECIDED: observation hash, raw action, projected (executed) target and the risk report."""
        content = {"decision": decision, "events": _events_content(events)}
        return self._transition(hour, Stage.DECIDED, content, lambda c, h: self._append_events(c, h, events))

    def record_intents(
        self, hour: int | datetime, intents: Sequence[OrderIntent], events: Sequence[AuditEvent] = ()
    ) -> list[Order]:
        """INTENTS: the orders to simulate, each with its deterministic ``client_order_id``."""
        keys = [(i.pair, i.side, i.seq) for i in intents]
        if len(set(keys)) != len(keys):
            raise ValueError(f"record_intents: duplicate (pair, side, seq) among {keys}")
        content = {"intents": list(intents), "events": _events_content(events)}

        def apply(conn: sqlite3.Connection, h: int) -> None:
            for i in intents:
                cid = client_order_id(self.run_id, h, i.pair, i.side, i.seq)
                conn.execute(
                    "INSERT INTO orders (client_order_id, hour, pair, side, seq, order_type, units, limit_price,"
                    " status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open')",
                    (cid, h, i.pair, i.side, i.seq, i.order_type, decimal_text(i.units),
                     None if i.limit_price is None else decimal_text(i.limit_price)),
                )
            self._append_events(conn, h, events)

        self._transition(hour, Stage.INTENTS, content, apply)
        return self.orders(hour=hour)

    def record_fills(
        self,
        hour: int | datetime,
        fills: Sequence[Fill],
        statuses: Mapping[str, str],
        events: Sequence[AuditEvent] = (),
    ) -> bool:
        """FILLED: the simulated fills and each order's resulting status (orders not named stay open)."""
        content = {
            "fills": list(fills),
            "statuses": dict(sorted(statuses.items())),
            "events": _events_content(events),
        }

        def apply(conn: sqlite3.Connection, h: int) -> None:
            units = {
                r[0]: parse_stored(r[1], "orders.units")
                for r in conn.execute("SELECT client_order_id, units FROM orders WHERE hour = ?", (h,))
            }
            filled: dict[str, Decimal] = dict.fromkeys(units, Decimal(0))
            for f in fills:
                if f.client_order_id not in units:
                    raise ValueError(f"record_fills({iso(h)}): fill for unknown order {f.client_order_id!r}")
                filled[f.client_order_id] += f.units
                conn.execute(
                    "INSERT INTO fills (client_order_id, fill_seq, hour, price, units, fee, liquidity)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (f.client_order_id, f.fill_seq, h, decimal_text(f.price), decimal_text(f.units),
                     decimal_text(f.fee), f.liquidity),
                )
            for cid, total in filled.items():
                if total > units[cid]:
                    raise ValueError(f"record_fills({iso(h)}): order {cid} filled {total} > ordered {units[cid]}")
            for cid, status in statuses.items():
                if cid not in units:
                    raise ValueError(f"record_fills({iso(h)}): status for unknown order {cid!r}")
                if status not in ORDER_STATUSES:
                    raise ValueError(f"record_fills({iso(h)}): order {cid}: unknown status {status!r}")
                conn.execute("UPDATE orders SET status = ? WHERE client_order_id = ?", (status, cid))
            self._append_events(conn, h, events)

        return self._transition(hour, Stage.FILLED, content, apply)

    def commit_ledger(
        self, hour: int | datetime, update: LedgerUpdate, events: Sequence[AuditEvent] = ()
    ) -> bool:
        """LEDGER_COMMITTED: the hour's resulting portfolio, marks, equity, fees and risk state."""
        content = {"ledger": update.to_dict(), "events": _events_content(events)}

        def apply(conn: sqlite3.Connection, h: int) -> None:
            p, r = update.portfolio, update.risk
            conn.execute("UPDATE portfolio SET cash = ?, as_of_hour = ? WHERE id = 1", (decimal_text(p.cash), h))
            conn.execute("DELETE FROM positions")
            conn.executemany(
                "INSERT INTO positions (asset, units) VALUES (?, ?)",
                [(a, decimal_text(u)) for a, u in p.units.items()],
            )
            conn.execute(
                "INSERT INTO ledger (hour, cash, equity, fees, positions, marks) VALUES (?, ?, ?, ?, ?, ?)",
                (h, decimal_text(p.cash), decimal_text(update.equity), decimal_text(update.fees),
                 canonical_json(dict(p.units)), canonical_json(dict(update.marks))),
            )
            conn.execute(
                "UPDATE risk_state SET ladder_level = ?, peak_equity = ?, kill_switch_engaged = ?,"
                " kill_switch_trigger = ?, kill_switch_since = ?, halted = ?, detail = ?, as_of_hour = ? WHERE id = 1",
                (r.ladder_level, decimal_text(r.peak_equity), int(r.kill_switch_engaged), r.kill_switch_trigger,
                 r.kill_switch_since, int(r.halted), canonical_json(dict(r.detail)), h),
            )
            self._append_events(conn, h, events)

        return self._transition(hour, Stage.LEDGER_COMMITTED, content, apply)

    def seal_hour(self, hour: int | datetime, kind: str, payload: Mapping[str, Any]) -> AuditRecord:
        """Close the hour with its one terminal audit record (AUDIT_SEALED).

        ``traded``/``held``/``halted`` after LEDGER_COMMITTED seal a full cycle (the bar counts as
        processed); ``missed``/``halted`` on an hour with no cycle, or one stopped before any
        order (FETCHED, DECIDED), close it without trading. Anything else is out of order.
        """
        if kind not in TERMINAL_KINDS:
            raise ValueError(f"seal_hour: kind must be one of {TERMINAL_KINDS}, got {kind!r}")
        h = as_hour(hour)
        content = {"kind": kind, "payload": payload}

        def apply(conn: sqlite3.Connection, h: int) -> None:
            row = conn.execute("SELECT stage FROM cycles WHERE hour = ?", (h,)).fetchone()
            full = row is not None and row[0] == Stage.LEDGER_COMMITTED
            if full and kind == "missed":
                raise CycleOrderError(f"{self.path}: hour {iso(h)} completed its cycle; it cannot be 'missed'")
            if not full and kind in ("traded", "held"):
                where = "has no cycle" if row is None else f"is at {Stage(row[0]).name}"
                raise CycleOrderError(
                    f"{self.path}: cannot seal hour {iso(h)} as {kind!r}: its cycle {where} (needs LEDGER_COMMITTED)"
                )
            if row is None:
                conn.execute(
                    "INSERT INTO cycles (hour, stage, updated_at) VALUES (?, 6, ?)", (h, self._now())
                )
            if full:
                conn.execute("UPDATE cursor SET last_bar = ? WHERE id = 1", (h,))
            rec = self._append_audit(conn, h, kind, payload)
            conn.execute("UPDATE cycles SET outcome = ?, seal_hash = ? WHERE hour = ?", (kind, rec.hash, h))

        self._transition(h, Stage.AUDIT_SEALED, content, apply)
        return self._terminal_record(h)

    def record_missed(self, hours: Sequence[int | datetime], reason: str) -> list[AuditRecord]:
        """Close hours the process was down as ``missed`` (FI-10): never traded afterwards.

        The hours must be the open hour and the ones after it, in order; each is its own
        commit, and re-recording an hour already missed with the same reason is a no-op.
        """
        if not reason:
            raise ValueError("record_missed: a reason is required")
        return [self.seal_hour(h, "missed", {"reason": reason}) for h in hours]

    def missed_hours_until(self, hour: int | datetime) -> list[int]:
        """The hours from the open hour up to (excluding) ``hour``: what a restart must record missed."""
        h = as_hour(hour)
        return list(range(self.next_hour(), h, HOUR_S))

    def record_event(self, kind: str, payload: Mapping[str, Any]) -> AuditRecord:
        """Append a non-terminal event (an operator's reactivation, a retrain) to the open hour."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"record_event: kind must be one of {EVENT_KINDS}, got {kind!r}")
        with self._write("EVENT") as conn:
            rec = self._append_audit(conn, self._next_hour(conn), kind, payload)
        return rec

    # ------------------------------------------------------------------ internals

    def _now(self) -> str:
        return iso_utc(self._clock(), "clock()")

    def _fault(self, point: str) -> None:
        if self._fault_hook is not None:
            self._fault_hook(point)

    @contextmanager
    def _write(self, point: str) -> Iterator[sqlite3.Connection]:
        """One durable write transaction, with the fault points around and inside it."""
        if self._lock is None:
            raise PaperStateError(f"{self.path}: opened read-only; refusing to write")
        self._fault(f"{point}:before")
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            self._fault(f"{point}:commit")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._fault(f"{point}:after")

    def _transition(
        self, hour: int | datetime, stage: Stage, content: Any, apply: Callable[[sqlite3.Connection, int], None]
    ) -> bool:
        h = as_hour(hour)
        text = canonical_json(content)
        digest = sha256_hex(text)
        with self._write(stage.name) as conn:
            row = conn.execute(
                "SELECT payload_hash FROM cycle_stages WHERE hour = ? AND stage = ?", (h, int(stage))
            ).fetchone()
            if row is not None:
                if row[0] != digest:
                    closed = conn.execute("SELECT outcome FROM cycles WHERE hour = ?", (h,)).fetchone()
                    what = f"already closed as {closed[0]!r}" if stage == Stage.AUDIT_SEALED else "already recorded"
                    raise CycleConflictError(
                        f"{self.path}: {stage.name} for hour {iso(h)} is {what} with different content "
                        "(a transition must be re-applied with the persisted inputs)"
                    )
                return False
            self._check_order(conn, h, stage)
            if stage == Stage.FETCHED:
                conn.execute("INSERT INTO cycles (hour, stage, updated_at) VALUES (?, 1, ?)", (h, self._now()))
            apply(conn, h)
            self._fault(f"{stage.name}:mid")  # effects written, stage row not yet: atomicity is tested here
            conn.execute(
                "INSERT INTO cycle_stages (hour, stage, payload, payload_hash, committed_at) VALUES (?, ?, ?, ?, ?)",
                (h, int(stage), text, digest, self._now()),
            )
            conn.execute("UPDATE cycles SET stage = ?, updated_at = ? WHERE hour = ?", (int(stage), self._now(), h))
        return True

    def _check_order(self, conn: sqlite3.Connection, h: int, stage: Stage) -> None:
        row = conn.execute("SELECT stage, outcome FROM cycles WHERE hour = ?", (h,)).fetchone()
        if row is not None and row[0] == Stage.AUDIT_SEALED:
            raise CycleOrderError(
                f"{self.path}: hour {iso(h)} is closed ({row[1]}); {stage.name} cannot be recorded "
                "(hours are never filled retroactively)"
            )
        if stage == Stage.FETCHED or (stage == Stage.AUDIT_SEALED and row is None):
            if row is not None:
                raise CycleOrderError(f"{self.path}: hour {iso(h)} already has a cycle at {Stage(row[0]).name}")
            self._check_open_hour(conn, h, stage)
            return
        if row is None:
            raise CycleOrderError(f"{self.path}: {stage.name} for hour {iso(h)}: no cycle (record FETCHED first)")
        if stage == Stage.AUDIT_SEALED:
            if row[0] in (Stage.LEDGER_COMMITTED, Stage.FETCHED, Stage.DECIDED):
                return
            raise CycleOrderError(
                f"{self.path}: cannot close hour {iso(h)} at {Stage(row[0]).name}: its orders exist; "
                "record FILLED and LEDGER_COMMITTED first"
            )
        if row[0] != stage - 1:
            raise CycleOrderError(
                f"{self.path}: {stage.name} for hour {iso(h)} out of order: the cycle is at {Stage(row[0]).name}, "
                f"{stage.name} must follow {Stage(stage - 1).name}"
            )

    def _check_open_hour(self, conn: sqlite3.Connection, h: int, stage: Stage) -> None:
        """A new cycle (or a closed-without-cycle hour) must be the open hour, with no other in progress."""
        terminal = conn.execute("SELECT kind FROM audit WHERE hour = ? AND terminal = 1", (h,)).fetchone()
        if terminal is not None:
            raise CycleOrderError(f"{self.path}: hour {iso(h)} is already closed as {terminal[0]!r}")
        nxt = self._next_hour(conn)
        if h < nxt:
            raise CycleOrderError(f"{self.path}: hour {iso(h)} is before the open hour {iso(nxt)}")
        if h > nxt:
            raise CycleOrderError(
                f"{self.path}: {stage.name} for hour {iso(h)}: hours {iso(nxt)} … {iso(h - HOUR_S)} have no "
                "terminal record; record them missed first (never filled retroactively)"
            )
        other = conn.execute("SELECT hour, stage FROM cycles WHERE stage < 6 AND hour != ?", (h,)).fetchone()
        if other is not None:
            raise CycleOrderError(
                f"{self.path}: the cycle for {iso(int(other[0]))} is still at {Stage(other[1]).name}; finish it first"
            )

    def _next_hour(self, conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT last_terminal_hour FROM cursor WHERE id = 1").fetchone()
        return self.first_hour if row[0] is None else int(row[0]) + HOUR_S

    def _append_events(self, conn: sqlite3.Connection, h: int, events: Sequence[AuditEvent]) -> None:
        for e in events:
            self._append_audit(conn, h, e.kind, e.payload)

    def _append_audit(self, conn: sqlite3.Connection, h: int, kind: str, payload: Mapping[str, Any]) -> AuditRecord:
        open_hour = self._next_hour(conn)
        if h != open_hour:
            raise CycleOrderError(
                f"{self.path}: audit record {kind!r} for hour {iso(h)}, but the open hour is {iso(open_hour)}"
            )
        head_seq, head_hash = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        seq = int(head_seq) + 1
        payload_text = canonical_json(payload)
        terminal = kind in TERMINAL_KINDS
        wall, state = self._now(), self._state_hash(conn)
        digest = record_hash(head_hash, envelope_text(seq, h, kind, wall, state, json.loads(payload_text)))
        conn.execute(
            "INSERT INTO audit (seq, hour, kind, terminal, wall_time, state_hash, payload, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, h, kind, int(terminal), wall, state, payload_text, head_hash, digest),
        )
        conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, digest))
        if terminal:
            conn.execute("UPDATE cursor SET last_terminal_hour = ? WHERE id = 1", (h,))
        return AuditRecord(seq, h, kind, terminal, wall, state, payload_text, head_hash, digest)

    def _terminal_record(self, h: int) -> AuditRecord:
        r = self._conn.execute(
            "SELECT seq, hour, kind, terminal, wall_time, state_hash, payload, prev_hash, hash FROM audit"
            " WHERE hour = ? AND terminal = 1",
            (h,),
        ).fetchone()
        return AuditRecord(int(r[0]), int(r[1]), r[2], bool(r[3]), r[4], r[5], r[6], r[7], r[8])

    @staticmethod
    def _state_hash(conn: sqlite3.Connection) -> str:
        def rows(sql: str) -> list[list[Any]]:
            return [list(r) for r in conn.execute(sql).fetchall()]

        return content_hash(
            {
                "portfolio": rows("SELECT cash, as_of_hour FROM portfolio"),
                "positions": rows("SELECT asset, units FROM positions ORDER BY asset"),
                "risk": rows(
                    "SELECT ladder_level, peak_equity, kill_switch_engaged, kill_switch_trigger, kill_switch_since,"
                    " halted, detail, as_of_hour FROM risk_state"
                ),
                "open_orders": rows(
                    "SELECT client_order_id, hour, pair, side, seq, order_type, units, limit_price FROM orders"
                    " WHERE status = 'open' ORDER BY client_order_id"
                ),
                "last_bar": rows("SELECT last_bar FROM cursor"),
            }
        )

    def _verify_cycles(self) -> None:
        """Closed cycles point at their terminal record; stored stage inputs match their hashes."""
        terminals = {
            r[0]: (r[1], r[2]) for r in self._conn.execute("SELECT hour, kind, hash FROM audit WHERE terminal = 1")
        }
        for hour, stage, outcome, seal in self._conn.execute("SELECT hour, stage, outcome, seal_hash FROM cycles"):
            if stage != Stage.AUDIT_SEALED:
                continue
            if terminals.get(hour) != (outcome, seal):
                raise AuditChainError(
                    f"cycle {iso(hour)} is sealed as {outcome!r} with hash {str(seal)[:12]}…, but the audit trail's "
                    f"terminal record for that hour is {terminals.get(hour)!r}"
                )
        closed = {r[0] for r in self._conn.execute("SELECT hour FROM cycles WHERE stage = 6")}
        orphans = sorted(set(terminals) - closed)
        if orphans:
            raise AuditChainError(f"terminal record(s) for hour(s) {[iso(h) for h in orphans]} without a closed cycle")
        for hour, stage, payload, digest in self._conn.execute(
            "SELECT hour, stage, payload, payload_hash FROM cycle_stages ORDER BY hour, stage"
        ):
            if sha256_hex(payload) != digest:
                raise AuditChainError(
                    f"cycle {iso(hour)} stage {Stage(stage).name}: stored input does not match its hash"
                )
