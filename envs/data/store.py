"""A local Parquet store of hourly bars: ``<root>/<exchange>/<BASE-QUOTE>/<YYYY-MM>.parquet``.

- **Append-only**: a month file only ever gains rows; an hour already stored is never
  changed (a new source disagreeing with it is counted as a conflict and logged).
- **Atomic**: every file (partitions, manifest, resume state) is written to a temp file in
  the same folder and moved into place with ``os.replace``; a partition write is two-phase
  (the manifest names the new checksum first, `BarStore._finish_pending` completes or drops
  an interrupted one at the next open), so a crash never leaves file and manifest disagreeing.
- **Manifest** ``manifest.json``: per partition its exchange, pair, month, row count,
  first/last bar, rows per source, SHA-256 of the file and the fetch time. `BarStore.verify`
  recomputes the checksums and names every corrupted, missing or unlisted partition.
- **Deterministic**: the bytes of a partition depend only on its rows (sorted by time),
  never on how many appends built it, so an interrupted and resumed download ends in the
  same files as an uninterrupted one.

Columns: ``timestamp`` (int64 Unix s, bar start), ``open high low close volume`` (float64),
``trades`` (float64 trade count, NaN when the source has none), ``source`` (string).
`load_store` turns the store into a `MarketData` (the ``data=store`` config option).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from envs.atomic import atomic_write as atomic_write_bytes
from envs.data.align import align_bars, check_gap_policy
from envs.data.market import HOUR, MarketData
from envs.data.pairs import canonical_asset, load_pairs
from envs.data.validation import RawBars, validate_raw
from envs.errors import DataError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
STATE_DIR = "_state"
FORMAT = 1
COLUMNS = ("timestamp", "open", "high", "low", "close", "volume", "trades", "source")
_VALUES = ("open", "high", "low", "close", "volume")
_MONTH = re.compile(r"^\d{4}-\d{2}\.parquet$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]*$")


def utc_now() -> str:
    """The fetch time recorded in the manifest (ISO-8601 UTC, seconds)."""
    return pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def pair_key(asset: str, quote: str) -> str:
    """The store's pair folder name: canonical base and quote, e.g. ``BTC-USD``, ``BTC-USDT``."""
    return f"{canonical_asset(asset)}-{quote.upper()}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _json_bytes(doc: Any) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def _table_bytes(frame: dict[str, np.ndarray]) -> bytes:
    table = pa.table({c: frame[c] for c in COLUMNS})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", use_dictionary=["source"])
    return bytes(sink.getvalue().to_pybytes())


def _month(ts: np.ndarray) -> np.ndarray:
    return pd.to_datetime(ts, unit="s", utc=True).strftime("%Y-%m").to_numpy()


@dataclass
class AppendResult:
    """What one `BarStore.append` did."""

    added: int = 0
    conflicts: int = 0
    partitions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """One integrity problem of the store (a corrupted, missing or unlisted partition)."""

    partition: str
    kind: str  # checksum | unreadable | missing | unlisted
    detail: str

    def __str__(self) -> str:
        return f"{self.partition}: {self.kind}: {self.detail}"


