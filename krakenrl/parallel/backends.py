"""The three backends behind one small interface: share once, submit, wait for the next finished task.

- `SerialBackend`: runs tasks one by one in this process, in submission order (the default,
  and the reference every other backend must match bit for bit).
- `JoblibBackend`: local worker processes from joblib's loky (spawned, reusable); the shared
  input goes to a temporary memory-mapped file once (`krakenrl.parallel.shared`). A worker
  that dies breaks loky's pool: every task in flight fails, and the runner resubmits them to
  a fresh pool (each counted as a retry).
- `RayBackend`: Ray tasks; a local Ray started on demand with ``num_cpus=workers`` (and shut
  down at the end), or an existing cluster (``executor.address``, ``auto`` for the one
  ``ray start`` made). The shared input is ``ray.put`` once; every task gets the reference.

``wait`` returns finished handles with ``(True, (result, seconds))`` or ``(False, exception)``;
retrying is the runner's job, so retries are counted the same way everywhere.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from krakenrl.parallel.config import ExecutorConfig
from krakenrl.parallel.shared import dump_shared
from krakenrl.parallel.tasks import run_task

log = logging.getLogger(__name__)

Outcome = tuple[bool, Any]


class Backend(Protocol):
    workers: int

    def share(self, obj: Any) -> Any: ...
    def submit(self, fn: Callable[[Any, Any], Any], shared: Any, payload: Any) -> Any: ...
    def wait(self, handles: Sequence[Any]) -> list[tuple[Any, Outcome]]: ...
    def close(self) -> None: ...


class SerialBackend:
    """Runs each task when waited for, in submission order, in this process."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.workers, self.threads = 1, config.threads

    def share(self, obj: Any) -> Any:
        return obj

    def submit(self, fn: Callable[[Any, Any], Any], shared: Any, payload: Any) -> Any:
        return _Deferred(fn, shared, payload)

    def wait(self, handles: Sequence[Any]) -> list[tuple[Any, Outcome]]:
        h = handles[0]
        try:
            return [(h, (True, run_task(h.fn, h.shared, h.payload, self.threads)))]
        except Exception as exc:
            return [(h, (False, exc))]

    def close(self) -> None:
        pass


class _Deferred:
    def __init__(self, fn: Callable[[Any, Any], Any], shared: Any, payload: Any) -> None:
        self.fn, self.shared, self.payload = fn, shared, payload


class JoblibBackend:
    """Local processes (joblib's loky executor); shared input as a memory-mapped file."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.workers, self.threads = config.workers, config.threads
        self.tmp = tempfile.mkdtemp(prefix="krakenrl-shared-")
        self.n_shared = 0

    def _executor(self) -> Any:
        from joblib.externals.loky import get_reusable_executor

        # a broken pool (a worker died) is replaced by a fresh one here
        return get_reusable_executor(max_workers=self.workers, timeout=60,
                                     env={"OMP_NUM_THREADS": str(self.threads)})

    def share(self, obj: Any) -> Any:
        self.n_shared += 1
        return dump_shared(obj, f"{self.tmp}/{self.n_shared}")

    def submit(self, fn: Callable[[Any, Any], Any], shared: Any, payload: Any) -> Any:
        return self._executor().submit(run_task, fn, shared, payload, self.threads)

    def wait(self, handles: Sequence[Any]) -> list[tuple[Any, Outcome]]:
        done, _ = cf.wait(handles, return_when=cf.FIRST_COMPLETED)
        out: list[tuple[Any, Outcome]] = []
        for f in done:
            exc = f.exception()
            out.append((f, (False, exc) if exc is not None else (True, f.result())))
        return out

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class RayBackend:
    """Ray tasks on a local Ray started here, or on the cluster at ``address``."""

    def __init__(self, config: ExecutorConfig) -> None:
        import ray

        self.ray, self.workers, self.threads = ray, config.workers, config.threads
        self.started = False
        if not ray.is_initialized():
            if config.address:
                ray.init(address=config.address, log_to_driver=False)
            else:
                ray.init(num_cpus=config.workers * config.threads, include_dashboard=False, log_to_driver=False)
                self.started = True
        # retries are the runner's (counted, the same for every backend): none inside Ray
        self.remote = ray.remote(num_cpus=config.threads, max_retries=0, retry_exceptions=False)(run_task)

    def share(self, obj: Any) -> Any:
        return self.ray.put(obj)

    def submit(self, fn: Callable[[Any, Any], Any], shared: Any, payload: Any) -> Any:
        return self.remote.remote(fn, shared, payload, self.threads)

    def wait(self, handles: Sequence[Any]) -> list[tuple[Any, Outcome]]:
        done, _ = self.ray.wait(list(handles), num_returns=1)
        out: list[tuple[Any, Outcome]] = []
        for ref in done:
            try:
                out.append((ref, (True, self.ray.get(ref))))
            except Exception as exc:  # RayTaskError (the task raised), WorkerCrashedError (it died) ...
                out.append((ref, (False, exc)))
        return out

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def make_backend(config: ExecutorConfig) -> Backend:
    """The backend ``config.name`` names (the config has checked it)."""
    cls: dict[str, Callable[[ExecutorConfig], Backend]] = {
        "serial": SerialBackend, "joblib": JoblibBackend, "ray": RayBackend,
    }
    return cls[config.name](config)


__all__ = ["Backend", "JoblibBackend", "RayBackend", "SerialBackend", "make_backend"]
