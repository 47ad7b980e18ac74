"""Evaluate a trained run (or the baselines alone) on a held-out period: metrics.json + report.html.

    python scripts/evaluate.py run=outputs/train/<run> eval.start=2022-10-01 eval.end=2022-12-31T23:00:00Z
    python scripts/evaluate.py run=outputs/train_multirun/<sweep> eval.start=... eval.end=...
    python scripts/evaluate.py data=csv data.path=../shared/data/binance/spot_1h eval.start=... eval.end=...

- Refuses (exit 2) an evaluation period that overlaps what the run saw: its market, hence
  its policy's training period and every predictor fold's training window; the message
  names both periods.
- Extends the prediction store honestly: the run's predictors walk forward over the
  market up to ``eval.end`` (each fold trained only on bars before it, as in live use);
  the predictions it shares with the training store are compared (``store_extension``).
  The policy is never refit.
- Runs every strategy deterministically through the same env, fees and risk layer: the
  hierarchical policy (``policy``), the flat PPO ablation (``flat_ppo``) and the baselines.
  A multirun folder evaluates every seed (``policy_s<seed>``); ``policy`` is then the seed
  with the best *validation* Sharpe (chosen on training data). A search folder
  (scripts/search.py) evaluates its best trial.
- The deflated Sharpe ratio counts the trials of the record that lists the selected run
  (``trials.json`` of its multirun or search, `agents.trials`): its true number of trials
  (complete, pruned and failed) and the variance of their validation Sharpe ratios;
  ``metrics.json`` shows both (``trials``; each strategy's ``n_trials`` and
  ``trial_sharpe_variance``). Runs without a record count the evaluated runs, with the
  variance of their held-out Sharpe ratios.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from agents.baselines import EpisodeResult, default_baselines, run_policy
from agents.envs import evaluation_env
from agents.evaluation import (
    atomic_write,
    in_cash_until,
    ladder_check,
    metrics_document,
    predictor_quality,
    regime_labels,
    write_metrics,
)
from agents.metrics import sharpe_ratio
from agents.operator import SimulatedOperator
from agents.pipeline import (
    PREDICTOR_KEYS,
    Period,
    StoreInfo,
    TrainPeriod,
    check_no_overlap,
    prediction_store,
    store_signals,
    utc,
)
from agents.policies import FlatPolicy, HierarchicalPolicy
from agents.report import markdown_table, write_report
from agents.training import AgentConfig
from agents.trials import COUNTING, RECORD, read_record, record_for_run, trial_statistics
from envs.config import EnvConfig
from envs.data.market import MarketData
from envs.errors import ConfigError
from krakenrl.cli import build, hydra_main
from predictors.store import read_predictions, read_regimes
from risk.limits import RiskLimits

log = logging.getLogger(__name__)
TABLE_KEYS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "fees_paid", "n_trades",
              "probabilistic_sharpe", "deflated_sharpe")
RUN_GROUPS = ("data", "env", "risk")


def find_runs(run: str | Path) -> list[Path]:
    """The run folder itself, a search's best trial, or every run folder inside a multirun folder (sorted)."""
    path = Path(run)
    if (path / "train_period.json").is_file():
        return [path]
    if (path / RECORD).is_file():
        record = read_record(path / RECORD)
        if record.get("kind") == "search":  # the best trial by validation Sharpe (chosen on training data)
            if not record.get("best"):
                raise ConfigError(f"run={run}: the search has no complete trial yet ({path / RECORD})")
            return [path / str(record["best"]["run"])]
    runs = sorted(p.parent for p in path.glob("*/train_period.json"))
    if not runs:
        raise ConfigError(f"run={run}: no train_period.json in it or its subfolders (a scripts/train.py output)")
    return runs


def _cli_overrides() -> list[str]:
    """The command line's overrides (empty when not under Hydra: tests call evaluate() directly)."""
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


def _group_overrides(group: str, overrides: list[str]) -> tuple[bool, list[str]]:
    """(was ``group=option`` chosen, the dotted keys ``group.x.y`` set) on the command line."""
    keys = [o.lstrip("+~").split("=", 1)[0] for o in overrides]
    return group in keys, [k for k in keys if k.startswith(group + ".")]


