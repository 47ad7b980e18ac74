"""Hydra multirun on the Ray launcher, the Optuna search, and evaluate.py's DSR from their trial record.

Tiny budgets (tests/agents/pipeline_helpers.py) in the default run; the 8-trial search with
pruning and a real kill of the search process is ``slow``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from agents.metrics import deflated_sharpe_ratio
from agents.pipeline import prediction_store
from envs.data.market import MarketData
from krakenrl.cli import build
from tests.agents.pipeline_helpers import ROOT, compose_config, eval_overrides, tiny_overrides
from tests.conftest import load_script

SEARCH_SPACE = [
    "search.space.agent.learning_rate.low=1.0e-5", "search.space.agent.learning_rate.high=1.0e-2",
    "search.space.agent.n_steps.choices=[16,32]", "search.report_every=32", "search.n_startup_trials=1",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny config's prediction store, built once (jobs and trials then find it cached)."""
    folder = tmp_path_factory.mktemp("cache")
    cfg = compose_config("train", tiny_overrides(folder))
    plain = OmegaConf.to_container(cfg, resolve=True)
    prediction_store(build(cfg.data, MarketData, "data"), plain, folder)  # type: ignore[arg-type]
    return folder


def _script(name: str, args: list[str], timeout: int = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _evaluate(run: Path, cache: Path, out: Path) -> dict:
    evaluate = load_script("evaluate")
    doc = evaluate.evaluate(compose_config("evaluate", [*eval_overrides(run, cache), "report=false"]), out)
    return doc


def _check_dsr_uses_the_record(doc: dict, record: dict) -> None:
    sharpes = [t["validation_sharpe_per_period"].get("policy") if t["state"] == "complete" else t.get("value")
               for t in record["trials"]]
    sharpes = [s for s in sharpes if s is not None]
    row = doc["strategies"]["policy"]
    assert row["n_trials"] == record["n_trials"] == doc["trials"]["n_trials"]
    assert row["trial_sharpe_variance"] == pytest.approx(np.var(sharpes, ddof=1))
    assert doc["trials"]["strategies"]["policy"]["sharpe_variance"] == pytest.approx(np.var(sharpes, ddof=1))
    from agents.metrics import return_moments  # the DSR recomputed from the record's count and variance

    assert row["deflated_sharpe"] == pytest.approx(deflated_sharpe_ratio(
        row["sharpe_per_period"], row["n_periods"], row["skew"], row["kurtosis"], record["n_trials"],
        float(np.var(sharpes, ddof=1))))
    assert callable(return_moments)


@pytest.mark.slow  # ~40 s on a quiet 2-core machine; the default run keeps the search and trial-record tests
def test_ray_multirun_tiny_resumes_without_retraining(cache: Path, tmp_path: Path) -> None:
    """Two seeds through the Ray launcher, then the same command trains nothing."""
    sweep = tmp_path / "sweep"
    args = ["-m", *[o for o in tiny_overrides(cache) if not o.startswith(("agent.seed", "agent.strategic", "agent.tac"))],
            "agent.seed=0,1", "agent.train_flat=false", "agent.strategic_timesteps=16", "agent.tactical_timesteps=64",
            "hydra/launcher=ray", "hydra.launcher.num_cpus=2", f"hydra.sweep.dir={sweep}"]
    proc = _script("train", args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[ray launcher] #1" in proc.stderr
    assert "multirun on ray (2 workers)" in proc.stderr  # the progress bar names the workers
    table = {line.split("  ")[0].removeprefix("[ray launcher] ").strip(): line.rsplit("  ", 1)[-1].strip()
             for line in proc.stderr.splitlines() if line.startswith("[ray launcher] ") and "#" not in line}
    assert table["jobs"] == "2 (0 failed)" and table["workers"] == "2"
    assert float(table["summed job time"].removesuffix(" s")) > 0
    assert float(table["speed-up over one by one"].removesuffix("x")) > 0
    record = json.loads((sweep / "trials.json").read_text())
    assert record["counts"] == {"complete": 2, "pruned": 0, "failed": 0}
    assert sorted(t["seed"] for t in record["trials"]) == [0, 1]
    zips = sorted(sweep.glob("*/models/tactical/model.zip"))
    stamps = [z.stat().st_mtime_ns for z in zips]
    proc = _script("train", args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (proc.stdout + proc.stderr).count("not trained again") == 2
    assert [z.stat().st_mtime_ns for z in zips] == stamps and len(zips) == 2


@pytest.mark.slow
def test_ray_multirun_job_that_always_fails_is_named_and_recorded(cache: Path, tmp_path: Path) -> None:
    """The good job completes, the bad one is retried, then the run fails naming it; the record lists both."""
    sweep = tmp_path / "sweep"
    args = ["-m", *[o for o in tiny_overrides(cache) if not o.startswith(("agent.strategic", "agent.tac"))],
            "agent.val_fraction=0.15,0.9", "agent.train_flat=false", "agent.strategic_timesteps=16",
            "agent.tactical_timesteps=64", "hydra/launcher=ray", "hydra.launcher.num_cpus=2",
            "hydra.launcher.max_retries=1", f"hydra.sweep.dir={sweep}"]
    proc = _script("train", args)
    assert proc.returncode != 0
    assert "multirun job #1" in proc.stderr and "agent.val_fraction=0.9" in proc.stderr
    assert "failed after 1 retries" in proc.stderr and "agent.val_fraction: expected in [0, 0.5)" in proc.stderr
    record = json.loads((sweep / "trials.json").read_text())
    assert record["counts"] == {"complete": 1, "pruned": 0, "failed": 1}
    failed = next(t for t in record["trials"] if t["state"] == "failed")
    assert failed["params"]["agent.val_fraction"] == "0.9"


@pytest.mark.slow
def test_ray_multirun_of_three_seeds_records_every_job_and_a_rerun_trains_nothing(cache: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", *[o for o in tiny_overrides(cache) if not o.startswith(("agent.seed", "mlflow.enabled"))],
            "agent.seed=0,1,2", "agent.train_flat=false", "mlflow.enabled=true", "mlflow.register=false",
            "hydra/launcher=ray", "hydra.launcher.num_cpus=2", f"hydra.sweep.dir={sweep}"]
    t0 = time.perf_counter()
    proc = _script("train", args)
    first = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.parent for p in sweep.glob("*/trial.json"))
    assert len(jobs) == 3  # one folder per job, named by its overrides (long lists: cut + hash)
    assert sorted(json.loads((j / "trial.json").read_text())["seed"] for j in jobs) == [0, 1, 2]
    record = json.loads((sweep / "trials.json").read_text())
    assert record["kind"] == "multirun" and record["counts"] == {"complete": 3, "pruned": 0, "failed": 0}
    assert sorted(t["seed"] for t in record["trials"]) == [0, 1, 2]
    assert "[ray launcher] #2" in proc.stderr  # the jobs went through the Ray launcher
    # MLflow: one parent run, three children pointing at it
    con = sqlite3.connect(sweep / "mlflow.db")
    parents = [r[0] for r in con.execute("select value from tags where key='mlflow.parentRunId'")]
    assert len(parents) == 3 and set(parents) == {record["mlflow"]["parent_run_id"]}
    con.close()
    stamps = {j: (j / "models" / "strategic" / "model.zip").stat().st_mtime_ns for j in jobs}

    proc = _script("train", args)  # the same command again: every job folder is complete
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("not trained again") + proc.stderr.count("not trained again") == 3
    assert stamps == {j: (j / "models" / "strategic" / "model.zip").stat().st_mtime_ns for j in jobs}
    again = json.loads((sweep / "trials.json").read_text())
    assert again["n_trials"] == 3 and again["mlflow"]["parent_run_id"] == record["mlflow"]["parent_run_id"]
    print(f"3-seed Ray multirun: {first:.0f} s")

    doc = _evaluate(sweep, cache, tmp_path / "eval")
    _check_dsr_uses_the_record(doc, record)
    assert doc["trials"]["source"] == str(sweep.resolve() / "trials.json")


def test_search_counts_every_trial_resumes_and_requeues_an_interrupted_trial(cache: Path, tmp_path: Path) -> None:
    search_mod = load_script("search")
    out = tmp_path / "search"
    base = [*tiny_overrides(cache), *SEARCH_SPACE, "mlflow.enabled=true"]
    doc = search_mod.search(compose_config("search", [*base, "search.n_trials=3"]), out)
    assert doc["n_trials"] == 3 and sum(doc["counts"].values()) == 3

    # a search killed mid-trial leaves that trial RUNNING in optuna.db: make one the way a kill does
    scfg = load_script("search").SearchConfig.from_mapping(
        OmegaConf.to_container(compose_config("search", [*base, "search.n_trials=5"]).search, resolve=True))
    study = search_mod.open_study(out, scfg)
    stuck = study.ask()
    for p in scfg.space:
        getattr(stuck, "suggest_float" if p.kind == "float" else "suggest_categorical")(
            p.key, *((p.low, p.high) if p.kind == "float" else (list(p.choices),)),
            **({"log": p.log} if p.kind == "float" else {}))
    doc = search_mod.search(compose_config("search", [*base, "search.n_trials=5"]), out)
    assert doc["n_trials"] == 5 and sum(doc["counts"].values()) == 5  # the total adds up across the two runs
    ids = [t["id"] for t in doc["trials"]]
    assert str(stuck.number) not in ids  # the interrupted attempt is not counted ...
    resumed = [t for t in doc["trials"] if t.get("resumes") == stuck.number]
    assert len(resumed) == 1 and resumed[0]["params"] == stuck.params  # ... its re-run is, with the same values
    import optuna

    trials = optuna.load_study(study_name=scfg.study, storage=f"sqlite:///{out / 'optuna.db'}").get_trials()
    assert len(trials) == 6 and sum(t.user_attrs.get("interrupted", False) for t in trials) == 1
    for t in doc["trials"]:
        assert t["state"] in ("complete", "pruned", "failed")
        assert t["intermediate"], t  # every trial reported validation Sharpe ratios while training
        if t["state"] == "complete":
            assert t["value"] == t["validation_sharpe_per_period"]["policy"]
            assert (out / t["run"] / "trial.json").is_file()
    con = sqlite3.connect(out / "mlflow.db")
    children = con.execute("select count(*) from tags where key='mlflow.parentRunId'").fetchone()[0]
    con.close()
    assert children == 5

    ev = _evaluate(out, cache, tmp_path / "eval")
    assert ev["selection"]["policy"]["n_trials"] == 5
    _check_dsr_uses_the_record(ev, doc)


def test_search_config_errors_exit_2_naming_the_key(cache: Path, tmp_path: Path) -> None:
    proc = _script("search", [*tiny_overrides(cache), "search.n_trials=0", f"hydra.run.dir={tmp_path / 's'}"],
                   timeout=120)
    assert proc.returncode == 2 and "search.n_trials" in proc.stderr
    proc = _script("search", [*tiny_overrides(cache), "+search.space.agent.gama={type: float, low: 0.9, high: 0.99}",
                              f"hydra.run.dir={tmp_path / 's'}"], timeout=120)
    assert proc.returncode == 2 and "search.space.agent.gama" in proc.stderr
    from envs.errors import ConfigError

    with pytest.raises(ConfigError, match=r"agent\.val_fraction"):  # no validation slice: nothing to score
        load_script("search").search(compose_config("search", [*tiny_overrides(cache), "agent.val_fraction=0.0"]),
                                     tmp_path / "s0")


@pytest.mark.slow
def test_eight_trial_search_with_pruning_survives_a_kill(cache: Path, tmp_path: Path) -> None:
    """A real SIGKILL of the search process mid-trial; the rerun completes the study: 8 counted, some pruned."""
    out = tmp_path / "search"
    args = [*tiny_overrides(cache), *SEARCH_SPACE, "search.n_trials=8", "agent.tactical_timesteps=512",
            f"hydra.run.dir={out}"]
    cmd = [sys.executable, str(ROOT / "scripts" / "search.py"), *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    killed_running = None
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        db = out / "optuna.db"
        if not db.is_file():
            continue
        try:
            con = sqlite3.connect(db, timeout=1)
            rows = con.execute("select number, state from trials").fetchall()
            con.close()
        except sqlite3.Error:
            continue
        running = [n for n, s in rows if s == "RUNNING" and n >= 2]
        if running:  # kill at once: the trial is still loading its market and store, far from its first report
            os.kill(proc.pid, signal.SIGKILL)
            killed_running = running[0]
            break
    proc.wait(timeout=30)
    assert killed_running is not None, "the search ended before it could be killed"
    con = sqlite3.connect(out / "optuna.db")
    stuck = [n for n, st in con.execute("select number, state from trials") if st == "RUNNING"]
    con.close()
    assert len(stuck) == 1, stuck  # what the kill interrupted (tiny trials: maybe a later one than seen)
    killed_running = stuck[0]
    t0 = time.perf_counter()
    done = _script("search", args, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "trials.json").read_text())
    assert record["n_trials"] == 8 and sum(record["counts"].values()) == 8
    assert record["counts"]["pruned"] >= 1, record["counts"]
    assert all(t["id"] != str(killed_running) for t in record["trials"])
    assert any(t.get("resumes") == killed_running for t in record["trials"])
    print(f"8-trial search: {record['counts']}, best {record['best']}, rerun {time.perf_counter() - t0:.0f} s")
