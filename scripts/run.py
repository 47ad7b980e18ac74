"""The main job: market summary -> predictors -> policy -> held-out evaluation -> report.

    python scripts/run.py                                   # planted-edge synthetic market (conf/run.yaml)
    python scripts/run.py data=csv data.path=../shared/data/binance/spot_1h \
        data.start=2022-01-01 data.end=2023-06-30T23:00:00Z eval.start=2023-07-01 eval.end=2023-12-31T23:00:00Z
    python scripts/run.py stages=[summary] data=kraken_csv data.path=../shared/data/kraken/ohlcvt_1h

Stages (``stages``): ``summary`` (validate the market, print and save its summary),
``train`` (scripts/train.py into ``<out>/train``: the training market ends at ``data.end``),
``evaluate`` (scripts/evaluate.py into ``<out>/evaluate`` on ``eval.start .. eval.end``,
which must come after the training data). The metrics table against the baselines is
printed; the last line is ``outputs: <folder>``. Bad data exits non-zero with a message
naming the file, asset, row and value.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from envs.data.align import iso
from envs.data.market import MarketData
from envs.data.parquet_cache import save_parquet
from envs.data.summary import market_summary
from envs.errors import ConfigError
from krakenrl.cli import build, hydra_main

log = logging.getLogger(__name__)


def run(cfg: DictConfig, out_dir: Path) -> pd.DataFrame:
    """Load the market, write ``summary.csv`` and ``market.parquet`` to ``out_dir``, return the table."""
    market = build(cfg.data, MarketData, "data")
    table = market_summary(market)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "summary.csv")
    save_parquet(market, out_dir / "market.parquet")
    period = f"{iso(int(market.timestamps[0]))} -> {iso(int(market.timestamps[-1]))} UTC"
    print(f"market: {market.source}  assets: {market.n_assets}  hourly bars: {market.n_bars}  period: {period}")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.2f}".format):
        print(table.to_string())
    return table


STAGES = ("summary", "train", "evaluate", "walk_forward")


def _script(name: str) -> Any:
    """A sibling entry point as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"krakenrl_script_{name}", Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluate_config(cfg: DictConfig, train_dir: Path) -> DictConfig:
    """The evaluate.py config of this run: its own keys plus ``run=<train folder>``."""
    keys = ("data", "predictor", "walk_forward", "env", "risk", "horizons", "round_trip_fee", "features",
            "regime_rule", "eval", "baselines", "progress", "cache_dir", "n_boot", "report", "executor")
    out = OmegaConf.create({k: cfg[k] for k in keys if k in cfg})
    out.run = str(train_dir)
    return out


def main_job(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """The configured stages in order; returns what each produced."""
    stages = list(cfg.stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"stages: unknown {unknown}; expected a subset of {list(STAGES)}")
    done: dict[str, Any] = {}
    if "summary" in stages:
        done["summary"] = run(cfg, out_dir)
    train_dir = out_dir / "train"
    if "train" in stages:
        done["train"] = _script("train").train(cfg, train_dir)
    if "evaluate" in stages:
        done["evaluate"] = _script("evaluate").evaluate(evaluate_config(cfg, train_dir), out_dir / "evaluate")
        print(f"report: {out_dir / 'evaluate' / 'report.html'}")
    if "walk_forward" in stages:
        done["walk_forward"] = walk_forward_windows(cfg, out_dir / "windows")
    return done


def walk_forward_windows(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """``windows.n`` consecutive train -> test windows ending at ``eval.end``; per window and pooled.

    The windows are independent tasks through ``cfg.executor`` (each trains and evaluates on its
    own, into its own folder; with a parallel executor, each window's predictors run serially
    inside it); the pooled result does not depend on the executor.
    """
    from agents.windows import window_splits
    from krakenrl.parallel import Task, executor_config, run_tasks
    from krakenrl.parallel.scripts import ScriptCall, call_script

    windows = window_splits(str(cfg.eval.end), int(cfg.windows.n), int(cfg.windows.test_hours))
    executor = executor_config(cfg.get("executor"))
    plain = OmegaConf.to_container(cfg, resolve=True)
    tasks = [Task(f"window={w.index}", f"window {w.index}", ScriptCall(__file__, "run_window", (plain, w, str(out_dir),
                                                                                                 executor.name)))
             for w in windows]
    outs, _ = run_tasks(call_script, tasks, executor, desc="walk-forward windows", progress=bool(cfg.progress))
    return pool_windows(cfg, out_dir, windows, outs)


def run_window(plain: dict[str, Any], w: Any, out_dir: str, executor: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """One window (a task, self-contained): train to ``w.train_end``, evaluate ``w``'s test period."""
    train, evaluate = _script("train"), _script("evaluate")
    wcfg = OmegaConf.create(plain)
    OmegaConf.set_struct(wcfg, False)
    wcfg.data.end, wcfg.eval.start, wcfg.eval.end = w.train_end, w.eval_start, w.eval_end
    if executor != "serial" and "executor" in wcfg:  # the windows are the parallel unit: no nested pools
        wcfg.executor.name, wcfg.executor.workers, wcfg.executor.address = "serial", 1, None
    folder = Path(out_dir) / f"w{w.index}"
    print(f"window {w.index}: train to {w.train_end}, test {w.eval_start} .. {w.eval_end}")
    train.train(wcfg, folder / "train")
    doc, results = evaluate.evaluate_results(evaluate_config(wcfg, folder / "train"), folder / "evaluate")
    summary = {"window": w.index, "train_end": w.train_end, "period": doc["period"],
               "strategies": {k: {m: v.get(m) for m in ("total_return", "sharpe", "max_drawdown", "fees_paid",
                                                          "probabilistic_sharpe")}
                              for k, v in doc["strategies"].items()}}
    return summary, results


def pool_windows(cfg: DictConfig, out_dir: Path, windows: list[Any], outs: list[Any]) -> dict[str, Any]:
    """Pool the windows' episodes per strategy; write metrics.json and the report; print the table."""
    from agents.evaluation import metrics_document, write_metrics
    from agents.report import write_report
    from agents.windows import pool_results

    per_window: list[dict[str, Any]] = []
    episodes: dict[str, list[Any]] = {}
    for summary, results in outs:
        per_window.append(summary)
        for name, res in results.items():
            episodes.setdefault(name, []).append(res)
    pooled = {name: pool_results(rs) for name, rs in episodes.items() if len(rs) == len(windows)}
    doc = metrics_document(pooled, (windows[0].eval_start, windows[-1].eval_end), None,
                           extra={"windows": per_window}, n_boot=int(cfg.n_boot))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_metrics(out_dir / "metrics.json", doc)
    write_report(out_dir, doc, pooled, title="krakenrl walk-forward windows, pooled")
    rows = {f"w{p['window']}:{k}": v for p in per_window for k, v in p["strategies"].items()}
    rows.update({f"pooled:{k}": {m: v.get(m) for m in ("total_return", "sharpe", "max_drawdown", "fees_paid",
                                                        "probabilistic_sharpe")}
                 for k, v in doc["strategies"].items()})
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(pd.DataFrame(rows).T.to_string(float_format=lambda v: f"{v:.4g}"))
    return doc


main = hydra_main(main_job, "run")


if __name__ == "__main__":
    main()