class BarStore:
    """The store at ``root``; ``clock`` gives the fetch time written to the manifest."""

    def __init__(self, root: str | Path, clock: Callable[[], str] = utc_now) -> None:
        self.root = Path(root)
        self.clock = clock
        self._manifest: dict[str, Any] | None = None

    # --------------------------------------------------------------- manifest
    @property
    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            path = self.root / MANIFEST
            if path.is_file():
                try:
                    doc = json.loads(path.read_text())
                except (OSError, json.JSONDecodeError) as exc:
                    raise DataError(f"{path}: store manifest cannot be read: {exc}") from exc
                if doc.get("format") != FORMAT or "partitions" not in doc:
                    raise DataError(f"{path}: expected a store manifest of format {FORMAT}, got {doc.get('format')!r}")
                self._manifest = doc
                self._finish_pending()
            else:
                self._manifest = {"format": FORMAT, "partitions": {}}
        return self._manifest

    def _finish_pending(self) -> None:
        """Complete or drop a partition write a crash interrupted (two-phase commit, see `append`).

        The manifest names the new content (``pending``: key -> entry with its SHA-256) before
        the partition file is replaced. If the file on disk has that checksum the write
        happened and the entry is adopted; otherwise the file is still the old one and the
        intent is dropped. Either way the manifest and the files agree again.
        """
        assert self._manifest is not None
        pending = self._manifest.pop("pending", None)
        if not pending:
            return
        for key, entry in pending.items():
            path = self.root / key
            if path.is_file() and sha256_file(path) == entry["sha256"]:
                self._manifest["partitions"][key] = entry
        self._save_manifest()

    def _save_manifest(self) -> None:
        atomic_write_bytes(self.root / MANIFEST, _json_bytes(self.manifest))

    # ------------------------------------------------------------------ paths
    def series_dir(self, exchange: str, pair: str) -> Path:
        for part in (exchange, pair):
            if not _NAME.match(part.replace("-", "_")):
                raise DataError(f"store: bad exchange/pair name {part!r}: expected letters, digits, '-', '_' or '.'")
        return self.root / exchange / pair

    def partitions(self, exchange: str, pair: str) -> list[str]:
        """Manifest keys (relative paths) of one series, in month order."""
        prefix = f"{exchange}/{pair}/"
        return sorted(k for k in self.manifest["partitions"] if k.startswith(prefix))

    def series(self) -> list[tuple[str, str]]:
        """Every (exchange, pair) with at least one partition."""
        return sorted({tuple(k.split("/")[:2]) for k in self.manifest["partitions"]})  # type: ignore[misc]

    def first_timestamp(self, exchange: str, pair: str) -> int | None:
        parts = self.partitions(exchange, pair)
        return int(self.manifest["partitions"][parts[0]]["first"]) if parts else None

    def last_timestamp(self, exchange: str, pair: str) -> int | None:
        parts = self.partitions(exchange, pair)
        return int(self.manifest["partitions"][parts[-1]]["last"]) if parts else None

    # -------------------------------------------------------------- reading
    def _read_partition(self, key: str, check: bool = True) -> dict[str, np.ndarray]:
        path = self.root / key
        entry = self.manifest["partitions"].get(key)
        if check and entry is not None:
            if not path.is_file():
                raise DataError(f"store {self.root}: partition {key} is listed in the manifest but missing")
            digest = sha256_file(path)
            if digest != entry["sha256"]:
                raise DataError(
                    f"store {self.root}: partition {key} is corrupted: SHA-256 {digest[:12]}… does not match the "
                    f"manifest's {entry['sha256'][:12]}…: it changed after it was written (the store never leaves a "
                    "half-written partition); rebuild this pair's series (remove its folder and manifest entries) "
                    "or restore it from a copy"
                )
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise DataError(f"store {self.root}: partition {key} cannot be read: {exc}") from exc
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing:
            raise DataError(f"store {self.root}: partition {key}: missing columns {missing}")
        out = {c: table.column(c).to_numpy() for c in COLUMNS if c != "source"}
        out["source"] = np.asarray(table.column("source").to_pylist(), dtype=object)
        out["timestamp"] = out["timestamp"].astype(np.int64)
        return out

    def read(self, exchange: str, pair: str, start: int | None = None, end: int | None = None) -> RawBars:
        """Every stored bar of one series in ``[start, end]`` (checksums verified), validated."""
        parts = self.partitions(exchange, pair)
        if not parts:
            raise DataError(f"store {self.root}: no bars for {exchange} {pair} (series: {self.series()})")
        frames = [self._read_partition(k) for k in parts]
        cols = {c: np.concatenate([f[c] for f in frames]) for c in COLUMNS}
        keep = np.ones(cols["timestamp"].size, dtype=bool)
        if start is not None:
            keep &= cols["timestamp"] >= start
        if end is not None:
            keep &= cols["timestamp"] <= end
        raw = RawBars(
            asset=canonical_asset(pair),
            path=f"{self.root}/{exchange}/{pair}",
            interval_s=HOUR,
            timestamps=cols["timestamp"][keep],
            open=cols["open"][keep],
            high=cols["high"][keep],
            low=cols["low"][keep],
            close=cols["close"][keep],
            volume=cols["volume"][keep],
            trades=cols["trades"][keep],
            rows=np.flatnonzero(keep).astype(np.int64) + 1,
        )
        if raw.timestamps.size == 0:
            return raw
        if np.isnan(raw.trades).all():  # type: ignore[arg-type]
            raw = replace(raw, trades=None)
        return validate_raw(raw)

    # -------------------------------------------------------------- writing
    def append(self, exchange: str, pair: str, bars: RawBars, source: str) -> AppendResult:
        """Add the hours of ``bars`` not yet stored; stored hours are kept as they are."""
        result = AppendResult()
        if bars.timestamps.size == 0:
            return result
        if bars.interval_s != HOUR:
            raise DataError(f"store: expected hourly bars for {exchange} {pair}, got {bars.interval_s} s bars")
        bars = validate_raw(bars)
        trades = bars.trades if bars.trades is not None else np.full(bars.timestamps.size, np.nan)
        months = _month(bars.timestamps)
        touched = []
        for month in sorted(set(months)):
            sel = months == month
            key = f"{exchange}/{pair}/{month}.parquet"
            self.series_dir(exchange, pair)  # validates the names
            new = {
                "timestamp": bars.timestamps[sel],
                **{c: getattr(bars, c)[sel].astype(np.float64) for c in _VALUES},
                "trades": trades[sel].astype(np.float64),
                "source": np.full(int(sel.sum()), source, dtype=object),
            }
            if key in self.manifest["partitions"] or (self.root / key).is_file():
                old = self._read_partition(key)
                have = np.isin(new["timestamp"], old["timestamp"])
                result.conflicts += _count_conflicts(old, new, have, f"{exchange} {pair} ({source})")
                fresh = ~have
                if not fresh.any():
                    continue
                merged = {c: np.concatenate([old[c], new[c][fresh]]) for c in COLUMNS}
                added = int(fresh.sum())
            else:
                merged, added = new, int(sel.sum())
            order = np.argsort(merged["timestamp"], kind="stable")
            merged = {c: merged[c][order] for c in COLUMNS}
            data = _table_bytes(merged)
            srcs, counts = np.unique(merged["source"].astype(str), return_counts=True)
            entry = {
                "exchange": exchange,
                "pair": pair,
                "month": month,
                "rows": int(merged["timestamp"].size),
                "first": int(merged["timestamp"][0]),
                "last": int(merged["timestamp"][-1]),
                "sources": {str(s): int(n) for s, n in zip(srcs, counts, strict=True)},
                "sha256": hashlib.sha256(data).hexdigest(),
                "fetched_at": self.clock(),
            }
            # two-phase: the manifest names the new content first, then the file is replaced,
            # then the entry is committed; a crash in between is finished at the next open
            self.manifest["pending"] = {key: entry}
            self._save_manifest()
            atomic_write_bytes(self.root / key, data)
            del self.manifest["pending"]
            self.manifest["partitions"][key] = entry
            self._save_manifest()
            result.added += added
            touched.append(key)
        result.partitions = tuple(touched)
        return result

    # ------------------------------------------------------------ integrity
    def verify(self) -> list[Problem]:
        """Recompute every partition's checksum; list corrupted, missing and unlisted files."""
        problems = []
        listed = self.manifest["partitions"]
        for key, entry in sorted(listed.items()):
            path = self.root / key
            if not path.is_file():
                problems.append(Problem(key, "missing", "listed in the manifest, no file"))
                continue
            digest = sha256_file(path)
            if digest != entry["sha256"]:
                problems.append(Problem(key, "checksum", f"SHA-256 {digest[:12]}… != manifest {entry['sha256'][:12]}…"))
                continue
            try:
                rows = pq.read_metadata(path).num_rows
            except Exception as exc:  # pyarrow raises several unrelated types
                problems.append(Problem(key, "unreadable", str(exc)))
                continue
            if rows != entry["rows"]:
                problems.append(Problem(key, "rows", f"{rows} rows, manifest says {entry['rows']}"))
        if self.root.is_dir():
            for path in sorted(self.root.glob("*/*/*.parquet")):
                key = path.relative_to(self.root).as_posix()
                if _MONTH.match(path.name) and key not in listed:
                    problems.append(Problem(key, "unlisted", "file not in the manifest"))
        return problems

    def check(self) -> None:
        """`verify`, raising a DataError that names every bad partition."""
        problems = self.verify()
        if problems:
            raise DataError(f"store {self.root}: {len(problems)} bad partition(s): " + "; ".join(map(str, problems)))

    # ---------------------------------------------------------- resume state
    def state_path(self, exchange: str, pair: str, name: str) -> Path:
        return self.series_dir(exchange, pair).parent.parent / STATE_DIR / exchange / f"{pair}.{name}.json"

    def load_state(self, exchange: str, pair: str, name: str) -> dict[str, Any] | None:
        path = self.state_path(exchange, pair, name)
        if not path.is_file():
            return None
        try:
            doc: dict[str, Any] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: resume state cannot be read ({exc}): delete it to restart this series") from exc
        return doc

    def save_state(self, exchange: str, pair: str, name: str, doc: dict[str, Any]) -> None:
        atomic_write_bytes(self.state_path(exchange, pair, name), _json_bytes(doc))

    def clear_state(self, exchange: str, pair: str, name: str) -> None:
        path = self.state_path(exchange, pair, name)
        if path.exists():
            path.unlink()


