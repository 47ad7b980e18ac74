"""Kraken spot market data, execution model and the `KrakenSpot-v0` Gymnasium env.

Importing this package registers ``KrakenSpot-v0`` (and ``krakenrl/KrakenSpot-v0``, see
`krakenrl`) so ``gymnasium.make("KrakenSpot-v0")`` works with no arguments (built-in
synthetic market).
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

import krakenrl  # noqa: F401 - registers krakenrl/KrakenSpot-v0 (a name no user folder shadows)
from envs.data.market import MarketData, PairInfo
from envs.errors import ConfigError, DataError, KrakenRLError, OrderRejected
from envs.snapshot import PortfolioSnapshot

ENV_ID = "KrakenSpot-v0"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="envs.kraken_spot:KrakenSpotEnv",
        vector_entry_point="envs.vector:KrakenSpotVectorEnv",
    )

__all__ = [
    "ENV_ID",
    "ConfigError",
    "DataError",
    "KrakenRLError",
    "MarketData",
    "OrderRejected",
    "PairInfo",
    "PortfolioSnapshot",
]
