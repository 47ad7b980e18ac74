"""The bid-ask spread the execution model charges: quoted where known, estimated only as a fallback.

Sources, in the order ``spread_source="auto"`` tries them:

1. ``column``: the market's own spread column (`MarketData.spread`: synthetic data, a
   Parquet store, a recorded feed), for every asset;
2. ``table``: the per-pair quoted spread of ``kraken_spreads.json`` (measured from a
   recorded Kraken order book or ticker, or a labelled estimate with its reasoning), never
   below one price tick of the pair (``tick_size / close``);
3. ``abdi_ranaldo``: the Abdi-Ranaldo (2017) close-high-low estimate, for assets without a
   table entry (a logged, labelled fallback). ``corwin_schultz`` stays selectable.

High-low estimators on hourly bars measure volatility more than the spread: on BTC 2023 the
Corwin-Schultz estimate is ~14 bp against a quoted Kraken BTC/USD spread below 0.1 bp (see
``scripts/spread_report.py``), which is why quoted spreads come first.
"""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from envs.data.indicators import abdi_ranaldo_spread, corwin_schultz_spread
from envs.data.market import MarketData
from envs.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SPREADS_FILE = Path(__file__).with_name("kraken_spreads.json")
SPREAD_SOURCES = ("auto", "column", "table", "abdi_ranaldo", "corwin_schultz")


@dataclass(frozen=True)
class QuotedSpread:
    """One pair's quoted relative full spread and where it comes from."""

    asset: str
    altname: str
    spread: float  # (ask - bid) / mid
    kind: str  # measured | estimate
    date: str
    sources: tuple[str, ...]
    note: str


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    try:
        with SPREADS_FILE.open(encoding="utf-8") as fh:
            doc: dict[str, Any] = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{SPREADS_FILE}: cannot read the spread table: {exc}") from exc
    return doc


def _record(rec: dict[str, Any]) -> QuotedSpread:
    try:
        q = QuotedSpread(str(rec["asset"]), str(rec["altname"]), float(rec["quoted_spread"]), str(rec["kind"]),
                         str(rec["date"]), tuple(rec["sources"]), str(rec["note"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{SPREADS_FILE}: bad record {rec.get('altname', rec)!r}: {exc}") from exc
    if q.kind not in ("measured", "estimate") or not 0.0 < q.spread < 0.5:
        raise DataError(f"{SPREADS_FILE}: {q.altname}: expected kind measured|estimate and 0 < spread < 0.5, "
                        f"got {q.kind!r}, {q.spread!r}")
    return q


@lru_cache(maxsize=1)
def quoted_spreads() -> dict[str, QuotedSpread]:
    """USD-pair quoted spreads keyed by canonical asset (``"BTC"`` -> XBT/USD). Cached."""
    out: dict[str, QuotedSpread] = {}
    for rec in _document()["pairs"]:
        q = _record(rec)
        if q.asset in out:
            raise DataError(f"{SPREADS_FILE}: duplicate USD pair for asset {q.asset!r}")
        out[q.asset] = q
    return out


def reference_spreads() -> list[QuotedSpread]:
    """Measured spreads of non-USD pairs kept as evidence (e.g. XBT/USDT's recorded ticker)."""
    return [_record(rec) for rec in _document().get("reference_pairs", [])]


def table_spread(market: MarketData) -> np.ndarray:
    """(T, N) quoted spread of each asset (NaN without a table entry), at least one tick / close."""
    table = quoted_spreads()
    out = np.full(market.close.shape, np.nan)
    for i, asset in enumerate(market.assets):
        if asset not in table:
            continue
        info = market.pairs.get(asset)
        tick = float(info.tick_size) if info is not None else 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            one_tick = tick / market.close[:, i]
        out[:, i] = np.fmax(table[asset].spread, one_tick)  # fmax: a NaN close keeps the quote
    return out


@dataclass(frozen=True, eq=False)
class SpreadModel:
    """(T, N) relative full spread (NaN where unknown, e.g. estimator warm-up) and its source per asset."""

    spread: np.ndarray
    sources: tuple[str, ...]


def spread_model(market: MarketData, source: str = "auto", window: int = 24) -> SpreadModel:
    """The spread each asset is charged under ``source`` (one of `SPREAD_SOURCES`); see the module docstring."""
    if source not in SPREAD_SOURCES:
        raise ConfigError(f"env.spread_source: expected one of {list(SPREAD_SOURCES)}, got {source!r}")
    n = market.n_assets
    if source == "column" or (source == "auto" and market.spread is not None):
        if market.spread is None:
            raise ConfigError(f"env.spread_source=column: market {market.source!r} has no spread column")
        return SpreadModel(np.asarray(market.spread, dtype=np.float64), ("column",) * n)
    if source == "corwin_schultz":
        return SpreadModel(corwin_schultz_spread(market, window), ("corwin_schultz",) * n)
    if source == "abdi_ranaldo":
        return SpreadModel(abdi_ranaldo_spread(market, window), ("abdi_ranaldo",) * n)
    table = quoted_spreads()
    missing = [a for a in market.assets if a not in table]
    if source == "table" and missing:
        raise ConfigError(f"env.spread_source=table: no quoted spread for assets {missing} in {SPREADS_FILE.name} "
                          f"(use spread_source=auto to estimate them)")
    spread = table_spread(market)
    sources = tuple("table" if a in table else "abdi_ranaldo" for a in market.assets)
    if missing:
        log.warning("spread: no quoted spread for %s in %s; using the Abdi-Ranaldo estimate (fallback) for them",
                    missing, SPREADS_FILE.name)
        est = abdi_ranaldo_spread(market, window)
        cols = [i for i, a in enumerate(market.assets) if a not in table]
        spread[:, cols] = est[:, cols]
    return SpreadModel(spread, sources)


# ------------------------------------------------------------------ measuring recorded quotes
def book_spread_stats(path: str | Path) -> dict[str, float]:
    """Relative spread statistics of a JSON-lines book recording (``bids``/``asks`` best first)."""
    rel = []
    with gzip.open(path, "rt") if str(path).endswith(".gz") else open(path) as fh:
        for line in fh:
            snap = json.loads(line)
            bid, ask = float(snap["bids"][0][0]), float(snap["asks"][0][0])
            rel.append((ask - bid) / (0.5 * (ask + bid)))
    r = np.asarray(rel)
    return {"snapshots": float(r.size), "mean": float(r.mean()), "median": float(np.median(r)),
            "p90": float(np.quantile(r, 0.9))}


def ticker_spread(payload: dict[str, Any]) -> dict[str, float]:
    """Relative spread per pair of a Kraken REST ``/0/public/Ticker`` response (``a``/``b`` = ask/bid)."""
    out = {}
    for pair, tick in payload["result"].items():
        ask, bid = float(tick["a"][0]), float(tick["b"][0])
        out[pair] = (ask - bid) / (0.5 * (ask + bid))
    return out