def _count_conflicts(old: dict[str, np.ndarray], new: dict[str, np.ndarray], have: np.ndarray, what: str) -> int:
    """Stored hours that a new source reports differently (relative 1e-9 on OHLCV)."""
    if not have.any():
        return 0
    idx = np.searchsorted(old["timestamp"], new["timestamp"][have])
    differ = np.zeros(int(have.sum()), dtype=bool)
    for c in _VALUES:
        a, b = old[c][idx], new[c][have]
        differ |= ~np.isclose(a, b, rtol=1e-9, atol=1e-12)
    n = int(differ.sum())
    if n:
        first = int(new["timestamp"][have][np.flatnonzero(differ)[0]])
        log.warning("%s: %d stored hours differ from the new source (first at %d); kept the stored rows",
                    what, n, first)  # fmt: skip
    return n


# ------------------------------------------------------------------- loading
def load_store(
    path: str | Path,
    exchange: str = "kraken",
    quote: str = "USD",
    assets: Sequence[str] | None = None,
    start: str | int | None = None,
    end: str | int | None = None,
    gap_policy: str = "mark",
    reference: Sequence[str] | None = ("binance", "coinbase"),
    integrity: dict[str, Any] | None = None,
    verify: bool = True,
) -> MarketData:
    """The store's ``exchange`` bars as a `MarketData` (what ``data=store`` builds).

    Checksums are verified first (``verify``); a corrupted partition raises naming it.
    When the store holds reference-exchange bars for the same bases, the integrity checks
    (`envs.data.integrity`) run and ``MarketData.integrity_ok`` carries their per-bar mask,
    which the kill switch's data-integrity trigger reads.
    """
    from envs.data.loaders import to_unix

    store = BarStore(path)
    if not (store.root / MANIFEST).is_file():
        raise DataError(f"{store.root}: expected a bar store (no {MANIFEST}); build it with scripts/download_data.py")
    check_gap_policy(gap_policy)
    if verify:
        store.check()
    suffix = f"-{quote.upper()}"
    stored = [p for ex, p in store.series() if ex == exchange and p.endswith(suffix)]
    from envs.data.exchanges import asset_of

    wanted = [pair_key(asset_of(a), quote) for a in assets] if assets is not None else stored
    missing = [p for p in wanted if p not in stored]
    if missing:
        raise DataError(f"store {store.root}: no {exchange} bars for {missing}: stored pairs are {stored}")
    t0, t1 = to_unix(start), to_unix(end)
    raws = [r for r in (store.read(exchange, p, t0, t1) for p in wanted) if r.timestamps.size]
    if assets is not None and len(raws) < len(wanted):
        empty = sorted(set(wanted) - {pair_key(r.asset, quote) for r in raws})
        raise DataError(f"store {store.root}: {exchange} {empty}: no bars in the requested period")
    market = align_bars(raws, gap_policy, pairs=load_pairs(), source=f"store:{store.root}:{exchange}")
    if reference:
        from envs.data.integrity import IntegrityConfig, check_market, reference_closes

        refs = reference_closes(store, market, reference)
        if refs:
            report = check_market(market, refs, IntegrityConfig.from_mapping(integrity or {}, section="data.integrity"))
            market = report.apply(market)
    return market
