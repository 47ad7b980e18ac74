"""`run_tasks`: the independent tasks of a batch through the configured backend, in any order,
results back in task order; cached results reused, failed tasks retried, a summary at the end.

At most ``workers`` tasks are in flight. A task that raises (or whose worker dies) is
resubmitted up to ``max_retries`` times; then the run stops with a `TaskError` naming the
task. Every completed task's result is written to the `ResultCache` (when one is given) as
soon as it arrives, so a rerun after a failure computes only the missing tasks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from krakenrl.parallel.backends import make_backend
from krakenrl.parallel.cache import MISSING, ResultCache
from krakenrl.parallel.config import ExecutorConfig, executor_config
from krakenrl.parallel.tasks import Task, TaskError, describe

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What a batch did: for the table printed at the end and for tests."""

    executor: str
    workers: int
    tasks: int
    computed: int
    cached: int
    retries: int
    wall_seconds: float
    task_seconds: float  # summed over the computed tasks (what one worker would have needed)

    @property
    def speedup(self) -> float:
        """Summed task time over wall time: the gain over running the same tasks one by one."""
        return self.task_seconds / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    def table(self, title: str = "tasks") -> str:
        rows = [
            ("executor", f"{self.executor} ({self.workers} workers)"),
            ("tasks", f"{self.tasks} ({self.computed} run, {self.cached} cached)"),
            ("retries", str(self.retries)),
            ("wall time", f"{self.wall_seconds:.1f} s"),
            ("summed task time", f"{self.task_seconds:.1f} s"),
            ("speed-up", f"{self.speedup:.2f}x"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join([f"{title}:", *(f"  {k:<{width}}  {v}" for k, v in rows)])


def run_tasks(
    fn: Callable[[Any, Any], Any],
    tasks: Sequence[Task],
    config: ExecutorConfig | Any = None,
    shared: Any = None,
    cache: ResultCache | None = None,
    desc: str = "tasks",
    progress: bool = False,
) -> tuple[list[Any], RunSummary]:
    """``[fn(shared, t.payload) for t in tasks]``, computed by the configured backend (see module doc)."""
    cfg = config if isinstance(config, ExecutorConfig) else executor_config(config)
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError(f"run_tasks: task keys must be unique, got duplicates in {keys}")
    t_start = time.perf_counter()
    results: dict[str, Any] = {}
    seconds = 0.0
    todo: list[Task] = []
    for t in tasks:
        hit: Any = cache.get(t.key, MISSING) if cache is not None else MISSING
        if hit is MISSING:
            todo.append(t)
        else:
            results[t.key] = hit[0]
    n_cached = len(tasks) - len(todo)
    retries = 0
    workers = cfg.workers if cfg.name != "serial" else 1
    bar = tqdm(total=len(tasks), initial=n_cached, desc=f"{desc} [{cfg.name}, {workers} workers]",
               disable=not progress)
    backend = make_backend(cfg) if todo else None
    try:
        if backend is not None:
            ref = backend.share(shared)
            queue = list(todo)
            attempts: dict[str, int] = {}
            in_flight: dict[Any, Task] = {}
            while queue or in_flight:
                while queue and len(in_flight) < workers:
                    t = queue.pop(0)
                    in_flight[backend.submit(fn, ref, t.payload)] = t
                for handle, (ok, value) in backend.wait(list(in_flight)):
                    t = in_flight.pop(handle)
                    if ok:
                        result, secs = value
                        results[t.key] = result
                        seconds += secs
                        if cache is not None:
                            cache.put(t.key, result, secs)
                        bar.update(1)
                        continue
                    n = attempts.get(t.key, 0)
                    if n >= cfg.max_retries:
                        raise TaskError(t.label, n, describe(value)) from value
                    attempts[t.key] = n + 1
                    retries += 1
                    log.warning("%s failed (%s); retry %d of %d", t.label, describe(value), n + 1, cfg.max_retries)
                    queue.insert(0, t)
    finally:
        bar.close()
        if backend is not None:
            backend.close()
    summary = RunSummary(cfg.name, workers, len(tasks), len(todo), n_cached, retries,
                         time.perf_counter() - t_start, seconds)
    if progress:
        tqdm.write(summary.table(desc))
    else:
        log.info("%s", summary.table(desc))
    return [results[k] for k in keys], summary


__all__ = ["RunSummary", "run_tasks"]
