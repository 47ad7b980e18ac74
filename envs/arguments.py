"""Constructor arguments shared by `KrakenSpotEnv` and `KrakenSpotVectorEnv`.

Both take the same ``market``, ``config`` and keyword overrides, so code moves between
``gym.make`` and ``gym.make_vec`` unchanged:

- `build_config`: an `EnvConfig` from ``config`` (an `EnvConfig` or a Hydra-style mapping)
  with keyword overrides applied. An unknown *keyword* is a ``TypeError`` worded like
  Python's own (``got an unexpected keyword argument 'x'``): clients such as TorchRL
  probe optional keywords (``frameskip``) and retry only on that. An unknown key inside
  a ``config`` mapping stays a `ConfigError`.
- `resolve_market`: ``None`` (the built-in synthetic market), a `MarketData`, or a
  serialisable loader mapping such as ``{"loader": "kraken_csv", "path": DIR, "start":
  ISO, "end": ISO}`` that the env loads itself, so ``env.spec.to_json()`` works.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from envs.config import EnvConfig
from envs.data.market import MarketData
from envs.errors import ConfigError

LOADERS = ("synthetic", "kraken_csv", "csv", "parquet")
LOAD_HINT = (
    "load one with envs.data.loaders.load_kraken_dir(DIR) (Kraken OHLCVT dump), "
    "envs.data.loaders.load_csv_dir(DIR) (CSV/Parquet with a header) or MarketData.from_frame(df), "
    "or pass a loader mapping such as {'loader': 'kraken_csv', 'path': DIR, 'start': ISO, 'end': ISO} "
    f"(loaders: {list(LOADERS)})"
)


def config_fields() -> list[str]:
    return sorted(f.name for f in fields(EnvConfig))


def build_config(config: EnvConfig | Mapping[str, Any] | None, overrides: Mapping[str, Any], owner: str) -> EnvConfig:
    """``config`` with the keyword ``overrides`` applied; unknown keywords raise ``TypeError``."""
    cfg = EnvConfig.from_mapping(config)
    if not overrides:
        return cfg
    names = set(config_fields())
    unknown = [k for k in overrides if k not in names]
    if unknown:
        more = f" (and {unknown[1:]})" if len(unknown) > 1 else ""
        raise TypeError(
            f"{owner}.__init__() got an unexpected keyword argument {unknown[0]!r}{more}; expected "
            f"market, config, signals, signal_names, render_mode or an EnvConfig field: {sorted(names)}"
        )
    return EnvConfig.from_mapping({**asdict(cfg), **overrides})


def _loader(name: str) -> Callable[..., MarketData]:
    if name == "synthetic":
        from envs.data.synthetic import generate_synthetic_market  # type: ignore[attr-defined]

        return generate_synthetic_market  # type: ignore[no-any-return]
    if name == "kraken_csv":
        from envs.data.loaders import load_kraken_dir

        return load_kraken_dir
    if name == "csv":
        from envs.data.loaders import load_csv_dir

        return load_csv_dir
    if name == "parquet":
        from envs.data.parquet_cache import load_parquet

        return load_parquet
    raise ConfigError(f"market.loader: expected one of {list(LOADERS)}, got {name!r}")


def resolve_market(market: Any) -> MarketData:
    """The `MarketData` an env runs on; see the module docstring for what ``market`` may be."""
    if market is None:
        return _loader("synthetic")()
    if isinstance(market, MarketData):
        return market
    if isinstance(market, Mapping):
        args = {str(k): v for k, v in dict(market).items()}
        name = args.pop("loader", None)
        if name is None:
            raise ConfigError(
                f"market: a loader mapping needs a 'loader' key ({list(LOADERS)}), got keys {sorted(args)}"
            )
        load = _loader(str(name))
        try:  # check the arguments first, so that a TypeError inside the loader is not misreported
            inspect.signature(load).bind(**args)
        except TypeError as exc:
            raise ConfigError(f"market: bad arguments for loader {name!r}: {exc}") from exc
        return load(**args)
    kind = "a path" if isinstance(market, str | Path) else f"a {type(market).__name__}"
    shown = repr(market)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise TypeError(f"market: expected a MarketData, a loader mapping or None, got {kind} ({shown}); {LOAD_HINT}")


__all__ = ["LOADERS", "build_config", "config_fields", "resolve_market"]
