"""One executor setting for the embarrassingly parallel work (walk-forward folds x families,
evaluation windows): ``executor=serial|joblib|ray`` with ``executor.workers=N``.

- `ExecutorConfig` (config.py): the ``conf/executor`` group, checked;
- `run_tasks` (runner.py): a batch of independent `Task` s through the backend, results in
  task order, bit for bit those of the serial run; retries, result cache, progress, summary;
- backends.py: serial, joblib (loky processes), Ray (local on demand or a cluster);
- shared.py: the large shared input sent to local workers once, as a memory map;
- cache.py: completed tasks' results on disk, so a rerun does only what is missing;
- threads.py: the same intra-op thread count in every backend.
"""

from __future__ import annotations

from krakenrl.parallel.cache import ResultCache
from krakenrl.parallel.config import EXECUTORS, ExecutorConfig, executor_config
from krakenrl.parallel.runner import RunSummary, run_tasks
from krakenrl.parallel.tasks import Task, TaskError

__all__ = ["EXECUTORS", "ExecutorConfig", "ResultCache", "RunSummary", "Task", "TaskError", "executor_config",
           "run_tasks"]
