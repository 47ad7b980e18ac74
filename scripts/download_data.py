"""Build or extend the local Parquet bar store: Kraken history and reference exchanges, through ccxt.

    python scripts/download_data.py                                   # conf/download/default.yaml
    python scripts/download_data.py exchange=kraken pairs=[XBT/USD] start=2024-06-01 store=data/store
    python scripts/download_data.py download.kraken.csv_dir=../shared/data/kraken/ohlcvt_1h

Per pair, the Kraken sources run in the configured order (CSV dump, Trades endpoint for the
hours before the OHLC window, OHLC for the last 720 hours), then the reference exchanges;
each adds only hours not yet stored, and an interrupted run resumes where it stopped.
Outputs (in the Hydra run folder): summary.json, integrity.csv, integrity_events.csv,
integrity.png. The store then feeds every entry point with ``data=store data.path=<store>``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from envs.data.download import KRAKEN_SOURCES, OHLC_WINDOW, Downloader, DownloadSummary
from envs.data.exchanges import QUOTES, asset_of, make_exchange
from envs.data.loaders import _kraken_files, to_unix
from envs.data.market import HOUR
from envs.data.store import BarStore, pair_key
from envs.errors import ConfigError
from krakenrl.cli import hydra_main

REFERENCES = tuple(x for x in QUOTES if x != "kraken")


def check_config(d: dict[str, Any]) -> dict[str, Any]:
    """The ``download`` node, checked: every bad value raises a ConfigError naming its key."""
    pairs = d.get("pairs")
    if not pairs or not isinstance(pairs, list):
        raise ConfigError(f"pairs: expected a non-empty list such as [XBT/USD], got {pairs!r}")
    sources = list(d["kraken"]["sources"])
    bad = [s for s in sources if s not in KRAKEN_SOURCES]
    if bad or not sources:
        raise ConfigError(
            f"download.kraken.sources: expected a non-empty subset of {list(KRAKEN_SOURCES)}, got {sources}"
        )
    refs = list(d.get("references") or [])
    bad = [r for r in refs if r not in REFERENCES]
    if bad:
        raise ConfigError(f"download.references: expected a subset of {list(REFERENCES)}, got {refs}")
    for key, low in (("page_limit", 1), ("retries", 0), ("backoff_s", 0)):
        if not isinstance(d.get(key), int | float) or d[key] < low:
            raise ConfigError(f"download.{key}: expected a number >= {low}, got {d.get(key)!r}")
    try:
        start = to_unix(d.get("start"))
        end = to_unix(d.get("end"))
    except ValueError as exc:
        raise ConfigError(f"start/end: expected ISO dates (UTC): {exc}") from exc
    if start is None:
        raise ConfigError("start: expected an ISO date (UTC), got null")
    if end is not None and end < start:
        raise ConfigError(f"end: expected a time after start, got {d['end']!r} < {d['start']!r}")
    csv_dir = d["kraken"].get("csv_dir")
    if "csv" in sources and csv_dir is not None and not Path(csv_dir).is_dir():
        raise ConfigError(f"download.kraken.csv_dir: no such folder {csv_dir!r}")
    return {**d, "assets": [asset_of(p) for p in pairs], "sources": sources, "refs": refs,
            "t0": start // HOUR * HOUR, "t1": end}  # fmt: skip


def run(
    cfg: DictConfig,
    out_dir: Path,
    sessions: dict[str, Any] | None = None,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    exchange_options: dict[str, Any] | None = None,
) -> DownloadSummary:
    """Download everything the config asks for.

    ``sessions`` replaces exchanges' HTTP sessions and ``exchange_options`` adds ccxt
    constructor options (tests: a replayer, a shorter ``rateLimit``).
    """
    t_start = time.perf_counter()
    if cfg.get("exchange", "kraken") != "kraken":
        raise ConfigError(f"exchange: only 'kraken' bars are stored as MarketData, got {cfg.exchange!r} "
                          "(Binance and Coinbase come in as references: download.references)")
    d = check_config(OmegaConf.to_container(cfg.download, resolve=True))  # type: ignore[arg-type]
    last_closed = int(now()) // HOUR * HOUR - HOUR
    t0, t1 = d["t0"], min(d["t1"] if d["t1"] is not None else last_closed, last_closed)
    store = BarStore(d["store"])
    names = ["kraken", *d["refs"]]
    exchanges = {n: make_exchange(n, session=(sessions or {}).get(n), **(exchange_options or {})) for n in names}
    dl = Downloader(store, exchanges, page_limit=int(d["page_limit"]), retries=int(d["retries"]),
                    backoff_s=float(d["backoff_s"]), progress=bool(d["progress"]), now=now, sleep=sleep)  # fmt: skip
    summary = DownloadSummary()
    csv_files = _kraken_files(Path(d["kraken"]["csv_dir"]), None, "USD") if d["kraken"].get("csv_dir") else {}
    for asset in d["assets"]:
        for source in d["sources"]:
            if source == "csv" and asset in csv_files:
                summary.series.append(dl.kraken_csv(csv_files[asset], asset, t0, t1))
            elif source == "trades":
                ohlc_start = last_closed - (OHLC_WINDOW - 2) * HOUR if "ohlc" in d["sources"] else t1 + HOUR
                summary.series.append(dl.kraken_trades(asset, t0, min(t1 + HOUR, ohlc_start)))
            elif source == "ohlc":
                summary.series.append(dl.kraken_ohlc(asset, t0, t1))
        for ref in d["refs"]:
            summary.series.append(dl.reference(ref, asset, t0, t1))
    store.check()
    out_dir.mkdir(parents=True, exist_ok=True)
    if d["refs"]:
        summary.flags = _integrity_report(store, d, t0, t1, out_dir)
    summary.seconds = time.perf_counter() - t_start
    (out_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=1))
    print(summary.text())
    return summary


def _integrity_report(store: BarStore, d: dict[str, Any], t0: int, t1: int, out_dir: Path) -> dict[str, int]:
    """integrity.csv / integrity_events.csv / integrity.png for the downloaded Kraken pairs; flags per asset."""
    from envs.data.integrity import IntegrityConfig, check_market, reference_closes
    from envs.data.store import load_store

    stored = {p for ex, p in store.series() if ex == "kraken"}
    assets = [a for a in d["assets"] if pair_key(a, "USD") in stored]
    if not assets:
        return {}
    market = load_store(store.root, assets=assets, start=t0, end=t1, reference=None, verify=False)
    refs = reference_closes(store, market, d["refs"])
    config = IntegrityConfig.from_mapping(d.get("integrity") or {}, section="download.integrity")
    report = check_market(market, refs, config)
    table = report.table()
    table.to_csv(out_dir / "integrity.csv")
    report.events().to_csv(out_dir / "integrity_events.csv", index=False)
    report.plot(out_dir / "integrity.png")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    return {a: int(table.loc[a, "flagged"]) for a in table.index}


main = hydra_main(run, "download_data")


if __name__ == "__main__":
    main()
