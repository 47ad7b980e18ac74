"""Hyperparameter search with Optuna over scripts/train.py runs; every trial recorded for the DSR.

    python scripts/search.py experiment=fast search.n_trials=8
    python scripts/search.py experiment=fast search.n_trials=12      # the same study, 4 more trials
    python scripts/evaluate.py run=outputs/search/fast eval.start=... eval.end=...

- A trial is a whole training run (`train` of scripts/train.py) with the sampled values
  (``search.space``) set on the training config, in ``<run>/trials/<hash of its values>/``.
- Objective: the validation Sharpe ratio per period of ``search.objective`` on the last
  ``agent.val_fraction`` of the training period (train.py's validation slice; the held-out
  period is never touched). While a trial trains, the same figure is reported every
  ``search.report_every`` agent steps; the median pruner stops a trial that trails the
  median of earlier trials at the same step (``optuna.TrialPruned``).
- Storage: ``sqlite:///<run>/optuna.db`` (``load_if_exists``): the same command resumes the
  study. A trial left running by a killed search is marked failed, flagged
  ``interrupted`` and queued again with the same values, so it lands in the same folder and
  resumes from its checkpoint; it is counted once. ``search.n_trials`` is the total counted.
- Trials run one after the other in this process (serial): on this 2-core machine a trial
  already uses both cores; to spread seeds over a cluster use ``train.py -m
  hydra/launcher=ray`` (docs/scaling.md).
- Record: ``trials.json`` (`agents.trials`: params, state complete/pruned/failed,
  validation Sharpe ratios, intermediate values) and an MLflow parent run with a child run
  per trial in ``<run>/mlflow.db``, both rewritten after every trial. evaluate.py reads the
  record for the deflated Sharpe ratio's trial count and variance.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from agents.search import Reporting, SearchConfig, suggest
from agents.trials import log_record, make_record, read_record, write_record
from envs.errors import ConfigError, KrakenRLError
from krakenrl.cli import hydra_main

STATE = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}


def _train_module() -> Any:
    spec = importlib.util.spec_from_file_location("_krakenrl_train", Path(__file__).with_name("train.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def trial_folder(params: dict[str, Any]) -> str:
    """``trials/<hash>``: the same values -> the same folder (a re-queued trial resumes there)."""
    text = json.dumps(params, sort_keys=True, default=str)
    return f"trials/{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def trial_config(cfg: DictConfig, params: dict[str, Any]) -> DictConfig:
    """The training config of one trial: the search's config with the values set, no ``search`` block."""
    tcfg = cfg.copy()
    OmegaConf.set_struct(tcfg, False)
    del tcfg["search"]
    for key, value in params.items():
        OmegaConf.update(tcfg, key, value, force_add=False)
    tcfg.mlflow.enabled = False  # the search logs each trial as a child of its parent run instead
    return tcfg


def open_study(out_dir: Path, scfg: SearchConfig) -> Any:
    """The study in ``<out_dir>/optuna.db``, created or loaded.

    The sampler's seed is ``search.seed`` plus the number of trials already stored: a
    resumed search does not draw the first values again (the sampler's random stream
    restarts with the process), and the same sequence of runs draws the same values.
    """
    import optuna

    pruner: Any = (optuna.pruners.MedianPruner(n_startup_trials=scfg.n_startup_trials,
                                               n_warmup_steps=scfg.n_warmup_steps)
                   if scfg.pruner == "median" else optuna.pruners.NopPruner())
    storage = f"sqlite:///{out_dir.resolve() / 'optuna.db'}"
    study = optuna.create_study(study_name=scfg.study, storage=storage, load_if_exists=True, direction="maximize",
                                pruner=pruner)
    study.sampler = optuna.samplers.TPESampler(seed=scfg.seed + len(study.get_trials(deepcopy=False)))
    return study


def requeue_interrupted(study: Any) -> list[int]:
    """Trials left RUNNING by a killed search: failed + ``interrupted``, and queued again with the same values."""
    from optuna.trial import TrialState

    numbers = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"resumes": t.number}, skip_if_exists=False)
        numbers.append(t.number)
    return numbers


def counted(study: Any) -> list[Any]:
    """The trials the record counts: finished (complete, pruned, failed), interrupted attempts left out."""
    return [t for t in study.get_trials(deepcopy=False)
            if t.state.name in STATE and not t.user_attrs.get("interrupted")]


def record(study: Any, out_dir: Path, scfg: SearchConfig, mlflow: bool) -> dict[str, Any]:
    """Rewrite ``trials.json`` (and the MLflow parent/child runs) from the study."""
    trials = []
    for t in counted(study):
        inter = {str(k): v for k, v in sorted(t.intermediate_values.items())}
        value = t.value if t.state.name == "COMPLETE" else (list(inter.values())[-1] if inter else None)
        trials.append({
            "id": str(t.number), "state": STATE[t.state.name], "params": dict(t.params), "run": t.user_attrs.get("run"),
            "objective": scfg.objective, "value": value, "intermediate": inter,
            "validation_sharpe_per_period": t.user_attrs.get("validation_sharpe_per_period", {}),
            "error": t.user_attrs.get("error"), "resumes": t.user_attrs.get("resumes"),
        })
    path = out_dir / "trials.json"
    old = read_record(path) if path.is_file() else {}
    doc = make_record("search", out_dir, trials, scfg.objective,
                      {"study": scfg.study, "storage": "optuna.db", "n_trials_requested": scfg.n_trials,
                       "mlflow": old.get("mlflow")})
    if mlflow and trials:
        doc["mlflow"] = log_record(out_dir, doc)
    write_record(out_dir, doc)
    return doc


