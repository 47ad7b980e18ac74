"""Train the hierarchical policy (and the flat ablation) on the training period of a market.

    python scripts/train.py experiment=fast
    python scripts/train.py -m experiment=fast agent.seed=0,1,2          # seeds, one run folder each
    python scripts/train.py data=csv data.path=../shared/data/binance/spot_1h \\
        data.start=2022-01-01 data.end=2023-06-30T23:00:00Z

Steps: the market (``data``) -> the walk-forward prediction store (cached under
``cache_dir`` when market and predictor config match) -> the strategic level, then the
tactical level under the frozen strategic policy, then the flat PPO ablation, each on SB3
with `VecNormalize` fitted on the training period only -> a deterministic validation run
on the last ``agent.val_fraction`` of the period (not trained on) -> MLflow (config,
learning curves, validation metrics, models and normalisers, the policy registered) and
TensorBoard (``tensorboard/``).

The run folder holds ``config.yaml``, ``train_period.json`` (what the run saw: evaluate.py
refuses any period overlapping it), ``models/{strategic,tactical,flat}/`` (model.zip,
vecnormalize.pkl), ``trial.json`` (validation Sharpe ratios, ``"complete": true``; written
last: the mark of a finished run), ``timing.json`` and ``validation.json``.
Interrupted? Run the same command with ``hydra.run.dir=<the run folder>``: finished
levels are kept and an unfinished one resumes from its last checkpoint; a complete run
folder with the same config is not trained again. A multirun (``-m``) writes to
``outputs/train_multirun/<name>/<overrides>/`` (conf/hydra/output/krakenrl_resume.yaml), so
the same command again lands in the same folders and only does what is missing;
``trials.json`` in the sweep folder records every job (`agents.trials`), the record evaluate.py's deflated
Sharpe ratio counts. ``hydra/launcher=ray`` runs the jobs as Ray tasks
(hydra_plugins/krakenrl_ray_launcher), ``hydra/launcher=joblib`` as local processes.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from agents.baselines import run_policy
from agents.envs import evaluation_env, training_vec_env
from agents.evaluation import in_cash_until, write_json
from agents.metrics import sharpe_ratio
from agents.pipeline import TrainPeriod, policy_periods, prediction_store, store_signals
from agents.policies import FlatPolicy, HierarchicalPolicy
from agents.search import Reporting, ValidationReporter
from agents.training import AgentConfig, LevelResult, frozen_policy, load_level, train_level
from envs.config import EnvConfig
from envs.data.align import iso
from envs.data.market import MarketData
from krakenrl.cli import build, hydra_main
from risk.limits import RiskLimits

log = logging.getLogger(__name__)

SUMMARY_KEYS = ("total_return", "sharpe", "max_drawdown", "fees_paid", "n_trades", "turnover")
NOT_RUN_KEYS = ("progress", "cache_dir", "tensorboard", "mlflow", "n_boot")  # display, caching, tracking


def train(cfg: DictConfig, out_dir: Path, reporting: Reporting | None = None) -> dict[str, Any]:
    """The whole training run; returns the validation summary (also in validation.json).

    ``reporting`` (scripts/search.py): report the objective's validation Sharpe ratio while
    training, at fixed step marks, to a pruner that may stop the run by raising.
    """
    t_start = time.perf_counter()
    plain: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    agent = AgentConfig.from_mapping(plain["agent"])
    done = complete_run(out_dir, plain)
    if done is not None:
        print(f"run folder {out_dir} is complete with this config: not trained again")
        return done
    limits = build(cfg.risk, RiskLimits, "risk")
    env_cfg = EnvConfig.from_mapping(plain["env"])
    market = build(cfg.data, MarketData, "data")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    store = prediction_store(market, plain, Path(str(cfg.cache_dir)), progress=bool(cfg.progress))
    print(f"prediction store: {store.folder} ({'cached' if store.cached else f'built in {store.fit_seconds:.0f} s'})")
    signals, names = store_signals(store, market, plain["horizons"])
    train_p, val_p = policy_periods(market, signals, agent.val_fraction, agent.episode_hours)
    period = TrainPeriod(
        start=iso(int(market.timestamps[0])), end=iso(int(market.timestamps[-1])),
        policy_start=train_p.start_iso, policy_end=train_p.end_iso,
        validation_start=val_p.start_iso if val_p else None, validation_end=val_p.end_iso if val_p else None,
        predictor_train_end=store.predictor_train_end, store_key=store.key,
    )
    write_json(out_dir / "train_period.json", period.to_dict())
    print(f"policy training period: {train_p.start_iso} .. {train_p.end_iso}"
          + (f"; validation {val_p.start_iso} .. {val_p.end_iso}" if val_p else ""))

    tracker = _tracker(cfg, out_dir)
    sink = tracker.log_metrics_step if tracker is not None else None
    tb = out_dir / "tensorboard" if cfg.tensorboard else None
    models = out_dir / "models"
    logging.getLogger("risk.kill_switch").setLevel(logging.ERROR)  # random training starts trip it often

    def inner(mode: str = "weights") -> Any:
        return training_vec_env(market, signals, names, env_cfg, limits, train_p, agent.n_envs, agent.episode_hours,
                                action_mode=mode)

    context = json.dumps([store.key, plain["env"], plain["risk"], train_p.to_dict()], sort_keys=True, default=str)

    def reporters(level: str) -> list[Any]:
        """The search's validation reporter for the levels of the objective's strategy (none otherwise)."""
        if reporting is None or val_p is None or level not in reporting.levels(agent):
            return []
        offset = agent.strategic_timesteps if level == "tactical" else 0

        def score(model: Any) -> float:
            policy, mode = _live_policy(agent, level, (model, model.get_env()), models)
            env = evaluation_env(market, signals, names, env_cfg, limits, val_p, action_mode=mode)
            bars = market.timestamps[val_p.start : val_p.end + 1]
            return sharpe_ratio(in_cash_until(run_policy(env, policy, seed=agent.seed), bars).returns)

        return [ValidationReporter(score, reporting.report, reporting.every, offset)]

    timing: list[LevelResult] = []
    if agent.hierarchical:
        timing.append(train_level(agent, "strategic", inner, models / "strategic", agent.strategic_timesteps,
                                  tensorboard=tb, sink=sink, progress=bool(cfg.progress), context=context,
                                  callbacks=reporters("strategic")))
        if agent.executor == "tactical":
            strategic = frozen_policy(*load_level(models / "strategic", agent.algo))
            timing.append(train_level(agent, "tactical", lambda: inner("execution"), models / "tactical",
                                      agent.tactical_timesteps, strategic=strategic, tensorboard=tb, sink=sink,
                                      progress=bool(cfg.progress), context=context, callbacks=reporters("tactical")))
    if agent.train_flat:
        timing.append(train_level(agent, "flat", inner, models / "flat", agent.flat_budget, tensorboard=tb,
                                  sink=sink, progress=bool(cfg.progress), context=context,
                                  callbacks=reporters("flat")))
    write_json(out_dir / "timing.json", [r.to_dict() for r in timing])

    validation = (_validate(agent, market, signals, names, env_cfg, limits, val_p, models, int(cfg.n_boot))
                  if val_p else {})
    write_json(out_dir / "validation.json", {"period": val_p.to_dict() if val_p else None, "strategies": validation})
    trial = {
        "experiment": str(cfg.name),
        "seed": agent.seed,
        "config": plain["agent"],
        "validation_period": val_p.to_dict() if val_p else None,
        "validation_sharpe_per_period": {k: v.get("sharpe_per_period") for k, v in validation.items()},
        "run_key": run_key(plain),
        "complete": True,
    }
    if tracker is not None:
        _log_run(tracker, cfg, plain, out_dir, validation, timing, agent, trial)
    write_json(out_dir / "trial.json", trial)  # last: a run folder with trial.json is complete
    _print(validation, timing, time.perf_counter() - t_start)
    return validation


def _live_policy(agent: AgentConfig, level: str, current: tuple[Any, Any], models: Path) -> tuple[Any, str]:
    """The validation policy around the level being trained (``current``: its model and normaliser)."""
    if level == "flat":
        return FlatPolicy(None, agent.algo, level=current), "weights"
    if level == "strategic":  # the tactical level does not exist yet: the stage-1 execution rule
        return HierarchicalPolicy(None, agent.algo, agent.every_hours, "fixed", levels={"strategic": current},
                                  prior=agent.strategic_prior), "weights"
    return HierarchicalPolicy(models, agent.algo, agent.every_hours, "tactical", levels={"tactical": current}), \
        "execution"


def run_key(plain: dict[str, Any]) -> str:
    """What makes a run folder's result: the config without the keys that only change how it is shown or cached."""
    import hashlib

    kept = {k: v for k, v in plain.items() if k not in NOT_RUN_KEYS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def complete_run(out_dir: Path, plain: dict[str, Any]) -> dict[str, Any] | None:
    """The validation summary of a finished run of this config in ``out_dir`` (None: train it)."""
    trial_file, val_file = out_dir / "trial.json", out_dir / "validation.json"
    if not (trial_file.is_file() and val_file.is_file()):
        return None
    trial = json.loads(trial_file.read_text())
    if not trial.get("complete") or trial.get("run_key") != run_key(plain):
        return None
    return dict(json.loads(val_file.read_text()).get("strategies", {}))


def _validate(agent: AgentConfig, market: MarketData, signals: Any, names: Any, env_cfg: EnvConfig,
              limits: RiskLimits, val_p: Any, models: Path, n_boot: int) -> dict[str, dict[str, Any]]:
    """Deterministic runs over the validation slice (inside the training period, never trained on)."""
    out: dict[str, dict[str, Any]] = {}
    policies: list[tuple[Any, str]] = []
    if agent.hierarchical:
        mode = "execution" if agent.executor == "tactical" else "weights"
        policies.append((HierarchicalPolicy(models, agent.algo, agent.every_hours, agent.executor), mode))
    if agent.train_flat:
        policies.append((FlatPolicy(models / "flat", agent.algo), "weights"))
    bars = market.timestamps[val_p.start : val_p.end + 1]
    for policy, mode in policies:
        env = evaluation_env(market, signals, names, env_cfg, limits, val_p, action_mode=mode)
        result = in_cash_until(run_policy(env, policy, seed=agent.seed), bars)  # halted: cash to the end
        out[policy.name] = result.summary(n_boot=n_boot)
    return out


def _tracker(cfg: DictConfig, out_dir: Path) -> Any:
    if not cfg.mlflow.enabled:
        return None
    from agents.tracking import PolicyTracker

    return PolicyTracker(out_dir, experiment=str(cfg.mlflow.experiment), run_name=out_dir.name)


def _log_run(tracker: Any, cfg: DictConfig, plain: dict[str, Any], out_dir: Path,
             validation: dict[str, dict[str, Any]], timing: list[LevelResult], agent: AgentConfig,
             trial: dict[str, Any]) -> None:
    tracker.log_params(plain)
    tracker.log_metrics({f"validation.{name}.{k}": float(v) for name, row in validation.items()
                         for k, v in row.items() if isinstance(v, int | float)})
    tracker.log_metrics({f"timing.{r.level}.{k}": float(v) for r in timing
                         for k, v in r.to_dict().items() if isinstance(v, int | float)})
    tracker.log_dict(trial, "trial.json")
    for name in ("config.yaml", "train_period.json", "timing.json", "validation.json"):
        tracker.log_artifact(out_dir / name)
    tracker.log_artifact(out_dir / "models", "models")
    if cfg.mlflow.register and agent.hierarchical:
        tracker.log_policy(out_dir / "models", agent, register_name="krakenrl-policy")
    tracker.end()


def _print(validation: dict[str, dict[str, Any]], timing: list[LevelResult], seconds: float) -> None:
    for r in timing:
        print(f"{r.level:>9}: {r.timesteps} steps in {r.wall_seconds:.1f} s ({r.timesteps_per_second:.0f} steps/s, "
              f"{r.env_hours} env hours, env share {r.env_share:.0%})")
    for name, row in validation.items():
        vals = "  ".join(f"{k}={row.get(k, float('nan')):.4g}" for k in SUMMARY_KEYS)
        print(f"validation {name}: {vals}")
    print(f"training run: {seconds:.0f} s")


main = hydra_main(train, "train")


if __name__ == "__main__":
    main()
