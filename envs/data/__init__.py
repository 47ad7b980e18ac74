"""Market data: the `MarketData` value, loaders, validation, synthetic market, pair rules."""

from envs.data.market import HOUR, MarketData, PairInfo

__all__ = ["HOUR", "MarketData", "PairInfo"]