def effective_config(cfg: DictConfig, run_cfg: DictConfig | None) -> DictConfig:
    """The run's data/env/risk/predictor config unless the command line overrides a group; data.end = eval.end.

    ``data.start`` stays the run's, so the walk-forward folds start where the training
    store's did and the store is extended, not rebuilt differently.
    """
    merged = cfg.copy()
    OmegaConf.set_struct(merged, False)
    if run_cfg is not None:
        overrides = _cli_overrides()
        for group in RUN_GROUPS:
            chosen, dotted = _group_overrides(group, overrides)
            if chosen:  # data=csv ...: the command line's group replaces the run's
                continue
            patched = run_cfg[group].copy()  # the run's group with the command line's data.x=... on top
            OmegaConf.set_struct(patched, False)
            for key in dotted:
                OmegaConf.update(patched, key.split(".", 1)[1], OmegaConf.select(cfg, key), force_add=True)
            merged[group] = patched
        for key in PREDICTOR_KEYS:  # the store must be built exactly as in training
            merged[key] = run_cfg[key]
    OmegaConf.set_struct(merged, False)
    if "end" in merged.data:  # the evaluation market runs to the end of the evaluation period
        merged.data.end = str(cfg.eval.end)
    return merged


def eval_period(market: MarketData, start: str, end: str) -> Period:
    s, e = utc(start, "eval.start"), utc(end, "eval.end")
    lo = int(np.searchsorted(market.timestamps, int(s.timestamp()), side="left"))
    hi = int(np.searchsorted(market.timestamps, int(e.timestamp()), side="right")) - 1
    if lo >= market.n_bars or hi <= lo:
        first, last = Period.of(market, 0, market.n_bars - 1).to_dict().values()
        raise ConfigError(f"evaluation period {start} .. {end} has no bars in the market ({first} .. {last})")
    return Period.of(market, lo, hi)


def baselines(cfg: DictConfig) -> list[Any]:
    """The baseline set of `agents.baselines.default_baselines` with the config's knobs."""
    b = cfg.baselines
    rule: dict[str, Any] = OmegaConf.to_container(b.rule, resolve=True) if b.rule else {}  # type: ignore[assignment]
    return default_baselines(int(b.k), int(b.every_hours), str(b.buy_and_hold), rule)


def store_extension(store: StoreInfo, cache_dir: Path, train_key: str | None) -> dict[str, Any]:
    """Compare the extended store with the training store where they overlap (same predictions expected)."""
    if train_key is None:
        return {"training_store": None}
    old_dir = cache_dir / "predictions" / train_key
    if not (old_dir / "predictions.parquet").is_file():
        return {"training_store": train_key, "compared": False, "note": "training store not in the cache"}
    keys = ["timestamp", "asset", "horizon", "model"]
    old = read_predictions(old_dir)
    new = read_predictions(store.folder)
    both = old.merge(new, on=keys, suffixes=("_train", "_eval"))
    diff = 0.0
    if len(both):
        diff = float(np.nanmax(np.abs(np.r_[both["p_up_train"] - both["p_up_eval"],
                                            both["exp_return_train"] - both["exp_return_eval"]])))
    return {"training_store": train_key, "compared": True, "rows_compared": len(both),
            "training_rows": len(old), "max_abs_diff": diff}


