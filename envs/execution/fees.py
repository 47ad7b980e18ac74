"""Fee models: one small class per schedule, each a tier table of (30-day volume, maker, taker).

Fees are charged per fill as ``rate × notional`` in the quote currency (USD), never folded
into the price. Every model is a volume-tier table (`FeeModel.tier_table`): the kernel,
the numpy twin and the Decimal reference all look the rate up in that table, so a new
schedule is one new class registered here (or `register_fee_model` from outside), with
no kernel edit. A flat schedule is a one-row table (its rates at every volume).

Registered names (``EnvConfig.fee_model``):

- ``flat``: ``EnvConfig.maker_fee`` / ``taker_fee``, the specification's 0.40% / 0.40%
  by default (0.80% a round trip);
- ``kraken_tiers``: Kraken's spot schedule by trailing 30-day USD volume (`KrakenTiers`);
- ``kraken_legacy_base``: 0.16% maker / 0.26% taker at every volume, the base tier of
  Kraken Pro's earlier schedule (`KrakenLegacyBase`).

Anchor: nautilus_trader's ``FeeModel.get_commission`` (one small class per rule).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from envs.errors import ConfigError

# Kraken spot fee schedule (USD pairs), as (30-day volume from, maker, taker), rates as fractions.
# Source: the recorded AssetPairs response of 2025-11-10
# (../shared/data/kraken/api_fixtures/nautilus_trader/public_rest_recorded/http_asset_pairs.json,
# fields ``fees`` and ``fees_maker``, percent), the same as kraken.com/features/fee-schedule then.
KRAKEN_FEE_SCHEDULE_DATE = "2025-11-10"
KRAKEN_SPOT_FEE_SCHEDULE: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0025, 0.0040),
    (10_000.0, 0.0020, 0.0035),
    (50_000.0, 0.0014, 0.0024),
    (100_000.0, 0.0012, 0.0022),
    (250_000.0, 0.0010, 0.0020),
    (500_000.0, 0.0008, 0.0018),
    (1_000_000.0, 0.0006, 0.0016),
    (2_500_000.0, 0.0004, 0.0014),
    (5_000_000.0, 0.0002, 0.0012),
    (10_000_000.0, 0.0000, 0.0010),
)


def kraken_fee_schedule() -> list[tuple[float, float, float]]:
    """The schedule from `envs.data.pairs.fee_schedule()` when available, else the table above."""
    try:
        from envs.data.pairs import fee_schedule  # type: ignore[attr-defined]
    except ImportError:
        return list(KRAKEN_SPOT_FEE_SCHEDULE)
    # percent / 100 leaves float noise (0.0034999999999999996): round to the nearest 1e-12
    return [(float(v), round(float(m), 12), round(float(t), 12)) for v, m, t in fee_schedule()]


@runtime_checkable
class FeeModel(Protocol):
    """What the execution step needs from a fee schedule: its tier table, the one source of the rates.

    The kernel, the numpy twin (`rates_from_table`) and the Decimal reference all read the
    rates from this table, so no model can give two twins different rates.
    """

    def tier_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(K,) volume thresholds (from 0, increasing), maker rates and taker rates of each tier."""
        ...


