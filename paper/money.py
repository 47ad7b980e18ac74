"""Decimal money at the paper-ledger boundary (TEST_PLAN conventions: money is Decimal).

Floats are refused on purpose: a float that reaches the ledger has already been rounded in
binary, and the paper ledger must reconcile to the last quantum. Callers convert explicitly
(``Decimal(str(x))`` or a quantisation to the pair's decimals) where a float is the source.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def as_decimal(value: Decimal | str | int, what: str) -> Decimal:
    """``value`` as a finite Decimal; ``what`` names the field in the error."""
    if isinstance(value, bool | float):
        raise TypeError(f"{what}: {value!r} is a {type(value).__name__}; money must be Decimal, str or int")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int | str):
        try:
            d = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{what}: {value!r} is not a decimal number") from None
    else:
        raise TypeError(f"{what}: {value!r} is a {type(value).__name__}; money must be Decimal, str or int")
    if not d.is_finite():
        raise ValueError(f"{what}: {value!r} is not finite")
    return d


def decimal_text(value: Decimal) -> str:
    """Fixed-point text of a Decimal, as stored in the database and hashed (keeps the quantum)."""
    return format(value, "f")


def parse_stored(text: str, what: str) -> Decimal:
    """A Decimal read back from the database; a malformed value names its column."""
    if not isinstance(text, str):
        raise ValueError(f"{what}: stored value {text!r} is not text")
    return as_decimal(text, what)