def evaluate(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Evaluate, write metrics.json (and report.html); returns the metrics document."""
    return evaluate_results(cfg, out_dir)[0]


def evaluate_results(cfg: DictConfig, out_dir: Path) -> tuple[dict[str, Any], dict[str, EpisodeResult]]:
    """`evaluate`, also returning the episodes behind the document (walk-forward windows pool them)."""
    t0 = time.perf_counter()
    runs = find_runs(cfg.run) if cfg.run else []
    periods = [TrainPeriod.read(r) for r in runs]
    for r, p in zip(runs, periods, strict=True):
        check_no_overlap(str(cfg.eval.start), str(cfg.eval.end), p, r)
    run_cfg = OmegaConf.load(runs[0] / "config.yaml") if runs else None
    _check_same_setup(runs)
    keys = {p.store_key for p in periods}
    if len(keys) > 1:
        raise ConfigError(f"run={cfg.run}: the runs were trained on different prediction stores {sorted(keys)}")
    eff = effective_config(cfg, run_cfg)  # type: ignore[arg-type]
    plain: dict[str, Any] = OmegaConf.to_container(eff, resolve=True)  # type: ignore[assignment]
    market = build(eff.data, MarketData, "data")
    period = eval_period(market, str(cfg.eval.start), str(cfg.eval.end))
    cache = Path(str(cfg.cache_dir))
    store = prediction_store(market, plain, cache, progress=bool(cfg.progress))
    signals, names = store_signals(store, market, plain["horizons"])
    limits = build(eff.risk, RiskLimits, "risk")
    env_cfg = EnvConfig.from_mapping(plain["env"])
    logging.getLogger("risk.kill_switch").setLevel(logging.ERROR)

    period_bars = market.timestamps[period.start : period.end + 1]

    after = cfg.eval.get("reactivate_after_hours")
    reactivations: dict[str, int] = {}

    def rollout(policy: Any, mode: str = "weights") -> EpisodeResult:
        """One deterministic episode over the period; a halted account then sits in cash to the end."""
        env = evaluation_env(market, signals, names, env_cfg, limits, period, action_mode=mode)
        operator = SimulatedOperator(int(after)) if after is not None else None
        result = run_policy(env, policy, seed=int(cfg.eval.seed), operator=operator)
        if operator is not None:
            reactivations[result.name] = operator.reactivations
        return in_cash_until(result, period_bars)

    results: dict[str, EpisodeResult] = {}
    trials: dict[str, list[float]] = {}
    extra: dict[str, Any] = {"n_runs": len(runs)}
    provenance: dict[str, Any] = {"runs": [str(r) for r in runs]}
    if runs:
        _evaluate_runs(cfg, runs, rollout, results, trials, extra, provenance)
    for b in baselines(cfg):
        results[b.name] = rollout(b)
    regimes = read_regimes(store.folder)
    labels = regime_labels(regimes, market, period.start, period.end + 1)
    pq = predictor_quality(read_predictions(store.folder), market, period.start, period.end + 1,
                           tuple(plain["horizons"]), float(plain["round_trip_fee"]))
    extra["store"] = {"key": store.key, "folds": store.folds}
    provenance["store"] = {"folder": str(store.folder), "cached": store.cached}
    extra["store_extension"] = store_extension(store, cache, periods[0].store_key if periods else None)
    extra["risk_profile"] = dataclasses.asdict(limits)
    extra["ladder"] = {name: ladder_check(res, limits.dd_halt) for name, res in results.items()}
    extra["kill_switch_operator"] = (
        {"reactivate_after_hours": int(after), "reactivations": reactivations} if after is not None
        else "none: an engaged kill switch stays engaged to the end of the period (no operator in a backtest)"
    )
    counts = {k: v for k, v in extra.pop("_trial_counts", {}).items() if k in results}
    doc = metrics_document(
        results, period.to_dict(), _train_period(periods), trial_sharpes={k: v for k, v in trials.items() if v},
        trial_counts=counts,
        regime_labels=labels, predictor_quality_df=pq, extra=extra,
        regime_timestamps=market.timestamps[period.start : period.end + 1], n_boot=int(cfg.n_boot),
        seed=int(cfg.eval.seed),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    write_metrics(out_dir / "metrics.json", doc)  # same runs and config -> the same file, byte for byte
    write_metrics(out_dir / "provenance.json", provenance)  # where things were on this machine
    atomic_write(out_dir / "metrics.md", markdown_table(doc).encode())
    if cfg.report:
        write_report(out_dir, doc, results, pq)
    _print(doc, period, time.perf_counter() - t0)
    return doc, results


def _check_same_setup(runs: list[Path]) -> None:
    """Runs evaluated together must share market, env, risk and predictor config (seeds and agent may differ)."""
    if len(runs) < 2:
        return
    keys = (*RUN_GROUPS, *PREDICTOR_KEYS)
    first = OmegaConf.to_container(OmegaConf.load(runs[0] / "config.yaml"), resolve=True)
    for run in runs[1:]:
        other = OmegaConf.to_container(OmegaConf.load(run / "config.yaml"), resolve=True)
        differ = [k for k in keys if first.get(k) != other.get(k)]  # type: ignore[union-attr]
        if differ:
            raise ConfigError(f"run={run.parent}: {run.name} differs from {runs[0].name} in {differ}; "
                              "evaluate runs with different data, env, risk or predictors separately")


def _train_period(periods: list[TrainPeriod]) -> dict[str, str] | None:
    if not periods:
        return None
    return {"start": min(p.start for p in periods), "end": max(p.end for p in periods)}


def _evaluate_runs(cfg: DictConfig, runs: list[Path], rollout: Any, results: dict[str, EpisodeResult],
                   trials: dict[str, list[float]], extra: dict[str, Any], provenance: dict[str, Any]) -> None:
    """Every run's hierarchical policy and flat ablation; ``policy``/``flat_ppo`` = best validation Sharpe."""
    import json

    per_run: list[dict[str, Any]] = []
    for run in runs:
        run_cfg = OmegaConf.load(run / "config.yaml")
        agent = AgentConfig.from_mapping(OmegaConf.to_container(run_cfg.agent, resolve=True))  # type: ignore[arg-type]
        executor = str(cfg.eval.executor or agent.executor)
        trial = json.loads((run / "trial.json").read_text())
        val = trial.get("validation_sharpe_per_period", {})
        entry: dict[str, Any] = {"run": str(run), "seed": agent.seed, "executor": executor, "validation": val}
        if agent.hierarchical:
            mode = "execution" if executor == "tactical" else "weights"
            pol = HierarchicalPolicy(run / "models", agent.algo, agent.every_hours, executor,
                                     name=f"policy_s{agent.seed}")
            entry["policy"] = rollout(pol, mode)
        if agent.train_flat and (run / "models" / "flat" / "model.zip").is_file():
            entry["flat_ppo"] = rollout(FlatPolicy(run / "models" / "flat", agent.algo, name=f"flat_ppo_s{agent.seed}"))
        per_run.append(entry)
    for kind in ("policy", "flat_ppo"):
        have = [e for e in per_run if kind in e]
        if not have:
            continue

        def score(e: dict[str, Any], kind: str = kind) -> float:
            v = e["validation"].get(kind)
            return float(v) if v is not None and np.isfinite(v) else -np.inf

        best = max(have, key=score)
        results[kind] = best[kind]
        found = record_for_run(Path(best["run"]))
        if found is not None:  # the trial record: every trial of the search / multirun, with its validation Sharpe
            path, record = found
            sharpes, n_trials = trial_statistics(record, kind)
            trials[kind] = sharpes
            extra.setdefault("_trial_counts", {})[kind] = n_trials
            extra.setdefault("trials", {"source": str(path), "kind": record.get("kind"), "counts": record["counts"],
                                        "n_trials": record["n_trials"], "counting": COUNTING, "strategies": {}})
            extra["trials"]["strategies"][kind] = {
                "n_trials": n_trials, "n_sharpes": len(sharpes),
                "sharpe_variance": float(np.var(sharpes, ddof=1)) if len(sharpes) > 1 else None,
                "sharpe_of": "validation sharpe_per_period (the last agent.val_fraction of the training period)"}
            provenance.setdefault("trial_record", str(path))
        else:  # no record (runs trained before it existed): the evaluated runs are the trials
            trials[kind] = [sharpe_ratio(e[kind].returns) for e in have]
            n_trials = len(have)
        if len(have) > 1:
            for e in have:
                results[e[kind].name] = e[kind]
        provenance.setdefault("selection", {})[kind] = best["run"]
        extra.setdefault("selection", {})[kind] = {"seed": best["seed"], "by": "validation sharpe_per_period",
                                                   "n_trials": n_trials}
    extra["executor"] = sorted({e["executor"] for e in per_run})


def _print(doc: dict[str, Any], period: Period, seconds: float) -> None:
    rows = {name: {k: m.get(k) for k in TABLE_KEYS} for name, m in doc["strategies"].items()}
    table = pd.DataFrame(rows).T
    print(f"held-out period {period.start_iso} .. {period.end_iso} ({period.end - period.start} hours), "
          "after fees and slippage, annualised with 365 x 24 periods")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"evaluation: {seconds:.0f} s")


main = hydra_main(evaluate, "evaluate")


if __name__ == "__main__":
    main()
