"""One call from a market and the predictor config to walk-forward results.

Shared by ``scripts/train_predictors.py`` (the predictors alone) and the policy pipeline
(`agents.pipeline`: the prediction store a policy trains and is evaluated on), so the two
build the store the same way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.data.market import MarketData
from envs.errors import ConfigError
from krakenrl.parallel import RunSummary, executor_config
from predictors.features import FeatureConfig, FeaturePanel
from predictors.meta import MetaConfig
from predictors.regime import RegimeRuleConfig
from predictors.walk_forward import (
    Fold,
    FoldResult,
    ModelSpec,
    WalkForward,
    WalkForwardConfig,
    dataset_from_market,
    make_folds,
)


def as_tuples(obj: Any) -> Any:
    """Plain containers with lists as tuples (the config dataclasses want tuples)."""
    if isinstance(obj, Mapping):
        return {k: as_tuples(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return tuple(as_tuples(v) for v in obj)
    return obj


@dataclass
class WalkForwardRun:
    results: list[FoldResult]
    folds: list[Fold]
    panel: FeaturePanel
    rule: np.ndarray  # rule-based regime labels (T, N)
    fit_seconds: float
    tasks: RunSummary | None = None  # the executor's summary: tasks, retries, cached, speed-up


def run_walk_forward(market: MarketData, cfg: Mapping[str, Any], progress: bool = False,
                     cache_dir: str | Path | None = None) -> WalkForwardRun:
    """Walk-forward over ``market`` with ``cfg`` (keys: horizons, round_trip_fee, features,
    regime_rule, walk_forward, predictor — the ``train_predictors`` config, as plain values —
    and optionally ``executor``, the ``conf/executor`` node; serial when absent).

    ``cache_dir``: completed (fold, model) tasks are kept there until the run finishes, so a
    rerun after a failure fits only the missing ones."""
    executor = executor_config(cfg.get("executor"))  # checked before the features are built
    horizons = tuple(int(h) for h in cfg["horizons"])
    ds, panel, rule = dataset_from_market(
        market,
        horizons,
        float(cfg["round_trip_fee"]),
        FeatureConfig.from_mapping(cfg.get("features") or {}),
        RegimeRuleConfig.from_mapping(cfg.get("regime_rule") or {}),
    )
    wf = WalkForwardConfig.from_mapping(cfg["walk_forward"])
    folds = make_folds(market.n_bars, wf, horizons, first_bar=int(ds.t_idx.min()))
    if not folds:
        raise ConfigError(
            f"walk_forward: no fold fits in {market.n_bars} bars (features valid from bar "
            f"{int(ds.t_idx.min())}, "
            f"min_train_bars={wf.min_train_bars}, embargo={wf.embargo}); use more data or smaller windows"
        )
    p = cfg["predictor"]
    spec = ModelSpec(
        families=tuple(p["families"]),
        params={k: as_tuples(v) for k, v in dict(p["models"]).items()},
        meta=MetaConfig.from_mapping(p["meta"]),
        regime_params=as_tuples(dict(p["regime"])),
        seed=int(p["seed"]),
    )
    t0 = time.perf_counter()
    wf_runner = WalkForward(ds, spec, progress=progress)
    results = wf_runner.run(folds, executor, cache_dir)
    return WalkForwardRun(results, folds, panel, rule, time.perf_counter() - t0, wf_runner.summary)


__all__ = ["WalkForwardRun", "as_tuples", "run_walk_forward"]
