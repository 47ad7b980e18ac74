"""Walk-forward training of the predictors; writes the prediction store and an MLflow run.

    python scripts/train_predictors.py                          # synthetic market
    python scripts/train_predictors.py predictor=fast walk_forward.max_folds=3
    python scripts/train_predictors.py executor=ray executor.workers=2     # (fold x model) tasks on Ray
    python scripts/train_predictors.py data=csv data.path=../shared/data/binance/spot_1h \\
        data.start=2023-01-01 data.end=2023-12-31T23:00:00Z

Outputs (in the Hydra run folder): predictions.parquet, regimes.parquet, metrics.json,
auc_per_fold.png, feature_importance.{csv,json,png}, mlflow.db + mlartifacts/. Open the
MLflow UI with ``mlflow ui --backend-store-uri sqlite:///<folder>/mlflow.db``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from envs.data.market import MarketData
from krakenrl.cli import build, hydra_main
from predictors.pipeline import run_walk_forward
from predictors.regime import REGIMES
from predictors.store import write_store
from predictors.tracking import evaluate, importance_table, log_walk_forward
from predictors.walk_forward import (
    FoldResult,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt

log = logging.getLogger(__name__)


def _iso(seconds: int) -> str:
    return pd.Timestamp(int(seconds), unit="s", tz="UTC").isoformat()


def _plots(out_dir: Path, summary: dict[str, Any], importances: dict[str, dict[str, float]]) -> None:
    folds = pd.DataFrame(summary["folds"])
    horizons = sorted(folds["horizon"].unique())
    fig, axes = plt.subplots(1, len(horizons), figsize=(5 * len(horizons), 4), sharey=True, squeeze=False)
    for ax, h in zip(axes[0], horizons, strict=True):
        sub = folds[folds["horizon"] == h].pivot_table(index="fold", columns="model", values="auc")
        sub.plot(ax=ax, marker="o")
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_title(f"out-of-sample AUC, {h}h label")
        ax.set_xlabel("fold")
    axes[0][0].set_ylabel("AUC")
    fig.tight_layout()
    fig.savefig(out_dir / "auc_per_fold.png", dpi=100)
    plt.close(fig)
    if importances:
        table = pd.DataFrame(importances).fillna(0.0)
        table["mean"] = table.mean(axis=1)
        table = table.sort_values("mean", ascending=False)
        table.to_csv(out_dir / "feature_importance.csv")
        (out_dir / "feature_importance.json").write_text(json.dumps(importances, indent=2))
        top = table["mean"].head(25)[::-1]
        fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1.5))
        ax.barh(top.index, top.to_numpy())
        ax.set_xlabel("mean normalised importance (tree families)")
        fig.tight_layout()
        fig.savefig(out_dir / "feature_importance.png", dpi=100)
        plt.close(fig)


def _regime_scores(results: list[FoldResult], rule: np.ndarray, market: MarketData) -> dict[str, float]:
    """Accuracy of the out-of-sample regime argmax vs the rule labels (and true labels, synthetic)."""
    pred = np.concatenate([r.oof.regime.argmax(axis=1) for r in results])
    t = np.concatenate([r.oof.t_idx for r in results])
    a = np.concatenate([r.oof.a_idx for r in results])
    out: dict[str, float] = {}
    known = rule[t, a] >= 0
    if known.any():
        out["accuracy_vs_rule"] = float(np.mean(pred[known] == rule[t, a][known]))
    if market.regimes is not None:
        out["accuracy_vs_true"] = float(np.mean(pred == market.regimes[t]))
    return out


def _executor_summary(wf_run: Any) -> dict[str, Any]:
    """The executor's record of the run: which, how many workers, tasks, retries, speed-up."""
    t = wf_run.tasks
    if t is None:
        return {}
    return {"name": t.executor, "workers": t.workers, "tasks": t.tasks, "computed": t.computed, "cached": t.cached,
            "retries": t.retries, "wall_s": t.wall_seconds, "task_s": t.task_seconds, "speedup": t.speedup}


def _table(summary: dict[str, Any]) -> str:
    rows = [
        {"model": m, "horizon": int(h), **{k: v for k, v in s.items()}}
        for m, per_h in summary["overall"].items()
        for h, s in per_h.items()
    ]
    df = pd.DataFrame(rows).sort_values(["horizon", "model"]).set_index(["horizon", "model"])
    df["n"] = df["n"].astype(int)
    return df.to_string(float_format=lambda v: f"{v:.4f}")


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """The whole walk-forward; returns the metrics summary (also written to metrics.json)."""
    t_start = time.perf_counter()
    market = build(cfg.data, MarketData, "data")
    plain: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    wf_run = run_walk_forward(market, plain, progress=bool(cfg.progress), cache_dir=Path(str(cfg.cache_dir)) / "tasks")
    results, folds, panel, rule = wf_run.results, wf_run.folds, wf_run.panel, wf_run.rule
    fit_seconds = wf_run.fit_seconds

    out_dir.mkdir(parents=True, exist_ok=True)
    write_store(results, market, out_dir)
    summary = evaluate(results)
    importances = importance_table(results, panel.names)
    secs: dict[str, float] = {}
    for r in results:
        for k, v in r.seconds.items():
            secs[k] = secs.get(k, 0.0) + v

    def ts(i: int) -> str:
        return _iso(market.timestamps[i])

    summary.update(
        period={"start": ts(folds[0].test_start), "end": ts(folds[-1].test_stop - 1)},
        train_period={"start": ts(folds[0].train_start), "end": ts(results[-1].train_end)},
        folds_meta=[
            {
                "fold": r.fold.index,
                "train_start": ts(r.fold.train_start),
                "train_end": ts(r.train_end),
                "test_start": ts(r.fold.test_start),
                "test_end": ts(r.fold.test_stop - 1),
            }
            for r in results
        ],
        regime=_regime_scores(results, rule, market),
        regime_names=list(REGIMES),
        timing_s={"walk_forward": fit_seconds, "per_model": secs},
        executor=_executor_summary(wf_run),
        n_assets=market.n_assets,
        n_bars=market.n_bars,
        features=list(panel.names),
    )
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2, default=float))
    _plots(out_dir, summary, importances)

    if cfg.mlflow.enabled:
        summary["mlflow"] = log_walk_forward(
            out_dir, summary, results, OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
            experiment=str(cfg.mlflow.experiment), log_models=bool(cfg.mlflow.log_models),
            register=bool(cfg.mlflow.register),
        )
        (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2, default=float))
    print(_table(summary))
    print(f"regime: {summary['regime']}")
    print(f"walk-forward: {len(folds)} folds, {fit_seconds:.1f} s fitting, {time.perf_counter() - t_start:.1f} s total")
    return summary


main = hydra_main(run, "train_predictors")


if __name__ == "__main__":
    main()
