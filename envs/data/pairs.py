"""Kraken USD pair rules and exchange-name normalisation, read from ``kraken_pairs.json``.

One place for instrument rules (price/lot decimals, minimum volume and cost) so the
execution model, the paper trader and the synthetic market agree. The JSON records,
per pair, which fields come from a recorded Kraken payload and which are placeholders
(``unverified_fields``); the fee schedule is the recorded AssetPairs volume-tier table.

Kraken names some assets by legacy codes: ``XBT``/``XXBT`` is BTC, ``XDG``/``XXDG`` is
DOGE, ``Z``-prefixed codes are fiat (``ZUSD``). :func:`canonical_asset` maps any of
these (and file stems such as ``XBTUSD_60`` or ``BTCUSDT_1h``) to the package's ticker.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from envs.data.market import PairInfo
from envs.errors import DataError

PAIRS_FILE = Path(__file__).with_name("kraken_pairs.json")

# Kraken legacy asset codes -> canonical tickers (explicit: a generic "strip the X"
# rule would break real tickers such as XTZ, XLM or ZEC).
_LEGACY_CODES = {
    "XBT": "BTC", "XXBT": "BTC", "XDG": "DOGE", "XXDG": "DOGE", "XETH": "ETH", "XXRP": "XRP",
    "XLTC": "LTC", "XXLM": "XLM", "XETC": "ETC", "XXMR": "XMR", "XZEC": "ZEC", "XREP": "REP",
    "XMLN": "MLN", "XXTZ": "XTZ", "ZUSD": "USD", "ZEUR": "EUR", "ZGBP": "GBP", "ZCAD": "CAD",
    "ZJPY": "JPY", "ZAUD": "AUD", "ZCHF": "CHF",
}
# Tickers that must never be cut by quote stripping (they end in "USD" themselves).
_WHOLE_TICKERS = frozenset({"USD", "USDT", "USDC", "TUSD", "PYUSD", "FDUSD", "BUSD", "GUSD", "LUSD", "SUSD"})
_QUOTE_SUFFIXES = ("ZUSD", "USDT", "USDC", "USD")
_INTERVAL_SUFFIX = re.compile(r"[_-](\d+[smhdw]?|[smhdw])$", re.IGNORECASE)
_BALANCE_SUFFIX = re.compile(r"\.(F|M|S|B|P)$", re.IGNORECASE)


def canonical_asset(name: str) -> str:
    """The package ticker for an exchange asset code, pair name or data-file stem.

    Examples: ``XBT``/``XXBT``/``XBTUSD``/``XXBTZUSD``/``XBT/USD``/``XBTUSD_60`` -> ``BTC``;
    ``XDG``/``XXDG`` -> ``DOGE``; ``ZUSD`` -> ``USD``; ``ETH.F`` -> ``ETH``;
    ``BTCUSDT_1h``/``BTC_USDT-1h`` -> ``BTC``; ``USDTZUSD`` -> ``USDT``.
    """
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"asset name: expected a non-empty string, got {name!r}")
    s = name.strip().upper()
    s = _INTERVAL_SUFFIX.sub("", s)
    s = _BALANCE_SUFFIX.sub("", s)
    for sep in ("/", "-", "_"):  # XBT/USD, BTC-USD, BTC_USDT (freqtrade file stems)
        if sep in s:
            s = s.split(sep, 1)[0]
    if s in _LEGACY_CODES:
        return _LEGACY_CODES[s]
    if s not in _WHOLE_TICKERS:
        for quote in _QUOTE_SUFFIXES:
            if s.endswith(quote) and len(s) > len(quote):
                s = s[: -len(quote)]
                break
    return _LEGACY_CODES.get(s, s)


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    try:
        with PAIRS_FILE.open(encoding="utf-8") as fh:
            doc: dict[str, Any] = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{PAIRS_FILE}: cannot read pair metadata: {exc}") from exc
    for key in ("source", "source_date", "pairs", "fee_schedule"):
        if key not in doc:
            raise DataError(f"{PAIRS_FILE}: expected top-level field {key!r}, missing")
    return doc


def _to_info(rec: dict[str, Any]) -> PairInfo:
    try:
        return PairInfo(
            asset=str(rec["asset"]),
            altname=str(rec["altname"]),
            rest_name=str(rec["rest_name"]),
            wsname=str(rec["wsname"]),
            base=str(rec["base"]),
            quote=str(rec["quote"]),
            price_decimals=int(rec["pair_decimals"]),
            lot_decimals=int(rec["lot_decimals"]),
            ordermin=float(rec["ordermin"]),
            costmin=float(rec["costmin"]),
            tick_size=float(rec["tick_size"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{PAIRS_FILE}: bad pair record {rec.get('altname', rec)!r}: {exc}") from exc


@lru_cache(maxsize=1)
def load_pairs() -> dict[str, PairInfo]:
    """USD pair rules keyed by canonical asset (``"BTC"`` -> XBT/USD rules). Cached."""
    pairs = {}
    for rec in _document()["pairs"]:
        info = _to_info(rec)
        if info.asset in pairs:
            raise DataError(f"{PAIRS_FILE}: duplicate USD pair for asset {info.asset!r}")
        pairs[info.asset] = info
    return pairs


@lru_cache(maxsize=1)
def _by_exchange_name() -> dict[str, PairInfo]:
    """Every exact exchange name (altname, REST name, wsname) of every pair, upper-case."""
    out: dict[str, PairInfo] = {}
    records = [*_document()["pairs"], *_document().get("reference_pairs", [])]
    for rec in records:
        info = _to_info(rec)
        for key in (info.altname, info.rest_name, info.wsname):
            out[key.upper()] = info
    return out


def pair_info(name: str) -> PairInfo:
    """Rules of one pair, by asset (``BTC``, ``XBT``) or Kraken name (``XBTUSD``, ``XXBTZUSD``,
    ``XBT/USD``), case-insensitive. Exact exchange names win (``XBTUSDT`` is the USDT pair);
    anything else resolves through :func:`canonical_asset` to the asset's USD pair.
    """
    key = name.strip().upper() if isinstance(name, str) else ""
    exact = _by_exchange_name().get(key)
    if exact is not None:
        return exact
    pairs = load_pairs()
    asset = canonical_asset(name)
    if asset in pairs:
        return pairs[asset]
    raise DataError(
        f"unknown pair {name!r} (asset {asset!r}): expected one of {sorted(pairs)} "
        f"or their Kraken names, see {PAIRS_FILE.name}"
    )


def pair_record(name: str) -> dict[str, Any]:
    """The raw JSON record of a pair (with its sources and unverified fields)."""
    info = pair_info(name)
    for rec in [*_document()["pairs"], *_document().get("reference_pairs", [])]:
        if rec["altname"] == info.altname:
            return dict(rec)
    raise DataError(f"{PAIRS_FILE}: no record for pair {name!r}")  # pragma: no cover


def fee_schedule() -> list[tuple[float, float, float]]:
    """Kraken spot volume tiers: ``(30-day USD volume threshold, maker, taker)`` as fractions.

    Built from the recorded ``fees_maker``/``fees`` arrays (percent), sorted by
    threshold; the first row is the base tier (maker 0.0025, taker 0.0040).
    """
    sched = _document()["fee_schedule"]
    maker = {float(v): float(p) / 100.0 for v, p in sched["maker"]}
    taker = {float(v): float(p) / 100.0 for v, p in sched["taker"]}
    if set(maker) != set(taker):
        raise DataError(
            f"{PAIRS_FILE}: fee_schedule maker/taker thresholds differ: "
            f"expected equal sets, got {sorted(maker)} vs {sorted(taker)}"
        )
    return [(vol, maker[vol], taker[vol]) for vol in sorted(maker)]


def fee_schedule_source() -> tuple[str, str]:
    """``(source, source_date)`` of the fee schedule, for reports."""
    sched = _document()["fee_schedule"]
    return str(sched["source"]), str(sched["source_date"])
