"""Order sizing and Kraken instrument rules (lot decimals, minimum volume, minimum cost).

Orders are sized from the weight difference at the decision price (close of bar t):
``delta = w_target · equity / close − units``. Quantities round **down** to the pair's
lot decimals; a full exit (target weight 0) sells every unit held. Orders below the
pair's ``ordermin`` (base units) or ``costmin`` (USD at the decision price) are not sent
and are reported with a reason. Sells never exceed the units held.

When the market has no `PairInfo` for an asset the config's defaults apply
(8 lot decimals, ordermin 0, costmin 0.5 USD), or `missing_pair="raise"` fails loudly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from envs.config import EnvConfig
from envs.data.market import MarketData
from envs.errors import ConfigError

log = logging.getLogger(__name__)

# Shortfall reason codes (int arrays in the hot loop; names in info["rejected"]): an order refused
# at sizing (lot_size, ordermin, costmin) or the unfilled part of one, by cause (see envs.execution.ledger).
OK, LOT_SIZE, ORDERMIN, COSTMIN, INSUFFICIENT_CASH, NO_BAR, PARTICIPATION_CAP, ZERO_VOLUME, LIMIT_EXPIRED = range(9)
REASONS = (
    "", "lot_size", "ordermin", "costmin", "insufficient_cash", "no_bar", "participation_cap", "zero_volume",
    "limit_expired",
)
REASON_SLOTS = 16  # a record's code is asset * REASON_SLOTS + reason
assert len(REASONS) <= REASON_SLOTS

# Relative tolerance of the lot floor: a quantity that is on the lot grid in exact arithmetic
# but a few ulps below it in float64 (k / 10**d * 10**d) stays on its lot.
LOT_TOLERANCE = 1e-12


@dataclass(frozen=True, eq=False)
class LotRules:
    """Per-asset instrument rules as (N,) arrays, in the market's asset order."""

    lot_decimals: np.ndarray  # int64
    scale: np.ndarray  # 10 ** lot_decimals, float64
    ordermin: np.ndarray  # base units
    costmin: np.ndarray  # USD


def lot_rules(market: MarketData, config: EnvConfig) -> LotRules:
    decimals, ordermin, costmin = [], [], []
    for asset in market.assets:
        info = market.pairs.get(asset)
        if info is None:
            if config.missing_pair == "raise":
                raise ConfigError(
                    f"market {market.source!r}: no PairInfo for asset {asset!r} (env.missing_pair=raise)"
                )
            log.debug("asset %s: no PairInfo, using default lot rules", asset)
            decimals.append(config.default_lot_decimals)
            ordermin.append(config.default_ordermin)
            costmin.append(config.default_costmin)
        else:
            decimals.append(int(info.lot_decimals))
            ordermin.append(float(info.ordermin))
            costmin.append(float(info.costmin))
    d = np.asarray(decimals, dtype=np.int64)
    return LotRules(
        lot_decimals=d,
        scale=10.0 ** d.astype(np.float64),
        ordermin=np.asarray(ordermin, dtype=np.float64),
        costmin=np.asarray(costmin, dtype=np.float64),
    )


def floor_to_lot(qty: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Round non-negative quantities down to the lot grid ``1 / scale``."""
    return np.floor(qty * scale * (1.0 + LOT_TOLERANCE)) / scale


def size_orders(
    target: np.ndarray,
    units: np.ndarray,
    price: np.ndarray,
    equity: np.ndarray,
    tradable: np.ndarray,
    rules: LotRules,
    min_order_fraction: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signed order quantities (B, N) (+ buy, − sell), int8 rejection codes (B, N) and the wanted
    quantities ``|Δunits|`` (B, N) before lot rounding (what a rejection leaves unfilled).

    ``price`` must be finite where ``tradable`` (1.0 elsewhere); non-tradable assets get
    no order. Weight changes worth less than ``min_order_fraction`` of equity are no
    order at all (not a rejection): they are float noise of "keep these weights".
    """
    eq = equity[:, None]
    delta = np.where(tradable, target * eq / price - units, 0.0)
    is_sell = delta < 0.0
    size = np.abs(delta)
    lots = floor_to_lot(size, rules.scale)
    qty = np.where(is_sell, np.where(target <= 0.0, units, np.minimum(lots, units)), lots)
    wanted = size * price > min_order_fraction * eq
    cost = qty * price
    reason = np.where(
        qty <= 0.0,
        LOT_SIZE,
        np.where(qty < rules.ordermin, ORDERMIN, np.where(cost < rules.costmin, COSTMIN, OK)),
    )
    reject = np.where(wanted, reason, OK).astype(np.int8)
    send = wanted & (reject == OK)
    signed = np.where(send, np.where(is_sell, -qty, qty), 0.0)
    return signed, reject, size
