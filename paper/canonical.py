"""Canonical JSON: one byte string per value, so that hashes of audit records are reproducible.

The encoding (version 1), applied recursively:

- ``None``, ``bool``, ``int`` and ``str`` are JSON's own; output is ASCII (``\\uXXXX`` escapes),
  no whitespace (separators ``,`` and ``:``), object keys sorted by code point.
- ``Decimal`` (money in the paper ledger) is a JSON *string* in fixed-point notation,
  ``format(d, "f")``: ``Decimal("0.10")`` → ``"0.10"``, ``Decimal("1E+2")`` → ``"100"``. The
  quantisation (trailing zeros) is part of the value; NaN and infinities are refused.
- ``float`` (policy outputs, predictions) is a JSON number written as Python's shortest
  round-trip ``repr`` (``0.1`` → ``0.1``, float32 values widened exactly to float64 first); NaN
  and infinities are refused, so a float never has two spellings.
- ``datetime`` must be tz-aware; it becomes a string in UTC, ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``.
- Mappings need ``str`` keys (an int key would collide with its string); lists and tuples
  are arrays; dataclasses are objects of their fields; enums are their value; numpy scalars
  and arrays are their ``.item()`` / ``.tolist()``.
- Anything else (bytes, sets, naive datetimes, objects) is refused with the path of the value.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from paper.errors import CanonicalEncodingError

ENCODING_VERSION = 1


def iso_utc(value: datetime, what: str = "time") -> str:
    """``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` of a tz-aware time (the canonical spelling of a datetime)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise CanonicalEncodingError(f"{what}: naive datetime {value!r}; expected a tz-aware (UTC) time")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{utc.microsecond:06d}" if utc.microsecond else "") + "Z"


def _normalise(value: Any, path: str) -> Any:
    """A tree of JSON-native values (Decimal and datetime already turned into strings)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalEncodingError(f"{path}: float {value!r} has no canonical encoding (finite floats only)")
        return float(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise CanonicalEncodingError(f"{path}: Decimal {value!r} has no canonical encoding (finite only)")
        return format(value, "f")
    if isinstance(value, datetime):
        return iso_utc(value, path)
    if isinstance(value, enum.Enum):
        return _normalise(value.value, path)
    if type(value).__module__ == "numpy":
        if hasattr(value, "tolist"):
            return _normalise(value.tolist(), path)
        raise CanonicalEncodingError(f"{path}: numpy value of type {type(value).__name__} is not encodable")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise CanonicalEncodingError(f"{path}: key {k!r} is a {type(k).__name__}; keys must be str")
            out[k] = _normalise(v, f"{path}.{k}")
        return out
    if isinstance(value, list | tuple):
        return [_normalise(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _normalise(getattr(value, f.name), f"{path}.{f.name}") for f in dataclasses.fields(value)}
    raise CanonicalEncodingError(f"{path}: {type(value).__name__} {value!r:.60} has no canonical encoding")


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value`` (ASCII, sorted keys, no whitespace)."""
    tree = _normalise(value, "$")
    return json.dumps(tree, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def sha256_hex(text: str) -> str:
    """SHA-256 of the UTF-8 bytes of ``text``, as 64 lowercase hex digits."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value``."""
    return sha256_hex(canonical_json(value))
