"""The trial record of a search or multirun (``trials.json``): what the deflated Sharpe ratio counts.

Every configuration tried to pick a policy is a trial: each job of a ``train.py -m``
multirun (seeds, sweeps) and each trial of a ``search.py`` Optuna study. The record, one
``trials.json`` in the sweep / search folder, lists per trial its parameters, state
(``complete``, ``pruned`` or ``failed``), run folder and validation Sharpe ratio per period
for each strategy (the validation slice is the last ``agent.val_fraction`` of the training
period: never the held-out period). ``scripts/evaluate.py`` reads it (`record_for_run`,
`trial_statistics`), so the deflated Sharpe ratio's trial count and variance are never
typed in by hand.

Counting: every trial that was started counts — complete, pruned (it was tried and lost,
which is what selection does) and failed — because each one was a chance for a lucky
Sharpe ratio to be chosen. An attempt that was interrupted and then resumed (same run
folder) counts once. The variance is that of the trials' validation Sharpe ratios: a
complete trial's final one, a pruned trial's last reported one; a failed trial has none
and enters the count only. The validation slice is shorter than a typical held-out
period, so this variance carries more estimation noise than held-out Sharpe ratios
would: the deflation errs on the strict side.

MLflow: `log_record` writes a parent run for the search / multirun with one child run per
trial (params, validation Sharpe ratios, state) in ``<folder>/mlflow.db``; rewriting the
record reuses them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from envs.errors import ConfigError

RECORD = "trials.json"
STATES = ("complete", "pruned", "failed")
COUNTING = ("every trial started counts: complete, pruned and failed; an interrupted attempt that was resumed "
            "counts once. Variance: the validation Sharpe ratios per period (complete: final; pruned: last reported)")


def trial_value(trial: Mapping[str, Any], strategy: str) -> float | None:
    """A trial's validation Sharpe ratio (per period) for ``strategy``: final, or last reported if pruned."""
    v = (trial.get("validation_sharpe_per_period") or {}).get(strategy)
    if v is None and trial.get("state") == "pruned" and trial.get("objective", strategy) == strategy:
        v = trial.get("value")
    return float(v) if v is not None and math.isfinite(float(v)) else None