class TieredFees:
    """Rates from a volume-tier table: the last tier whose threshold is <= the 30-day volume."""

    def __init__(self, schedule: Sequence[tuple[float, float, float]]) -> None:
        table = np.asarray(schedule, dtype=np.float64)
        if table.ndim != 2 or table.shape[1] != 3 or table.shape[0] == 0:
            raise ConfigError(f"fee schedule: expected rows (volume, maker, taker), got shape {table.shape}")
        if table[0, 0] != 0.0 or np.any(np.diff(table[:, 0]) <= 0):
            raise ConfigError("fee schedule: expected volumes starting at 0 and strictly increasing")
        if not np.all((table[:, 1:] >= 0) & (table[:, 1:] <= 0.1)):
            raise ConfigError("fee schedule: expected rates in [0, 0.1]")
        self.thresholds = table[:, 0].copy()
        self.maker_rates = table[:, 1].copy()
        self.taker_rates = table[:, 2].copy()

    def tier_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.thresholds, self.maker_rates, self.taker_rates

    def rates(self, volume_30d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(maker, taker) rates at ``volume_30d`` (`rates_from_table` on this model's table)."""
        return rates_from_table(fee_table(self), volume_30d)


def rates_from_table(table: np.ndarray, volume_30d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(maker, taker) rates of a (3, K) `fee_table` at each trailing 30-day USD volume: the last
    tier whose threshold is <= the volume (the numpy twin of the kernel's ``fee_rates``)."""
    # float residue of the rolling window may leave the volume a hair below 0: tier 0, not -1
    tier = np.maximum(np.searchsorted(table[0], volume_30d, side="right") - 1, 0)
    return table[1][tier], table[2][tier]


class FlatFees(TieredFees):
    """Constant maker and taker rates: a one-row tier table (the `spec` preset is 0.004 / 0.004)."""

    def __init__(self, maker: float, taker: float) -> None:
        self.maker = float(maker)
        self.taker = float(taker)
        super().__init__([(0.0, self.maker, self.taker)])


class KrakenTiers(TieredFees):
    """Kraken's spot maker/taker schedule by 30-day USD volume (dated `KRAKEN_FEE_SCHEDULE_DATE`)."""

    def __init__(self) -> None:
        super().__init__(kraken_fee_schedule())


class KrakenLegacyBase(FlatFees):
    """0.16% maker / 0.26% taker at every volume: the base tier (0-50,000 USD of 30-day volume) of the
    schedule Kraken Pro charged before the 0.25% / 0.40% base tier of `KrakenTiers`."""

    def __init__(self) -> None:
        super().__init__(0.0016, 0.0026)


FeeFactory = Callable[[float, float], FeeModel]  # (EnvConfig.maker_fee, EnvConfig.taker_fee) -> model
_FEE_MODELS: dict[str, FeeFactory] = {}


def register_fee_model(name: str, factory: FeeFactory) -> None:
    """Make ``fee_model=name`` build ``factory(maker_fee, taker_fee)``; a name is registered once."""
    if name in _FEE_MODELS and _FEE_MODELS[name] is not factory:
        raise ConfigError(f"fee model {name!r} is already registered")
    _FEE_MODELS[name] = factory


def fee_model_names() -> tuple[str, ...]:
    """The names ``EnvConfig.fee_model`` accepts, in registration order."""
    return tuple(_FEE_MODELS)


register_fee_model("flat", FlatFees)
register_fee_model("kraken_tiers", lambda maker, taker: KrakenTiers())
register_fee_model("kraken_legacy_base", lambda maker, taker: KrakenLegacyBase())


def make_fee_model(model: str, maker: float, taker: float) -> FeeModel:
    """The registered fee model ``model``; ``maker``/``taker`` are read by ``flat`` only."""
    try:
        factory = _FEE_MODELS[model]
    except KeyError:
        raise ConfigError(f"env.fee_model: expected one of {list(_FEE_MODELS)}, got {model!r}") from None
    return factory(maker, taker)


def fee_table(model: FeeModel) -> np.ndarray:
    """(3, K) float64 stack of a model's tier table, the layout the kernel reads."""
    thresholds, maker, taker = model.tier_table()
    table = np.stack([np.asarray(x, dtype=np.float64) for x in (thresholds, maker, taker)])
    if table.ndim != 2 or table.shape[1] == 0 or table[0, 0] != 0.0 or np.any(np.diff(table[0]) <= 0):
        raise ConfigError(f"fee model {type(model).__name__}: tier_table() must give K >= 1 thresholds "
                          f"from 0, strictly increasing, and K maker and taker rates")
    return table
