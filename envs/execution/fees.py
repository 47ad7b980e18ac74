"""Fee models: one small class per rule, each mapping 30-day volume to (maker, taker) rates.

Fees are charged per fill as ``rate × notional`` in the quote currency (USD), never folded
into the price. `FlatFees` is the specification's preset (0.40% maker and taker, 0.80% a
round trip); `TieredFees` is Kraken's spot schedule by trailing 30-day USD volume.
"""

from __future__ import annotations

from collections.abc import Sequence

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


class FlatFees:
    """Constant maker and taker rates (the `spec` preset is 0.004 / 0.004)."""

    tiered = False

    def __init__(self, maker: float, taker: float) -> None:
        self.maker = float(maker)
        self.taker = float(taker)

    def rates(self, volume_30d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = volume_30d.shape[0]
        return np.full(n, self.maker), np.full(n, self.taker)


class TieredFees:
    """Rates from a volume-tier table: the last tier whose threshold is <= the 30-day volume."""

    tiered = True

    def __init__(self, schedule: Sequence[tuple[float, float, float]]) -> None:
        table = np.asarray(schedule, dtype=np.float64)
        if table.ndim != 2 or table.shape[1] != 3 or table.shape[0] == 0:
            raise ConfigError(f"fee schedule: expected rows (volume, maker, taker), got shape {table.shape}")
        if table[0, 0] != 0.0 or np.any(np.diff(table[:, 0]) <= 0):
            raise ConfigError("fee schedule: expected volumes starting at 0 and strictly increasing")
        if np.any(table[:, 1:] < 0) or np.any(table[:, 1:] > 0.1):
            raise ConfigError("fee schedule: expected rates in [0, 0.1]")
        self.thresholds = table[:, 0].copy()
        self.maker_rates = table[:, 1].copy()
        self.taker_rates = table[:, 2].copy()

    def rates(self, volume_30d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # float residue of the rolling window may leave the volume a hair below 0: tier 0, not -1
        tier = np.maximum(np.searchsorted(self.thresholds, volume_30d, side="right") - 1, 0)
        return self.maker_rates[tier], self.taker_rates[tier]


def make_fee_model(model: str, maker: float, taker: float) -> FlatFees | TieredFees:
    if model == "flat":
        return FlatFees(maker, taker)
    if model == "kraken_tiers":
        return TieredFees(kraken_fee_schedule())
    raise ConfigError(f"env.fee_model: expected 'flat' or 'kraken_tiers', got {model!r}")
