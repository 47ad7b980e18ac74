"""Order intents, orders and fills of the paper ledger, and deterministic client order ids.

``client_order_id`` is a pure function of (run, hour, pair, side, seq): a restart that
re-derives an hour's intents gets the same ids, so a replayed transition can never create a
second order for the same intent (the ids are the primary key of the orders table).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from paper.canonical import canonical_json, sha256_hex
from paper.hours import as_hour
from paper.money import as_decimal

SIDES = ("buy", "sell")
ORDER_TYPES = ("limit", "market")
ORDER_STATUSES = ("open", "filled", "partial", "cancelled", "expired", "rejected")
LIQUIDITY = ("maker", "taker")
ORDER_ID_DOMAIN = "krakenrl/paper/order/v1"


def client_order_id(run_id: str, hour: int, pair: str, side: str, seq: int) -> str:
    """32 lowercase hex digits: the first 128 bits of SHA-256 over the canonical 5-tuple.

    Derivation: ``sha256(DOMAIN + "\\n" + canonical_json([run_id, hour, pair, side, seq]))``.
    The domain string versions the scheme; the canonical JSON keeps fields from running into
    each other (``("a", "bc")`` and ``("ab", "c")`` differ).
    """
    if not isinstance(run_id, str) or not run_id:
        raise ValueError(f"client_order_id: run_id must be a non-empty str, got {run_id!r}")
    if not isinstance(pair, str) or not pair:
        raise ValueError(f"client_order_id: pair must be a non-empty str, got {pair!r}")
    if side not in SIDES:
        raise ValueError(f"client_order_id: side must be one of {SIDES}, got {side!r}")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ValueError(f"client_order_id: seq must be an int >= 0, got {seq!r}")
    text = canonical_json([run_id, as_hour(hour), pair, side, seq])
    return sha256_hex(f"{ORDER_ID_DOMAIN}\n{text}")[:32]


@dataclass(frozen=True)
class OrderIntent:
    """What the decision wants to send for one pair and side this hour (before any fill)."""

    pair: str
    side: str
    units: Decimal
    order_type: str = "limit"
    limit_price: Decimal | None = None
    seq: int = 0

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"OrderIntent.side: expected one of {SIDES}, got {self.side!r}")
        if self.order_type not in ORDER_TYPES:
            raise ValueError(f"OrderIntent.order_type: expected one of {ORDER_TYPES}, got {self.order_type!r}")
        units = as_decimal(self.units, f"OrderIntent({self.pair}).units")
        if units <= 0:
            raise ValueError(f"OrderIntent({self.pair}).units: expected > 0, got {units}")
        object.__setattr__(self, "units", units)
        if self.limit_price is not None:
            price = as_decimal(self.limit_price, f"OrderIntent({self.pair}).limit_price")
            if price <= 0:
                raise ValueError(f"OrderIntent({self.pair}).limit_price: expected > 0, got {price}")
            object.__setattr__(self, "limit_price", price)
        if self.order_type == "limit" and self.limit_price is None:
            raise ValueError(f"OrderIntent({self.pair}): a limit order needs a limit_price")
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or self.seq < 0:
            raise ValueError(f"OrderIntent({self.pair}).seq: expected an int >= 0, got {self.seq!r}")


@dataclass(frozen=True)
class Order:
    """An intent as persisted: its hour, deterministic id and current status."""

    client_order_id: str
    hour: int
    pair: str
    side: str
    seq: int
    order_type: str
    units: Decimal
    limit_price: Decimal | None
    status: str


@dataclass(frozen=True)
class Fill:
    """One simulated fill of an order (price, units and fee exact; fee paid in the quote currency)."""

    client_order_id: str
    price: Decimal
    units: Decimal
    fee: Decimal
    liquidity: str
    fill_seq: int = 0

    def __post_init__(self) -> None:
        for name in ("price", "units", "fee"):
            d = as_decimal(getattr(self, name), f"Fill({self.client_order_id}).{name}")
            if d < 0 or (name != "fee" and d == 0):
                raise ValueError(f"Fill({self.client_order_id}).{name}: out of range: {d}")
            object.__setattr__(self, name, d)
        if self.liquidity not in LIQUIDITY:
            raise ValueError(
                f"Fill({self.client_order_id}).liquidity: expected one of {LIQUIDITY}, got {self.liquidity!r}"
            )
        if isinstance(self.fill_seq, bool) or not isinstance(self.fill_seq, int) or self.fill_seq < 0:
            raise ValueError(f"Fill({self.client_order_id}).fill_seq: expected an int >= 0, got {self.fill_seq!r}")
