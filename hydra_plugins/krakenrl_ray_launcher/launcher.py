"""`RayLauncher`: every job of a Hydra multirun as one Ray task running the same task function.

The job's config is composed here (the driver) exactly as the basic launcher does; the Ray
task sets Hydra's globals and calls Hydra's own ``run_job``, so the job folder
(``hydra.sweep.dir/hydra.sweep.subdir``), its ``.hydra/`` files and the task's behaviour are
those of a serial multirun. A job that raises (or exits) is retried up to ``max_retries``
times, then reported failed with its overrides named; the other jobs still run to the end,
so a rerun of the same command only has the failed ones left to do (the task function
decides what "done" means: scripts/train.py skips a complete run folder).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


class JobFailed(RuntimeError):
    """A multirun job failed after its retries; the message names the job and its overrides."""


def _execute(hydra_context: HydraContext, sweep_config: DictConfig, task_function: TaskFunction,
             singleton_state: dict[Any, Any]) -> tuple[JobReturn, float]:
    """Runs inside the Ray worker: Hydra's run_job with the driver's globals; raises when the job failed."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import run_job

    t0 = time.perf_counter()
    setup_globals()
    Singleton.set_state(singleton_state)
    HydraConfig.instance().set_config(sweep_config)
    try:
        ret = run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                      job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    except SystemExit as exc:  # the task exited (e.g. status 2 on a config error): a failure, not a dead worker
        why = getattr(exc, "message", None)  # krakenrl.cli.UserErrorExit: the config or data error
        raise RuntimeError(f"the job exited with status {exc.code}" + (f": {why}" if why else "")) from None
    if ret.status == JobStatus.FAILED:
        raise ret._return_value  # Ray retries it (retry_exceptions), then the driver reports it
    return ret, time.perf_counter() - t0  # the job's own duration (a duration: no clock sync needed)


def start_ray(address: Any, num_cpus: Any, init: dict[str, Any]) -> None:
    """Connect to ``address`` or start a local Ray; workers import this checkout's packages."""
    import ray

    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, **init}
    if address is not None:
        kwargs["address"] = str(address)
    elif num_cpus is not None:
        kwargs["num_cpus"] = int(num_cpus)
    # the driver's import path (the repo root for `python scripts/x.py` under PYTHONPATH=.) for the workers
    paths = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p] + [os.getcwd()]
    env = dict(kwargs.pop("runtime_env", None) or {})
    env.setdefault("env_vars", {}).setdefault("PYTHONPATH", os.pathsep.join(paths))
    kwargs["runtime_env"] = env
    log.info("ray.init(%s)", kwargs)
    ray.init(**kwargs)


class RayLauncher(Launcher):
    def __init__(self, address: Any = None, num_cpus: Any = None, cpus_per_job: float = 1.0, max_retries: int = 1,
                 init: Any = None) -> None:
        if int(max_retries) < 0:
            raise ValueError(f"hydra.launcher.max_retries: expected an integer >= 0, got {max_retries!r}")
        if float(cpus_per_job) <= 0:
            raise ValueError(f"hydra.launcher.cpus_per_job: expected > 0, got {cpus_per_job!r}")
        self.address, self.num_cpus = address, num_cpus
        self.cpus_per_job, self.max_retries = float(cpus_per_job), int(max_retries)
        self.init: dict[str, Any] = OmegaConf.to_container(init, resolve=True) if isinstance(init, DictConfig) \
            else dict(init or {})  # type: ignore[assignment]
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import ray

        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        start_ray(self.address, self.num_cpus, self.init)
        remote = ray.remote(num_cpus=self.cpus_per_job, max_retries=self.max_retries,
                            retry_exceptions=True)(_execute)
        state = Singleton.get_state()
        t0 = time.perf_counter()
        pending: dict[Any, tuple[int, str]] = {}
        for i, overrides in enumerate(job_overrides):
            idx = initial_job_idx + i
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
                sweep_config.hydra.job.num = idx
                # absolute, as the driver sees it: a worker on another node writes to the same (shared) path
                sweep_config.hydra.sweep.dir = str(Path(str(sweep_config.hydra.sweep.dir)).resolve())
            name = " ".join(filter_overrides(overrides))
            print(f"[ray launcher] #{idx} {name}: submitted", file=sys.stderr)
            pending[remote.remote(self.hydra_context, sweep_config, self.task_function, state)] = (idx, name)
        results: dict[int, JobReturn] = {}
        seconds: dict[int, float] = {}  # each successful job's own duration
        left = list(pending)
        workers = int(ray.cluster_resources().get("CPU", 0) // max(self.cpus_per_job, 1e-9))
        with tqdm(total=len(pending), desc=f"multirun on ray ({workers} workers)", file=sys.stderr) as bar:
            while left:
                done, left = ray.wait(left, num_returns=1)
                idx, name = pending[done[0]]
                try:
                    results[idx], seconds[idx] = ray.get(done[0])
                    status = f"done in {seconds[idx]:.0f} s"
                except Exception as exc:  # retries spent: report the job, keep the others
                    results[idx] = _failed(idx, name, list(job_overrides[idx - initial_job_idx]), exc,
                                           self.max_retries)
                    status = f"FAILED after {self.max_retries} retries"
                bar.update(1)
                bar.write(f"[ray launcher] #{idx} {name}: {status} ({len(results)}/{len(pending)}, "
                          f"{time.perf_counter() - t0:.0f} s)")
        print(summary_table(results, seconds, time.perf_counter() - t0, workers), file=sys.stderr)
        return [results[initial_job_idx + i] for i in range(len(job_overrides))]


def summary_table(results: dict[int, JobReturn], seconds: dict[int, float], wall: float, workers: int) -> str:
    """The end-of-multirun table: jobs, failures, wall time, summed job time and the speed-up over one by one.

    Each job's duration is measured on its worker (successful attempt only); retries are Ray's
    (``max_retries``) and are not counted here.
    """
    failed = sum(r.status == JobStatus.FAILED for r in results.values())
    busy = sum(seconds.values())
    rows = [("jobs", f"{len(results)} ({failed} failed)"), ("workers", str(workers)), ("wall", f"{wall:.1f} s"),
            ("summed job time", f"{busy:.1f} s"),
            ("speed-up over one by one", f"{busy / wall:.2f}x" if wall > 0 and seconds else "n/a")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"[ray launcher] {k:<{width}}  {v}" for k, v in rows)


def _failed(idx: int, name: str, overrides: list[str], exc: Exception, retries: int) -> JobReturn:
    """A FAILED JobReturn whose error names the job: Hydra's sweeper raises it after all jobs ended."""
    cause = getattr(exc, "cause", None) or exc
    ret = JobReturn(overrides=overrides, status=JobStatus.FAILED)
    ret.return_value = JobFailed(f"multirun job #{idx} ({name}) failed after {retries} retries: "
                                 f"{type(cause).__name__}: {cause}")
    return ret