def make_record(kind: str, folder: Path, trials: list[dict[str, Any]], objective: str = "policy",
                extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``trials.json`` document for ``trials`` (each: id, state, params, run, validation Sharpe ratios)."""
    for t in trials:
        if t.get("state") not in STATES:
            raise ValueError(f"trial {t.get('id')!r}: state {t.get('state')!r} not in {STATES}")
    counts = {s: sum(t["state"] == s for t in trials) for s in STATES}
    values = [(trial_value(t, objective), t) for t in trials if t["state"] == "complete"]
    scored = [(v, t) for v, t in values if v is not None]
    best = max(scored, key=lambda vt: vt[0]) if scored else None
    return {
        "kind": kind,
        "folder": str(folder),
        "objective": objective,
        "counting": COUNTING,
        "n_trials": len(trials),
        "counts": counts,
        "best": None if best is None else {"id": best[1]["id"], "run": best[1].get("run"), "value": best[0]},
        "trials": trials,
        **dict(extra or {}),
    }


def write_record(folder: Path, record: Mapping[str, Any]) -> Path:
    from agents.evaluation import write_json

    return write_json(Path(folder) / RECORD, record)


def read_record(path: Path) -> dict[str, Any]:
    """A ``trials.json``; a ConfigError naming the file when it is not one."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable trial record ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("trials"), list):
        raise ConfigError(f"{path}: not a trial record (no 'trials' list)")
    for t in doc["trials"]:
        if not isinstance(t, dict) or t.get("state") not in STATES:
            raise ConfigError(f"{path}: trial {t.get('id') if isinstance(t, dict) else t!r} has no valid state")
    return doc


def record_for_run(run: Path, levels: int = 3) -> tuple[Path, dict[str, Any]] | None:
    """The record that lists run folder ``run`` (searched in it and up to ``levels`` folders above), or None."""
    run = Path(run).resolve()
    for folder in [run, *list(run.parents)[:levels]]:
        path = folder / RECORD
        if not path.is_file():
            continue
        doc = read_record(path)
        if folder == run or any(t.get("run") and (folder / t["run"]).resolve() == run for t in doc["trials"]):
            return path, doc
    return None


def trial_statistics(record: Mapping[str, Any], strategy: str) -> tuple[list[float], int]:
    """(the trials' validation Sharpe ratios per period for ``strategy``, the number of trials counted)."""
    trials = record["trials"]
    sharpes = [v for v in (trial_value(t, strategy) for t in trials) if v is not None]
    return sharpes, len(trials)


# ------------------------------------------------------------------ multirun
def multirun_trials(sweep: Path, job_folders: Iterable[Path]) -> list[dict[str, Any]]:
    """One trial per job folder of a ``train.py -m`` sweep: complete when its trial.json says so, else failed."""
    out: list[dict[str, Any]] = []
    for job in sorted(job_folders):
        overrides_file = job / ".hydra" / "overrides.yaml"
        overrides = [str(o) for o in OmegaConf.load(overrides_file)] if overrides_file.is_file() else []  # type: ignore[union-attr]
        params = dict(o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)
        trial_file = job / "trial.json"
        trial = json.loads(trial_file.read_text()) if trial_file.is_file() else {}
        out.append({
            "id": job.name,
            "state": "complete" if trial.get("complete") else "failed",
            "params": params,
            "run": str(job.relative_to(sweep)),
            "seed": trial.get("seed"),
            "validation_sharpe_per_period": trial.get("validation_sharpe_per_period", {}),
        })
    return out


# ------------------------------------------------------------------ MLflow
def log_record(folder: Path, record: dict[str, Any], experiment: str = "krakenrl-trials") -> dict[str, Any]:
    """A parent MLflow run for the record and a child run per trial in ``<folder>/mlflow.db``; returns the ids.

    Run ids already in ``record["mlflow"]`` are reused (a resumed search or rerun multirun
    updates its runs rather than adding new ones).
    """
    from mlflow.entities import Metric, Param, RunTag

    from predictors.tracking import Tracker

    known = dict(record.get("mlflow") or {})
    children: dict[str, str] = dict(known.get("children") or {})
    logged: dict[str, str] = dict(known.get("logged") or {})  # trial id -> the state its child run shows
    tracker = Tracker(Path(folder), experiment=experiment, run_name=f"{record['kind']}:{Path(folder).name}") \
        if not known.get("parent_run_id") else None
    if tracker is not None:
        client, exp_id, parent, uri = tracker.client, tracker.experiment_id, tracker.run_id, tracker.uri
    else:
        from mlflow.tracking import MlflowClient

        uri = f"sqlite:///{Path(folder).resolve() / 'mlflow.db'}"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        parent = str(known["parent_run_id"])
        exp_id = client.get_run(parent).info.experiment_id
    import time

    now = int(time.time() * 1000)
    client.log_batch(parent, metrics=[Metric("n_trials", float(record["n_trials"]), now, 0)]
                     + [Metric(f"n_{s}", float(n), now, 0) for s, n in record["counts"].items()],
                     tags=[RunTag("krakenrl.kind", str(record["kind"])), RunTag("krakenrl.objective",
                                                                               str(record["objective"]))])
    for t in record["trials"]:
        tid = str(t["id"])
        if tid not in children:
            children[tid] = client.create_run(exp_id, run_name=f"trial {tid}",
                                              tags={"mlflow.parentRunId": parent}).info.run_id
            client.log_batch(children[tid], params=[Param(k, str(v)[:6000]) for k, v in t.get("params", {}).items()])
        rid = children[tid]
        if logged.get(tid) == t["state"]:
            continue  # already logged as it stands: a rewrite after every trial adds no duplicate rows
        logged[tid] = t["state"]
        metrics = [Metric(f"validation.{k}.sharpe_per_period", float(v), now, 0)
                   for k, v in (t.get("validation_sharpe_per_period") or {}).items()
                   if v is not None and math.isfinite(float(v))]
        metrics += [Metric("intermediate_sharpe", float(v), now, int(step))
                    for step, v in (t.get("intermediate") or {}).items() if v is not None and math.isfinite(float(v))]
        client.log_batch(rid, metrics=metrics, tags=[RunTag("krakenrl.state", t["state"]),
                                                     RunTag("krakenrl.run", str(t.get("run")))])
        client.set_terminated(rid, "FAILED" if t["state"] == "failed" else "FINISHED")
    client.set_terminated(parent, "FINISHED")
    return {"tracking_uri": uri, "parent_run_id": parent, "children": children, "logged": logged}


def record_multirun(sweep: Path, mlflow: bool = True) -> dict[str, Any]:
    """Write ``trials.json`` (and the MLflow parent/child runs) for a train.py multirun sweep folder."""
    sweep = Path(sweep)
    jobs = [p.parent.parent for p in sweep.glob("**/.hydra/overrides.yaml") if p.parent.parent != sweep]
    old = read_record(sweep / RECORD) if (sweep / RECORD).is_file() else {}
    record = make_record("multirun", sweep, multirun_trials(sweep, jobs), "policy",
                         {"mlflow": old.get("mlflow")} if old.get("mlflow") else None)
    if mlflow and record["trials"]:
        record["mlflow"] = log_record(sweep, record)
    write_record(sweep, record)
    return record


class MultirunRecord(Callback):  # type: ignore[misc]
    """Hydra callback (conf/hydra/output/krakenrl_resume.yaml): the trial record of a train.py multirun.

    Rewritten (without MLflow, under a file lock: jobs end in parallel processes) when each
    job ends, so that a multirun that fails still leaves its record (jobs not yet complete
    are listed as failed); rewritten with the MLflow parent/child runs when the multirun ends.
    """

    def on_job_end(self, config: Any, job_return: Any = None, **kwargs: Any) -> None:
        import fcntl

        from hydra.types import RunMode

        if OmegaConf.select(config, "hydra.mode") != RunMode.MULTIRUN:
            return
        sweep = Path(str(config.hydra.sweep.dir))
        with open(sweep / ".trials.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            record_multirun(sweep, mlflow=False)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep = Path(str(config.hydra.sweep.dir))
        enabled = bool(OmegaConf.select(config, "mlflow.enabled", default=True))
        record = record_multirun(sweep, mlflow=enabled)
        print(f"trial record: {sweep / RECORD} ({record['n_trials']} trials: {record['counts']})")


__all__ = ["RECORD", "MultirunRecord", "log_record", "make_record", "read_record", "record_for_run",
           "record_multirun", "trial_statistics", "write_record"]
