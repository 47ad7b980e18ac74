"""Loaders that turn files into a validated `MarketData`.

- Kraken's official OHLCVT dump (``PAIR_INTERVAL.csv[.gz]``, no header, columns time,
  open, high, low, close, volume, trades); minute files are resampled to hourly bars.
- Generic CSV / Parquet with a header (timestamp, open, high, low, close, volume
  [, trades]), one file per asset, e.g. ``BTCUSDT_1h.csv.gz``; gzip is read as is.

Every loader validates each file (``envs.data.validation``), aligns assets on one hourly
UTC grid with an explicit gap policy (``envs.data.align``) and raises `DataError` naming
the file, asset, row and value on bad input.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from envs.data.align import align_bars, check_gap_policy
from envs.data.market import HOUR, MarketData
from envs.data.pairs import canonical_asset, load_pairs
from envs.data.validation import RawBars, resample_to_hourly, validate_raw
from envs.errors import DataError

log = logging.getLogger(__name__)

KRAKEN_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume", "trades")
HEADER_REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")
KRAKEN_FILE = re.compile(r"^(?P<pair>[A-Z0-9.]+)_(?P<minutes>\d+)\.csv(\.gz)?$", re.IGNORECASE)
TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
_NA_TEXT = ["", "nan", "NaN", "NAN", "NA", "null", "None"]  # read as NaN, then reported by validation


# ----------------------------------------------------------------------------- helpers
def to_unix(when: str | int | float | pd.Timestamp | None) -> int | None:
    """A date/time (ISO string, Timestamp or Unix seconds) as Unix seconds, UTC."""
    if when is None:
        return None
    if isinstance(when, int | float | np.integer | np.floating):
        return int(when)
    ts = pd.Timestamp(when)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000_000)


def _numeric(frame: pd.DataFrame, path: Path | str, asset: str, rows: np.ndarray) -> pd.DataFrame:
    """Columns as float64; the first unparsable cell raises, naming row, column and value."""
    out = {}
    for col in frame.columns:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{path}: asset {asset}: row {int(rows[i])}: {col}={frame[col].iloc[i]!r}: expected a number"
            )
        out[col] = values.astype("float64")
    return pd.DataFrame(out)


def _timestamps(seconds: np.ndarray, path: Path | str, asset: str, rows: np.ndarray) -> np.ndarray:
    """Unix-second int64 timestamps; milliseconds are detected and converted."""
    bad = np.flatnonzero(~np.isfinite(seconds))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{path}: asset {asset}: row {int(rows[i])}: timestamp is missing")
    if seconds.size and np.nanmedian(seconds) > 1e11:  # milliseconds since 1970
        seconds = seconds / 1000.0
    frac = np.flatnonzero(seconds != np.floor(seconds))
    if frac.size:
        i = int(frac[0])
        raise DataError(
            f"{path}: asset {asset}: row {int(rows[i])}: timestamp={seconds[i]!r}: expected whole seconds"
        )
    return seconds.astype(np.int64)


def _epoch_seconds(parsed: pd.Series) -> np.ndarray:
    """Seconds since 1970 of tz-aware datetimes, whatever their storage resolution."""
    return ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)


def raw_from_frame(
    frame: pd.DataFrame, path: Path | str, asset: str, interval_s: int, rows: np.ndarray | int
) -> RawBars:
    """One asset's bars from a frame with timestamp, OHLCV[, trades] columns (not yet validated).

    ``rows`` labels each frame row in messages: the first row's number (consecutive rows
    follow, as in a file) or one number per row. Timestamps may be Unix seconds or
    milliseconds, datetimes (naive = UTC) or ISO strings.
    """
    if isinstance(rows, int | np.integer):
        rows = np.arange(int(rows), int(rows) + len(frame), dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    ts_col = frame["timestamp"]
    textual = not pd.api.types.is_numeric_dtype(ts_col) and not pd.api.types.is_datetime64_any_dtype(ts_col)
    if textual and not pd.to_numeric(ts_col, errors="coerce").notna().all():
        parsed = pd.to_datetime(ts_col, utc=True, errors="coerce")
        if parsed.isna().any():
            i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            raise DataError(
                f"{path}: asset {asset}: row {int(rows[i])}: timestamp={ts_col.iloc[i]!r}: "
                "expected Unix seconds or an ISO date"
            )
        seconds = _epoch_seconds(parsed)
        frame = frame.drop(columns="timestamp")
    elif pd.api.types.is_datetime64_any_dtype(ts_col):
        parsed = pd.to_datetime(ts_col, utc=True)
        seconds = _epoch_seconds(parsed)
        frame = frame.drop(columns="timestamp")
    else:
        seconds = None
    num = _numeric(frame, path, asset, rows)
    if seconds is None:
        seconds = num["timestamp"].to_numpy()
    return RawBars(
        asset=asset,
        path=str(path),
        interval_s=interval_s,
        timestamps=_timestamps(seconds, path, asset, rows),
        open=num["open"].to_numpy(),
        high=num["high"].to_numpy(),
        low=num["low"].to_numpy(),
        close=num["close"].to_numpy(),
        volume=num["volume"].to_numpy(),
        trades=num["trades"].to_numpy() if "trades" in num else None,
        rows=rows,
    )


def _read_csv(path: Path, **kwargs: object) -> pd.DataFrame:
    try:
        return pd.read_csv(  # type: ignore[call-overload, no-any-return]
            path, dtype=str, keep_default_na=False, na_values=_NA_TEXT, **kwargs
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file has no data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as exc:
        raise DataError(f"{path}: cannot be read as CSV: {exc}") from exc


def _trim(raw: RawBars, start: int | None, end: int | None) -> RawBars:
    keep = np.ones(raw.timestamps.size, dtype=bool)
    if start is not None:
        keep &= raw.timestamps >= start
    if end is not None:
        keep &= raw.timestamps <= end
    return raw.take(keep)


def _wanted(asset: str, assets: Sequence[str] | None) -> bool:
    return assets is None or asset in {canonical_asset(a) for a in assets}


def _finish(
    raws: list[RawBars], assets: Sequence[str] | None, gap_policy: str, source: str
) -> MarketData:
    if assets is not None:
        found = {r.asset for r in raws}
        missing = [a for a in (canonical_asset(x) for x in assets) if a not in found]
        if missing:
            raise DataError(f"{source}: no file or no bars in the period for assets {missing}")
        order = [canonical_asset(a) for a in assets]
        raws = sorted(raws, key=lambda r: order.index(r.asset))
    return align_bars(raws, gap_policy, pairs=load_pairs(), source=source)


# ------------------------------------------------------------------------- Kraken dump
def read_kraken_file(path: str | Path, asset: str | None = None) -> RawBars:
    """One Kraken OHLCVT file, validated and resampled to hourly bars."""
    path = Path(path)
    m = KRAKEN_FILE.match(path.name)
    if not m:
        raise DataError(f"{path}: expected a Kraken OHLCVT file named PAIR_MINUTES.csv[.gz], e.g. XBTUSD_60.csv")
    minutes = int(m["minutes"])
    asset = asset or canonical_asset(m["pair"])
    frame = _read_csv(path, header=None)
    if frame.shape[1] != len(KRAKEN_COLUMNS):
        raise DataError(
            f"{path}: expected {len(KRAKEN_COLUMNS)} columns {list(KRAKEN_COLUMNS)} (no header), "
            f"got {frame.shape[1]}"
        )
    frame.columns = list(KRAKEN_COLUMNS)
    raw = raw_from_frame(frame, path, asset, minutes * 60, rows=1)
    raw = validate_raw(raw)
    return resample_to_hourly(raw)


def _kraken_files(root: Path, interval: int | None, quote: str) -> dict[str, Path]:
    """Per asset, the file to read: the given interval, else 60, else the finest below 60."""
    by_asset: dict[str, dict[int, Path]] = {}
    for p in sorted(root.iterdir()):
        m = KRAKEN_FILE.match(p.name)
        if not m:
            continue
        pair = m["pair"].upper()
        if not pair.endswith(quote.upper()) or (quote.upper() == "USD" and pair.endswith(("USDT", "USDC"))):
            log.info("%s: skipped (quote is not %s)", p, quote)
            continue
        by_asset.setdefault(canonical_asset(pair), {})[int(m["minutes"])] = p
    chosen = {}
    for asset, files in by_asset.items():
        if interval is not None:
            if interval in files:
                chosen[asset] = files[interval]
            continue
        usable = sorted(m for m in files if m <= 60 and 60 % m == 0)
        if usable:
            chosen[asset] = files[60] if 60 in files else files[usable[-1]]
    return chosen


def load_kraken_dir(
    path: str | Path,
    interval: int | None = None,
    assets: Sequence[str] | None = None,
    start: str | int | None = None,
    end: str | int | None = None,
    gap_policy: str = "mark",
    quote: str = "USD",
) -> MarketData:
    """Every ``PAIR_MINUTES.csv[.gz]`` of one quote currency in a folder, as hourly bars."""
    root = Path(path)
    check_gap_policy(gap_policy)
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder of Kraken OHLCVT files, got no such folder")
    files = _kraken_files(root, interval, quote)
    if not files:
        raise DataError(
            f"{root}: no Kraken OHLCVT files for quote {quote}"
            + (f" at {interval} min" if interval else "")
            + " (expected names like XBTUSD_60.csv)"
        )
    t0, t1 = to_unix(start), to_unix(end)
    raws = []
    for asset, p in files.items():
        if not _wanted(asset, assets):
            continue
        raw = _trim(read_kraken_file(p, asset), t0, t1)
        if raw.timestamps.size:
            raws.append(raw)
    return _finish(raws, assets, gap_policy, source=f"kraken_csv:{root}")


# ------------------------------------------------------------------- generic tables
def read_table_file(path: str | Path, asset: str | None = None) -> RawBars:
    """One CSV/Parquet file with a header (timestamp, open, high, low, close, volume[, trades])."""
    path = Path(path)
    asset = asset or canonical_asset(path.name.split(".")[0])
    if path.name.endswith(".parquet"):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise DataError(f"{path}: cannot be read as Parquet: {exc}") from exc
        first_row = 0
    else:
        frame = _read_csv(path)
        first_row = 2  # row 1 is the header
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if "time" in frame.columns and "timestamp" not in frame.columns:
        frame = frame.rename(columns={"time": "timestamp"})
    if "date" in frame.columns and "timestamp" not in frame.columns:
        frame = frame.rename(columns={"date": "timestamp"})
    missing = [c for c in HEADER_REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing columns {missing}: expected a header with {list(HEADER_REQUIRED)}")
    cols = [*HEADER_REQUIRED, *(["trades"] if "trades" in frame.columns else [])]
    frame = frame[cols]
    step = _infer_interval(path)
    raw = raw_from_frame(frame, path, asset, step, first_row)
    raw = validate_raw(raw)
    return resample_to_hourly(raw)


def _infer_interval(path: Path) -> int:
    """The file's bar interval from its name (``_1h``, ``_5m``) or else one hour."""
    m = re.search(r"_(\d+)([mh])\b", path.name)
    if m:
        return int(m[1]) * (60 if m[2] == "m" else HOUR)
    return HOUR


def load_csv_dir(
    path: str | Path,
    assets: Sequence[str] | None = None,
    start: str | int | None = None,
    end: str | int | None = None,
    gap_policy: str = "mark",
) -> MarketData:
    """Every CSV/Parquet file with a header in a folder (one asset per file), as hourly bars."""
    root = Path(path)
    check_gap_policy(gap_policy)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.iterdir() if p.name.endswith(TABLE_SUFFIXES))
    else:
        raise DataError(f"{root}: expected a folder (or file) of CSV/Parquet bars, got no such path")
    if not files:
        raise DataError(f"{root}: no .csv, .csv.gz or .parquet files found")
    t0, t1 = to_unix(start), to_unix(end)
    raws = []
    for p in files:
        asset = canonical_asset(p.name.split(".")[0])
        if not _wanted(asset, assets):
            continue
        raw = _trim(read_table_file(p, asset), t0, t1)
        if raw.timestamps.size:
            raws.append(raw)
    return _finish(raws, assets, gap_policy, source=f"csv:{root}")
