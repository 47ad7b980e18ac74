"""The loop's view of the market: history plus every bar streamed so far, on one hourly grid.

`append_bar` applies the "mark" gap policy exactly as `envs.data.align.align_bars` does for
an asset inside its life (a missing bar carries the previous close as O=H=L=C, zero volume
and trades, ``filled=True``, not tradable), so the known market after streaming the bars of a
recorded period equals the recorded market over that period, bit for bit (tested). An asset
with no close yet stays NaN and untradable. `batch_payload`/`batch_from_payload` are the
FETCHED stage's canonical form (NaN as null: canonical JSON has no NaN).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from envs.data.market import HOUR, MarketData
from paper.feeds.base import BAR_FIELDS, BarBatch


def append_bar(market: MarketData, batch: BarBatch) -> MarketData:
    """``market`` with ``batch`` as its next hourly bar (ValueError if it is not the next hour)."""
    expected = int(market.timestamps[-1]) + HOUR
    if batch.hour != expected:
        raise ValueError(f"append_bar: expected the bar at {expected}, got {batch.hour}")
    if batch.n_assets != market.n_assets:
        raise ValueError(f"append_bar: batch has {batch.n_assets} assets, market has {market.n_assets}")
    prev = market.close[-1]
    have = np.isfinite(batch.close)
    carry = ~have & np.isfinite(prev)
    rows: dict[str, np.ndarray] = {}
    for f in ("open", "high", "low", "close"):
        rows[f] = np.where(have, getattr(batch, f), np.where(carry, prev, np.nan))
    rows["volume"] = np.where(have, batch.volume, np.where(carry, 0.0, np.nan))
    trades = None
    if market.trades is not None:
        src = batch.trades if batch.trades is not None else np.full(batch.n_assets, np.nan)
        trades = np.vstack([market.trades, np.where(have, src, np.where(carry, 0.0, np.nan))[None]])
    spread = None
    if market.spread is not None:
        src = batch.spread if batch.spread is not None else np.full(batch.n_assets, np.nan)
        spread = np.vstack([market.spread, src[None]])
    integrity = None
    if market.integrity_ok is not None:  # a bar the feed did not check counts as passing (no evidence against it)
        row = np.ones(batch.n_assets, dtype=bool) if batch.integrity_ok is None else batch.integrity_ok
        integrity = np.vstack([market.integrity_ok, row[None]])

    def stack(a: np.ndarray, row: np.ndarray) -> np.ndarray:
        return np.vstack([a, row[None].astype(a.dtype)])

    return replace(
        market,
        timestamps=np.append(market.timestamps, np.int64(batch.hour)),
        open=stack(market.open, rows["open"]), high=stack(market.high, rows["high"]),
        low=stack(market.low, rows["low"]), close=stack(market.close, rows["close"]),
        volume=stack(market.volume, rows["volume"]),
        tradable=stack(market.tradable, have), filled=stack(market.filled, carry),
        trades=trades, spread=spread, integrity_ok=integrity, regimes=None,
    )


def validate_batch(batch: BarBatch, assets: tuple[str, ...]) -> BarBatch:
    """``batch`` with every asset whose bar is not a valid OHLCV bar set to NaN and flagged ``invalid_bar:A``.

    Valid: open, high, low, close finite and > 0, low <= min(open, close), max(open, close) <=
    high, volume finite and >= 0 (the checks `envs.data.validation` applies to files). Why
    NaN and not an error: the loop must go on for the other assets, and a NaN bar is what the
    backtest's kill switch already reads as a data-integrity failure (entries in the asset
    blocked; a held asset engages the switch), so paper and backtest share one rule.
    """
    if batch.n_assets != len(assets):
        raise ValueError(f"validate_batch: batch has {batch.n_assets} assets, the universe {len(assets)}")
    o, h, lo, c, v = batch.open, batch.high, batch.low, batch.close, batch.volume
    with np.errstate(invalid="ignore"):
        ohlc = np.stack([o, h, lo, c])
        prices = np.isfinite(ohlc).all(axis=0) & (ohlc > 0).all(axis=0)
        ok = prices & (lo <= np.minimum(o, c)) & (np.maximum(o, c) <= h) & np.isfinite(v) & (v >= 0)
    present = np.isfinite(c) | np.isfinite(o) | np.isfinite(h) | np.isfinite(lo)
    bad = present & ~ok
    if not bad.any():
        return batch
    flags = tuple(f"invalid_bar:{a}" for a, b in zip(assets, bad.tolist(), strict=True) if b)

    def blank(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.where(bad, np.nan, a)

    return BarBatch(batch.hour, blank(o), blank(h), blank(lo), blank(c), blank(v),  # type: ignore[arg-type]
                    blank(batch.trades), blank(batch.spread), batch.raw_hash, (*batch.flags, *flags),
                    batch.integrity_ok)


def _floats(a: np.ndarray | None) -> list[float | None] | None:
    return None if a is None else [float(x) if np.isfinite(x) else None for x in np.asarray(a).tolist()]


def batch_payload(batch: BarBatch, assets: tuple[str, ...]) -> dict[str, Any]:
    """The canonical (JSON) form of a bar batch, what FETCHED persists."""
    out: dict[str, Any] = {"hour": batch.hour, "assets": list(assets), "raw_hash": batch.raw_hash,
                           "flags": list(batch.flags)}
    for f in (*BAR_FIELDS, "trades", "spread"):
        out[f] = _floats(getattr(batch, f))
    if batch.integrity_ok is not None:  # only when the feed has a mask: older records keep their hashes
        out["integrity_ok"] = [bool(x) for x in batch.integrity_ok.tolist()]
    return out


def batch_from_payload(payload: dict[str, Any]) -> BarBatch:
    """The `BarBatch` a FETCHED payload holds (exactly: floats round-trip through canonical JSON)."""

    def arr(v: list[float | None] | None) -> np.ndarray | None:
        return None if v is None else np.array([np.nan if x is None else x for x in v], dtype=np.float64)

    f = {k: arr(payload[k]) for k in (*BAR_FIELDS, "trades", "spread")}
    ok = payload.get("integrity_ok")
    return BarBatch(int(payload["hour"]), f["open"], f["high"], f["low"], f["close"], f["volume"],  # type: ignore[arg-type]
                    f["trades"], f["spread"], str(payload["raw_hash"]), tuple(payload["flags"]),
                    None if ok is None else np.array(ok, dtype=bool))


__all__ = ["append_bar", "batch_from_payload", "batch_payload", "validate_batch"]
