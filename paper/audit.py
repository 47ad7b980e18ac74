"""The hash-chained audit trail: record format, hashing and chain verification.

Each record is an *envelope* ``{"v": 1, "seq", "hour", "kind", "wall_time", "state_hash",
"payload"}`` encoded with `paper.canonical` (sorted keys, Decimal as fixed-point strings,
finite floats as shortest repr). Its hash is::

    hash = sha256_hex(prev_hash + canonical_json(envelope))

where ``prev_hash`` is the previous record's hash (64 hex digits) and, for the first record,
``genesis_hash(run_id)`` — so a chain cannot be spliced into another run. ``seq`` runs 1, 2, 3 …
without gaps, and the store keeps the head (last seq and hash) in its own row, written in the
same transaction: an edited, inserted, deleted (even the last), or reordered record breaks
verification, and `verify_chain` names the first bad one. A chain that someone rewrote in full,
head included, still verifies: anchor the head elsewhere (the status line prints it) when that
matters.

Terminal kinds close an hour (exactly one per hour, hours contiguous from the run's first
hour); event kinds are non-terminal and belong to the hour still open (the next one to close).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from paper.canonical import canonical_json, sha256_hex
from paper.errors import AuditChainError
from paper.hours import HOUR_S, iso

TERMINAL_KINDS = ("traded", "held", "missed", "halted")
EVENT_KINDS = ("start", "retrain", "reactivate", "kill_switch", "ladder", "fault", "note")
RECORD_VERSION = 1
GENESIS_DOMAIN = "krakenrl/paper/audit/v1"


def genesis_hash(run_id: str) -> str:
    """The ``prev_hash`` of a run's first record (binds the chain to the run id)."""
    return sha256_hex(f"{GENESIS_DOMAIN}\n{run_id}")


def envelope_text(seq: int, hour: int, kind: str, wall_time: str, state_hash: str, payload: Any) -> str:
    """The canonical text a record's hash covers."""
    return canonical_json(
        {
            "v": RECORD_VERSION,
            "seq": seq,
            "hour": hour,
            "kind": kind,
            "wall_time": wall_time,
            "state_hash": state_hash,
            "payload": payload,
        }
    )


def record_hash(prev_hash: str, envelope: str) -> str:
    """``sha256_hex(prev_hash + envelope)``."""
    return sha256_hex(prev_hash + envelope)


@dataclass(frozen=True)
class AuditEvent:
    """A non-terminal audit event to append (retrain, reactivate, kill switch, ...)."""

    kind: str
    payload: Mapping[str, Any]

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"AuditEvent.kind: expected one of {EVENT_KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class AuditRecord:
    """One stored record, as read back from the audit table."""

    seq: int
    hour: int
    kind: str
    terminal: bool
    wall_time: str
    state_hash: str
    payload: str  # canonical JSON text
    prev_hash: str
    hash: str

    def payload_obj(self) -> Any:
        return json.loads(self.payload)

    def where(self) -> str:
        return f"audit record seq {self.seq} (hour {iso(self.hour)}, kind {self.kind!r})"


@dataclass(frozen=True)
class ChainReport:
    """What a successful verification saw."""

    n_records: int
    n_terminal: int
    last_terminal_hour: int | None
    head_seq: int
    head_hash: str


class AuditSource(Protocol):
    """What `verify_chain` needs from a store (the `paper.state.StateStore` has it)."""

    @property
    def run_id(self) -> str: ...

    @property
    def first_hour(self) -> int: ...

    def audit_records(self) -> list[AuditRecord]: ...

    def audit_head(self) -> tuple[int, str]: ...


def verify_records(
    records: Iterable[AuditRecord], *, run_id: str, first_hour: int, head: tuple[int, str] | None
) -> ChainReport:
    """Walk ``records`` (in seq order) and raise `AuditChainError` at the first bad one."""
    prev = genesis_hash(run_id)
    expected_seq = 1
    last_terminal: int | None = None
    n = n_terminal = 0
    for rec in records:
        where = rec.where()
        if rec.seq != expected_seq:
            what = "missing (deleted?)" if rec.seq > expected_seq else "out of order"
            raise AuditChainError(f"{where}: expected seq {expected_seq}; record(s) {what}", rec.seq)
        if rec.prev_hash != prev:
            raise AuditChainError(
                f"{where}: prev_hash {rec.prev_hash[:12]}… does not match the previous record's hash {prev[:12]}… "
                "(a record before it was edited, removed, inserted or moved)",
                rec.seq,
            )
        if rec.kind not in TERMINAL_KINDS and rec.kind not in EVENT_KINDS:
            raise AuditChainError(f"{where}: unknown kind {rec.kind!r}", rec.seq)
        if rec.terminal != (rec.kind in TERMINAL_KINDS):
            raise AuditChainError(f"{where}: terminal flag {rec.terminal} contradicts kind {rec.kind!r}", rec.seq)
        try:
            payload = json.loads(rec.payload)
            canonical_payload = canonical_json(payload)
        except ValueError as exc:
            raise AuditChainError(f"{where}: payload is not valid JSON ({exc})", rec.seq) from None
        if canonical_payload != rec.payload:
            raise AuditChainError(f"{where}: payload text is not in canonical form (edited?)", rec.seq)
        text = envelope_text(rec.seq, rec.hour, rec.kind, rec.wall_time, rec.state_hash, payload)
        if record_hash(prev, text) != rec.hash:
            raise AuditChainError(f"{where}: hash does not match its content (record edited)", rec.seq)
        open_hour = first_hour if last_terminal is None else last_terminal + HOUR_S
        if rec.hour != open_hour:
            role = "terminal record" if rec.terminal else "event"
            raise AuditChainError(
                f"{where}: {role} for hour {iso(rec.hour)}, but the open hour is {iso(open_hour)} "
                "(hours must close once each, in order, from the run's first hour)",
                rec.seq,
            )
        if rec.terminal:
            last_terminal = rec.hour
            n_terminal += 1
        prev = rec.hash
        expected_seq += 1
        n += 1
    if head is not None:
        head_seq, head_hash = head
        if (head_seq, head_hash) != (n, prev):
            raise AuditChainError(
                f"audit head says seq {head_seq} hash {head_hash[:12]}…, the chain ends at seq {n} hash {prev[:12]}… "
                "(records after the last one were deleted, or the head was edited)",
                n + 1 if head_seq > n else head_seq,
            )
    return ChainReport(n, n_terminal, last_terminal, n, prev)


def verify_chain(source: AuditSource) -> ChainReport:
    """Verify a store's whole audit chain against its head; raises naming the first bad record."""
    return verify_records(
        source.audit_records(), run_id=source.run_id, first_hour=source.first_hour, head=source.audit_head()
    )
