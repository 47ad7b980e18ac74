"""Hour keys: a cycle, an order id and an audit record are keyed by the bar's open time.

An hour is an ``int`` of Unix seconds on the hourly grid (the same integers the env uses for
bar timestamps). Tz-aware datetimes are accepted and converted; a naive datetime or a time off
the grid is refused, since it would silently key a different bar.
"""

from __future__ import annotations

from datetime import UTC, datetime

HOUR_S = 3600


def as_hour(value: int | datetime, what: str = "hour") -> int:
    """The hour key of ``value`` (Unix seconds, multiple of 3600)."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{what}: naive datetime {value!r}; expected a tz-aware UTC time")
        seconds = value.timestamp()
        if seconds != int(seconds):
            raise ValueError(f"{what}: {value.isoformat()} is not on the hourly grid")
        value = int(seconds)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what}: expected int Unix seconds or a tz-aware datetime, got {type(value).__name__}")
    if value % HOUR_S:
        raise ValueError(f"{what}: {value} ({iso(value)}) is not on the hourly grid (multiple of {HOUR_S} s)")
    return int(value)


def iso(hour: int) -> str:
    """``2024-01-01T05:00:00Z`` for error messages and status lines."""
    return datetime.fromtimestamp(hour, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
