"""`MarketData` from a pandas DataFrame, through the same checks as the file loaders.

Two layouts (``layout="auto"`` picks by the columns):

- **long**: one row per (timestamp, asset) with columns ``timestamp``, ``asset``, ``open``,
  ``high``, ``low``, ``close``, ``volume`` [, ``trades``] (``timestamp`` may also be the
  index); other columns are ignored;
- **wide**: a timestamp index and MultiIndex columns ``(field, asset)`` or ``(asset,
  field)``, e.g. ``df["close"]["BTC"]`` or ``df["BTC"]["close"]``.

Timestamps are bar starts: Unix seconds or milliseconds, datetimes (naive = UTC) or ISO
strings. Asset names go through `canonical_asset` after removing the ``quote`` suffix
(``"XBTUSD"``, ``"BTC/USD"`` and ``"BTC"`` are all BTC). Each asset's bars are checked by
`validate_raw` (a bad value raises `DataError` naming the asset, the row, as a position
``df.iloc[row]`` of the frame, and the value), resampled to hourly when ``interval`` is
below 60 minutes, and aligned with the gap policy (`align_bars`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from envs.data.align import align_bars, check_gap_policy
from envs.data.loaders import raw_from_frame
from envs.data.market import MarketData, PairInfo
from envs.data.pairs import canonical_asset, load_pairs
from envs.data.validation import RawBars, resample_to_hourly, validate_raw
from envs.errors import ConfigError, DataError

FIELDS = ("open", "high", "low", "close", "volume")
OPTIONAL = ("trades",)
LAYOUTS = ("auto", "long", "wide")


def _asset_name(name: object, quote: str, source: str) -> str:
    text = str(name).strip()
    q = quote.upper()
    for sep in ("/", "-", "_", ""):
        if text.upper().endswith(sep + q) and len(text) > len(sep + q):
            text = text[: len(text) - len(sep + q)]
            break
    try:
        return canonical_asset(text)
    except DataError as exc:
        raise DataError(f"{source}: asset name {name!r}: {exc}") from None


def _lower(columns: pd.Index) -> list[str]:
    return [str(c).strip().lower() for c in columns]


def _check_fields(present: list[str], source: str, where: str) -> None:
    missing = [f for f in ("timestamp", *FIELDS) if f not in present]
    if missing:
        raise DataError(f"{source}: {where}: missing columns {missing}: expected {['timestamp', *FIELDS]}[, 'trades']")


def _long_groups(df: pd.DataFrame, source: str) -> list[tuple[object, pd.DataFrame, np.ndarray]]:
    """(asset name, its rows with timestamp + fields, their positions in ``df``) per asset."""
    frame = df.set_axis(_lower(df.columns), axis=1)
    for alias in ("time", "date"):
        if alias in frame.columns and "timestamp" not in frame.columns:
            frame = frame.rename(columns={alias: "timestamp"})
    index_named = str(df.index.name).strip().lower() in ("timestamp", "time", "date")
    if "timestamp" not in frame.columns and (index_named or isinstance(df.index, pd.DatetimeIndex)):
        frame = frame.assign(timestamp=df.index.to_numpy())
    if "asset" not in frame.columns:
        raise DataError(f"{source}: long layout: expected an 'asset' column, got {list(frame.columns)}")
    _check_fields(list(frame.columns), source, "long layout")
    cols = ["timestamp", *FIELDS, *(c for c in OPTIONAL if c in frame.columns)]
    names = frame["asset"]
    if names.isna().any():
        i = int(np.flatnonzero(names.isna().to_numpy())[0])
        raise DataError(f"{source}: row {i}: asset is missing")
    groups = []
    for name in pd.unique(names.to_numpy()):
        pos = np.flatnonzero((names == name).to_numpy())
        groups.append((name, frame.iloc[pos][cols].reset_index(drop=True), pos.astype(np.int64)))
    return groups


def _wide_groups(df: pd.DataFrame, source: str) -> list[tuple[object, pd.DataFrame, np.ndarray]]:
    if not isinstance(df.columns, pd.MultiIndex) or df.columns.nlevels != 2:
        raise DataError(f"{source}: wide layout: expected 2-level MultiIndex columns (field, asset) or (asset, field)")
    levels = [[str(v).strip().lower() for v in df.columns.get_level_values(k)] for k in (0, 1)]
    field_level = next((k for k in (0, 1) if set(FIELDS) <= set(levels[k])), None)
    if field_level is None:
        raise DataError(
            f"{source}: wide layout: expected one column level to hold {list(FIELDS)}, got levels "
            f"{sorted(set(levels[0]))} and {sorted(set(levels[1]))}"
        )
    asset_level = 1 - field_level
    stamps = pd.Series(df.index.to_numpy(), index=pd.RangeIndex(len(df)))
    groups: list[tuple[object, pd.DataFrame, np.ndarray]] = []
    for name in pd.unique(df.columns.get_level_values(asset_level)):
        part = pd.DataFrame(df.xs(name, axis=1, level=asset_level))
        part = part.set_axis(_lower(part.columns), axis=1)
        _check_fields(["timestamp", *part.columns], source, f"asset {name}")
        cols = [*FIELDS, *(c for c in OPTIONAL if c in part.columns)]
        block = pd.DataFrame(part.loc[:, cols]).reset_index(drop=True)
        block.insert(0, "timestamp", stamps)
        listed = block.loc[:, list(FIELDS)].notna().to_numpy().any(axis=1)  # rows where this asset has a bar
        pos = np.flatnonzero(listed).astype(np.int64)
        groups.append((name, block.iloc[pos].reset_index(drop=True), pos))
    return groups


def market_from_frame(
    df: pd.DataFrame,
    *,
    layout: str = "auto",
    quote: str = "USD",
    gap_policy: str = "mark",
    pairs: Mapping[str, PairInfo] | None = None,
    interval: int = 60,
    source: str = "frame",
) -> MarketData:
    """Validated, aligned `MarketData` from a DataFrame; see the module docstring.

    ``pairs``: instrument rules per asset; ``None`` attaches Kraken's USD pair rules
    (`load_pairs`) to the assets it knows when ``quote`` is USD. ``interval``: the bars'
    length in minutes (60, or a divisor of 60 to resample to hourly).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{source}: expected a pandas DataFrame, got {type(df).__name__}")
    if layout not in LAYOUTS:
        raise ConfigError(f"from_frame: layout: expected one of {list(LAYOUTS)}, got {layout!r}")
    check_gap_policy(gap_policy)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ConfigError(f"from_frame: interval: expected minutes as an integer >= 1, got {interval!r}")
    if df.empty:
        raise DataError(f"{source}: the frame has no rows")
    if layout == "auto":
        layout = "wide" if isinstance(df.columns, pd.MultiIndex) else "long"
    groups = _wide_groups(df, source) if layout == "wide" else _long_groups(df, source)
    raws: list[RawBars] = []
    seen: dict[str, object] = {}
    for name, frame, rows in groups:
        asset = _asset_name(name, quote, source)
        if asset in seen:
            raise DataError(f"{source}: asset names {seen[asset]!r} and {name!r} are both {asset}: expected one each")
        seen[asset] = name
        if frame.empty:
            raise DataError(f"{source}: asset {asset}: no bars (every price is missing)")
        raw = raw_from_frame(frame, source, asset, interval * 60, rows)
        raws.append(resample_to_hourly(validate_raw(raw)))
    known = pairs if pairs is not None else (load_pairs() if quote.upper() == "USD" else {})
    return align_bars(raws, gap_policy, pairs=known, source=source)


__all__ = ["LAYOUTS", "market_from_frame"]