def search_identity(plain: dict[str, Any]) -> str:
    """Hash of everything that makes trials comparable: the config less the budget and the run bookkeeping."""
    keep = {k: v for k, v in plain.items() if k not in ("hydra", "progress", "mlflow")}
    keep["search"] = {k: v for k, v in (keep.get("search") or {}).items() if k != "n_trials"}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()


def check_same_search(study: Any, plain: dict[str, Any], out_dir: Path) -> None:
    """A resumed study must be the same search (data, env, risk, agent, space): else its trials would mix in one DSR."""
    ident = search_identity(plain)
    stored = study.user_attrs.get("config_hash")
    if stored is None:
        study.set_user_attr("config_hash", ident)
    elif stored != ident:
        raise ConfigError(f"search: {out_dir / 'optuna.db'} holds a study of another configuration (data, env, risk, "
                          "agent or search space differ; only search.n_trials may change on a resume): use a new "
                          "hydra.run.dir or search.study")


def search(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Run (or resume) the study until ``search.n_trials`` trials are counted; returns the record."""
    import optuna

    t0 = time.perf_counter()
    plain: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    scfg = SearchConfig.from_mapping(plain.get("search") or {})
    scfg.check_keys(plain)
    if not float(plain["agent"]["val_fraction"]) > 0:
        raise ConfigError(f"agent.val_fraction: a search scores trials on the validation slice, which "
                          f"agent.val_fraction={plain['agent']['val_fraction']} leaves empty")
    trained = {"policy": ("hierarchical", True), "flat_ppo": ("train_flat", True)}[scfg.objective]
    if not bool(plain["agent"].get(trained[0], trained[1])):  # else every trial trains, then fails: counted failed
        raise ConfigError(f"search.objective={scfg.objective}: needs agent.{trained[0]}=true (that strategy is "
                          "not trained otherwise)")
    out_dir.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(out_dir, scfg)
    check_same_search(study, plain, out_dir)
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    again = requeue_interrupted(study)
    if again:
        print(f"interrupted trials {again}: queued again with the same values (they resume from their checkpoints)")
    train = _train_module().train
    mlflow = bool(cfg.mlflow.enabled)

    def objective(trial: Any) -> float:
        params = suggest(trial, scfg.space)
        folder = trial_folder(params)
        trial.set_user_attr("run", folder)

        def report(value: float, step: int) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation Sharpe {value:.4g} at step {step} trails the median")

        try:
            validation = train(trial_config(cfg, params), out_dir / folder,
                               Reporting(report, scfg.report_every, scfg.objective))
        except (optuna.TrialPruned, KrakenRLError):
            raise  # pruned: recorded as such; a config error ends the search naming what is wrong
        except Exception as exc:  # a trial that breaks (e.g. diverges) is a failed trial, the search goes on
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            return math.nan  # Optuna records a NaN objective as a failed trial
        sharpes = {k: v.get("sharpe_per_period") for k, v in validation.items()}
        trial.set_user_attr("validation_sharpe_per_period", sharpes)
        if scfg.objective not in sharpes:
            raise ConfigError(f"search.objective: {scfg.objective!r} is not among the trained strategies "
                              f"{sorted(sharpes)} (agent.train_flat / agent.hierarchical)")
        value = sharpes[scfg.objective]  # None: NaN written as null (a policy flat in cash has no Sharpe ratio)
        return math.nan if value is None else float(value)  # NaN: Optuna records a failed trial

    def after_trial(study: Any, trial: Any) -> None:
        doc = record(study, out_dir, scfg, mlflow)
        print(f"trial {trial.number}: {trial.state.name.lower()} value={trial.value} "
              f"({doc['n_trials']}/{scfg.n_trials} counted, {time.perf_counter() - t0:.0f} s)")
        if doc["n_trials"] >= scfg.n_trials:
            study.stop()

    remaining = scfg.n_trials - len(counted(study))
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, callbacks=[after_trial], gc_after_trial=True)
    doc = record(study, out_dir, scfg, mlflow)
    best = doc["best"]
    print(f"search {scfg.study}: {doc['n_trials']} trials counted {doc['counts']}; "
          + (f"best trial {best['id']} validation Sharpe/period {best['value']:.4g} in {out_dir / best['run']}"
             if best else "no complete trial") + f"; {time.perf_counter() - t0:.0f} s")
    return doc


main = hydra_main(search, "search")


if __name__ == "__main__":
    main()
