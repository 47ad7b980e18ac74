"""Shared fixtures: the real-data folder and a tiny hand-built market.

`shared_data` is ``<repo>/../shared/data`` (CI clones the repo with ``shared/`` beside it).
`tiny_market` is a session-scoped factory (safe inside hypothesis tests) around
`make_tiny_market`: pass explicit price arrays for hand-computed scenarios, or only a
seed for a random-walk market.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.data.market import HOUR, MarketData, PairInfo

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
T0 = 1_700_000_000 // HOUR * HOUR
ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str) -> Any:
    """``scripts/<name>.py`` imported as a module (its functions, without running ``main``)."""
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod  # 2023-11-14 22:00 UTC


def pair_info(asset: str, lot_decimals: int = 8, ordermin: float = 0.0001, costmin: float = 0.5) -> PairInfo:
    """A Kraken-like USD pair rule for ``asset``."""
    return PairInfo(
        asset=asset,
        altname=f"{asset}USD",
        rest_name=f"X{asset}ZUSD",
        wsname=f"{asset}/USD",
        base=f"X{asset}",
        quote="ZUSD",
        price_decimals=2,
        lot_decimals=lot_decimals,
        ordermin=ordermin,
        costmin=costmin,
        tick_size=0.01,
    )


def make_tiny_market(
    close: np.ndarray | None = None,
    *,
    n_bars: int = 60,
    assets: Sequence[str] = ("BTC", "ETH"),
    seed: int = 0,
    open: np.ndarray | None = None,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    volume: np.ndarray | None = None,
    tradable: np.ndarray | None = None,
    spread: np.ndarray | None = None,
    pairs: dict[str, PairInfo] | None = None,
    vol: float = 0.01,
) -> MarketData:
    """A small MarketData: given arrays are used as they are, missing ones are generated.

    Without ``close`` the prices are a seeded log random walk (hourly vol ``vol``) starting
    at 100 × (i + 1); open = previous close; high/low wrap open and close by a random
    margin; volume is large (1e6 units) so the participation cap rarely binds.
    ``pairs=None`` gives every asset `pair_info(asset)`; pass ``{}`` for none.
    """
    rng = np.random.default_rng(seed)
    if close is None:
        n = len(assets)
        steps = rng.normal(0.0, vol, size=(n_bars, n))
        close = 100.0 * (np.arange(n) + 1.0) * np.exp(np.cumsum(steps, axis=0))
    close = np.asarray(close, dtype=np.float64)
    if close.ndim == 1:
        close = close[:, None]
    T, N = close.shape
    assets = tuple(assets)[:N] if len(assets) >= N else tuple(f"A{i}" for i in range(N))
    if open is None:
        open = np.vstack([close[:1], close[:-1]])
    if high is None:
        high = np.maximum(open, close) * (1.0 + rng.uniform(0.0, 2 * vol, size=(T, N)))
    if low is None:
        low = np.minimum(open, close) * (1.0 - rng.uniform(0.0, 2 * vol, size=(T, N)))
    if volume is None:
        volume = np.full((T, N), 1e6)
    if tradable is None:
        tradable = np.isfinite(close)
    return MarketData(
        assets=assets,
        timestamps=T0 + HOUR * np.arange(T, dtype=np.int64),
        open=np.asarray(open, dtype=np.float64),
        high=np.asarray(high, dtype=np.float64),
        low=np.asarray(low, dtype=np.float64),
        close=close,
        volume=np.asarray(volume, dtype=np.float64),
        tradable=np.asarray(tradable, dtype=bool),
        filled=np.zeros((T, N), dtype=bool),
        spread=None if spread is None else np.asarray(spread, dtype=np.float64),
        pairs={a: pair_info(a) for a in assets} if pairs is None else pairs,
        source="tiny",
    )


def env_scenario(max_assets: int, **extra: Any) -> Any:
    """Hypothesis strategy of one random env case for `random_case` (``extra`` fields go before ``holes``)."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries(
        {
            "seed": st.integers(0, 2**31 - 1),
            "n_assets": st.integers(1, max_assets),
            "order_type": st.sampled_from(["limit", "market"]),
            "fee_model": st.sampled_from(["flat", "kraken_tiers"]),
            "participation_cap": st.sampled_from([None, 0.001, 0.1]),
            "limit_ttl_bars": st.integers(1, 3),
            "limit_fallback": st.sampled_from(["market", "cancel"]),
            "limit_offset": st.sampled_from([0.0, 10.0]),
            **extra,
            "holes": st.booleans(),
        }
    )


def random_case(s: dict[str, Any], n_bars: int) -> tuple[MarketData, dict[str, Any], np.random.Generator]:
    """A random market and EnvConfig fields from one hypothesis scenario draw.

    Shared by the env's property and kernel-equivalence tests; the returned generator
    continues the same stream, so callers draw their action sequences from it.
    """
    rng = np.random.default_rng(s["seed"])
    n = s["n_assets"]
    assets = tuple(f"A{i}" for i in range(n))
    pairs = {
        a: pair_info(a, lot_decimals=int(rng.integers(0, 9)), ordermin=float(rng.choice([0.0, 0.01, 1.0])),
                     costmin=float(rng.choice([0.0, 0.5, 50.0])))
        for a in assets
    }
    vol = float(rng.uniform(0.002, 0.08))
    close = 10.0 ** rng.uniform(-2, 5, size=n) * np.exp(np.cumsum(rng.normal(0, vol, (n_bars, n)), axis=0))
    volume = 10.0 ** rng.uniform(0, 6, size=(n_bars, n))
    tradable = rng.random((n_bars, n)) > 0.1 if s["holes"] else np.ones((n_bars, n), dtype=bool)
    market = make_tiny_market(close, assets=assets, seed=s["seed"], volume=volume, tradable=tradable,
                              pairs=pairs, vol=vol)
    fields = {
        "window": 4, "episode_hours": n_bars, "initial_cash": float(10.0 ** rng.uniform(2, 6)),
        "order_type": s["order_type"], "fee_model": s["fee_model"], "participation_cap": s["participation_cap"],
        "limit_ttl_bars": s["limit_ttl_bars"], "limit_fallback": s["limit_fallback"],
        "limit_offset": s["limit_offset"], "record_history": False,
    }
    return market, fields, rng


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data``: the real market data used by integration tests."""
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_market() -> Callable[..., MarketData]:
    """Factory: ``tiny_market(close=None, **kwargs) -> MarketData`` (see `make_tiny_market`)."""

    def factory(*args: Any, **kwargs: Any) -> MarketData:
        return make_tiny_market(*args, **kwargs)

    return factory


def gate_off(limits: Any, **changes: Any) -> Any:
    """``limits`` with ``changes`` applied and the cost gate's band at 0 — TESTS ONLY.

    A profile cannot switch the gate off (``no_trade_band`` has a hard minimum); property
    tests of the caps alone (e.g. "never above the proposal") need it off, so this sets the
    field past validation on a copy.
    """
    from dataclasses import replace

    out = replace(limits, **changes)
    object.__setattr__(out, "no_trade_band", 0.0)
    return out


@pytest.fixture(scope="session")
def local_ray() -> Any:
    """One local Ray for the session (2 CPUs, no dashboard), shut down at the end; the
    executor's Ray backend uses it rather than starting its own (~5-10 s per start here)."""
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token-auth warning on a local test cluster
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()
