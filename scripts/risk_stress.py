"""Stress replay of the risk layer: bare vs each profile, max drawdown, rules, realised exposure.

    python scripts/risk_stress.py                                   # Kraken 2022-05/06 crash
    python scripts/risk_stress.py stress.start=2021-05-10 data.start=2021-03-01 data.end=2021-07-31

Writes ``stress.csv`` (one row per run), ``interventions.csv`` and ``stress.png`` (equity and
realised exposure over the stretch); the last line is ``outputs: <folder>``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from envs.config import EnvConfig
from envs.kraken_spot import KrakenSpotEnv
from krakenrl.cli import hydra_main
from risk import PRESETS, RiskWrapper
from risk.stress import StressResult, run_stress

matplotlib.use("Agg")
import matplotlib.pyplot as plt

log = logging.getLogger(__name__)


def run(cfg: DictConfig, out_dir: Path) -> pd.DataFrame:
    market = instantiate(cfg.data)
    env_cfg = {**OmegaConf.to_container(cfg.env, resolve=True), "start": cfg.stress.start, "start_mode": "fixed",
               "episode_hours": int(cfg.stress.hours), "record_history": False}  # type: ignore[dict-item]
    full = np.r_[np.ones(market.n_assets), 0.0]
    results: dict[str, StressResult] = {}
    for name in ["bare", *cfg.stress.profiles]:
        env = KrakenSpotEnv(market=market, config=EnvConfig.from_mapping(env_cfg))
        limit = np.inf
        if name != "bare":
            lim = PRESETS[name]
            env, limit = RiskWrapper(env, lim), lim.max_gross_exposure
        results[name] = run_stress(env, full, limit)
        log.info("%s: %s", name, results[name].row())
    out_dir.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame({k: r.row() for k, r in results.items()}).T
    table.to_csv(out_dir / "stress.csv")
    rules = pd.DataFrame({k: r.interventions for k, r in results.items() if k != "bare"}).fillna(0).astype(int)
    rules.to_csv(out_dir / "interventions.csv")
    fig, ax = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name, r in results.items():
        ax[0].plot(r.equity, label=f"{name} (max DD {r.max_drawdown:.1%})")
        ax[1].plot(r.exposure, label=name)
    ax[0].set_ylabel("equity (USD)")
    ax[1].set_ylabel("realised exposure")
    ax[1].set_xlabel(f"hours from {cfg.stress.start}")
    for a in ax:
        a.legend()
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "stress.png", dpi=100)
    plt.close(fig)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string())
        print(rules.to_string())
    return table


main = hydra_main(run, "risk_stress")


if __name__ == "__main__":
    main()
