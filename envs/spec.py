"""`KrakenSpotSpec`: gymnasium's `EnvSpec` whose ``to_json`` explains a market it cannot write.

``gym.make(id, market=some_market)`` stores the `MarketData` object in ``env.spec.kwargs``:
``gym.make(env.spec)`` rebuilds the env from it, but JSON cannot hold the arrays. Gymnasium
would fail deep in ``json.dumps``; this subclass says why and what to pass instead (a
loader mapping, `envs.arguments.resolve_market`). The env installs it when ``gym.make``
sets ``env.unwrapped.spec``; wrappers' specs are deep copies of it and keep the class.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gymnasium.envs.registration import EnvSpec

from envs.data.market import MarketData
from envs.errors import ConfigError


@dataclasses.dataclass
class KrakenSpotSpec(EnvSpec):
    """An `EnvSpec` that refuses, with a clear message, to serialise an in-memory market."""

    @classmethod
    def of(cls, spec: Any) -> Any:
        """``spec`` as a `KrakenSpotSpec` (None and other objects are returned as they are)."""
        if spec is None or isinstance(spec, cls) or not isinstance(spec, EnvSpec):
            return spec
        values = {f.name: getattr(spec, f.name) for f in dataclasses.fields(EnvSpec) if f.init}
        return cls(**values)

    def to_json(self) -> str:
        market = (self.kwargs or {}).get("market")
        if isinstance(market, MarketData):
            raise ConfigError(
                f"{self.id}: env.spec.to_json(): the market {market.source or '(unnamed)'!r} is an in-memory "
                "MarketData, which a JSON spec cannot hold. Make the env with a loader mapping instead, e.g. "
                "market={'loader': 'kraken_csv', 'path': DIR, 'start': ISO, 'end': ISO} (loaders: synthetic, "
                "kraken_csv, csv, parquet); gym.make(env.spec) still rebuilds an env made from a MarketData."
            )
        return super().to_json()


__all__ = ["KrakenSpotSpec"]
