"""Errors of the paper-trading state layer.

Every error names the file (and, where there is one, the record or hour) so that an operator
reading a refusal at start-up knows what to look at; nothing here is ever swallowed.
"""

from __future__ import annotations


class PaperStateError(Exception):
    """Base class: the state file or an operation on it is not acceptable."""


class StateFileError(PaperStateError):
    """The file cannot be used as a state file: foreign, corrupted, truncated or of an unknown version."""


class MigrationError(StateFileError):
    """A schema migration failed; the file was left at its previous version."""


class CycleOrderError(PaperStateError):
    """A cycle transition was applied out of order (a skipped stage, a gap in hours, a closed hour)."""


class CycleConflictError(PaperStateError):
    """A transition already recorded is re-applied with different content (not idempotent)."""


class AuditChainError(PaperStateError):
    """The audit hash chain is broken; ``seq`` is the first bad record (None: the chain as a whole)."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


class StateLockedError(PaperStateError):
    """Another process holds the state's lock."""


class CanonicalEncodingError(ValueError):
    """A value has no canonical JSON encoding (float NaN, naive datetime, non-string key, ...)."""
