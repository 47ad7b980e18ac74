"""A task, what a worker runs for it, and the error that ends a run when a task keeps failing.

A task is ``fn(shared, payload)``: ``fn`` an importable module-level function, ``shared`` the
one large input every task reads (sent to the workers once, see `krakenrl.parallel.shared`),
``payload`` the task's own small arguments. Everything random inside ``fn`` must derive from
the payload (the fold, the family, the config seed), never from the worker or the order in
which tasks finish: that is what makes every backend return the serial results bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envs.errors import KrakenRLError
from krakenrl.parallel.threads import pinned_threads


@dataclass(frozen=True)
class Task:
    """One unit of work: ``key`` identifies it in the result cache, ``label`` in messages."""

    key: str  # stable and unique within a run, e.g. "fold=3/family=lstm"
    label: str  # for people, e.g. "fold 3 / lstm"
    payload: Any = None


class TaskError(KrakenRLError):
    """A task failed on every attempt; the message names it, its retries and the last cause."""

    def __init__(self, label: str, retries: int, cause: str) -> None:
        super().__init__(f"{label} failed after {retries} retries: {cause}")
        self.label, self.retries, self.cause = label, retries, cause


def run_task(fn: Callable[[Any, Any], Any], shared: Any, payload: Any, threads: int) -> tuple[Any, float]:
    """What a worker (or the serial loop) runs: ``fn(shared, payload)`` with pinned threads; and its seconds."""
    from krakenrl.parallel.shared import resolve

    t0 = time.perf_counter()
    with pinned_threads(threads):
        result = fn(resolve(shared), payload)
    return result, time.perf_counter() - t0


def describe(exc: BaseException) -> str:
    """A one-line cause: the exception type and message (Ray's wrapper reduced to the original)."""
    cause = getattr(exc, "cause", None)  # ray.exceptions.RayTaskError carries the task's own exception
    if isinstance(cause, BaseException) and not isinstance(exc, TaskError):
        exc = cause
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".rstrip(": ")


__all__ = ["Task", "TaskError", "describe", "run_task"]
