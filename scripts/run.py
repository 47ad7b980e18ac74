"""The main job: load and validate the configured market, print and save its summary.

    python scripts/run.py                                   # built-in synthetic market
    python scripts/run.py data=csv data.path=../shared/data/binance/spot_1h
    python scripts/run.py data=kraken_csv data.path=../shared/data/kraken/ohlcvt_1h

Later issues grow this into train -> evaluate. Bad data exits non-zero with a message
naming the file, asset, row and value.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from envs.data.align import iso
from envs.data.market import MarketData
from envs.data.parquet_cache import save_parquet
from envs.data.summary import market_summary
from envs.errors import KrakenRLError

log = logging.getLogger(__name__)


def load_market(cfg: DictConfig) -> MarketData:
    """Instantiate the ``data`` config group into a validated MarketData."""
    market = instantiate(cfg.data)
    if not isinstance(market, MarketData):
        raise TypeError(f"data config must build a MarketData, got {type(market).__name__}")
    return market


def run(cfg: DictConfig, out_dir: Path) -> pd.DataFrame:
    """Load the market, write ``summary.csv`` and ``market.parquet`` to ``out_dir``, return the table."""
    market = load_market(cfg)
    table = market_summary(market)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "summary.csv")
    save_parquet(market, out_dir / "market.parquet")
    period = f"{iso(int(market.timestamps[0]))} -> {iso(int(market.timestamps[-1]))} UTC"
    print(f"market: {market.source}  assets: {market.n_assets}  hourly bars: {market.n_bars}  period: {period}")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.2f}".format):
        print(table.to_string())
    return table


@hydra.main(config_path="../conf", config_name="run", version_base="1.3")
def main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        run(cfg, out_dir)
    except KrakenRLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"outputs: {out_dir}")


if __name__ == "__main__":
    main()
