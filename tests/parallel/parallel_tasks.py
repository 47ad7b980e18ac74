"""Task functions for the executor tests (importable by name in joblib and Ray workers).

Each execution leaves a file in ``payload.log`` (one per run of the task, any process), so
a test counts what was really computed; ``kill`` makes the first attempt SIGKILL its own
worker process, ``fail`` makes every attempt raise.
"""

from __future__ import annotations

import os
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Job:
    index: int
    log: str  # folder: one file per execution
    kill: bool = False  # SIGKILL the worker on the first attempt
    fail: bool = False  # raise on every attempt


def work(shared: dict[str, np.ndarray], job: Job) -> tuple[int, float, bool, int]:
    """A result that depends only on the task and the shared array (never on the worker)."""
    log = Path(job.log)
    log.mkdir(parents=True, exist_ok=True)
    first = not any(log.glob(f"task{job.index}-*"))
    (log / f"task{job.index}-{uuid.uuid4().hex}").write_text(str(os.getpid()))
    if job.kill and first:
        os.kill(os.getpid(), signal.SIGKILL)
    if job.fail:
        raise ValueError(f"boom in task {job.index}")
    rng = np.random.default_rng(job.index)  # the seed comes from the task
    x = shared["x"]
    return job.index, float(np.sum(x * rng.standard_normal(x.size))), bool(x.flags.writeable), os.getpid()


def executions(log: str | Path, index: int | None = None) -> int:
    """How many times a task (or all) ran."""
    pattern = "task*-*" if index is None else f"task{index}-*"
    return len(list(Path(log).glob(pattern)))


def threads_seen(shared: object, index: int) -> tuple[int, int]:
    """torch's intra-op threads and the largest native pool limit inside a task."""
    import torch
    from threadpoolctl import threadpool_info

    return torch.get_num_threads(), max((p["num_threads"] for p in threadpool_info()), default=1)
