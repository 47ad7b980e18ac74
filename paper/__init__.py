"""Paper trading: the durable state store, the hash-chained audit trail and their guards.

This package holds the foundation only (state, audit, lock, scrubbing); the hourly loop,
feeds and execution are built on top of `paper.state.StateStore`. It imports the standard
library only, so a restarted process opens and verifies its state before loading anything
heavy.
"""

from paper.audit import EVENT_KINDS, TERMINAL_KINDS, AuditEvent, AuditRecord, ChainReport, verify_chain
from paper.canonical import canonical_json, content_hash
from paper.errors import (
    AuditChainError,
    CanonicalEncodingError,
    CycleConflictError,
    CycleOrderError,
    MigrationError,
    PaperStateError,
    StateFileError,
    StateLockedError,
)
from paper.ledger import LedgerUpdate, Portfolio, RiskState
from paper.lock import StateLock
from paper.orders import Fill, Order, OrderIntent, client_order_id
from paper.schema import SCHEMA_VERSION
from paper.scrub import ScrubFilter, scrub_config, scrub_text
from paper.state import Stage, StateStore

__all__ = [
    "EVENT_KINDS",
    "SCHEMA_VERSION",
    "TERMINAL_KINDS",
    "AuditChainError",
    "AuditEvent",
    "AuditRecord",
    "CanonicalEncodingError",
    "ChainReport",
    "CycleConflictError",
    "CycleOrderError",
    "Fill",
    "LedgerUpdate",
    "MigrationError",
    "Order",
    "OrderIntent",
    "PaperStateError",
    "Portfolio",
    "RiskState",
    "ScrubFilter",
    "Stage",
    "StateFileError",
    "StateLock",
    "StateLockedError",
    "StateStore",
    "canonical_json",
    "client_order_id",
    "content_hash",
    "scrub_config",
    "scrub_text",
    "verify_chain",
]
