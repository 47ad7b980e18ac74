"""The executor (krakenrl.parallel): every backend returns the serial results bit for bit, a
killed worker's task is retried, a task that keeps failing stops the run naming it, completed
tasks are kept so a rerun computes only the missing ones, and bad configs name the key."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from envs.errors import ConfigError
from krakenrl.parallel import ExecutorConfig, ResultCache, Task, TaskError, executor_config, run_tasks
from krakenrl.parallel.shared import dump_shared, load_shared
from tests.parallel.parallel_tasks import Job, executions, threads_seen, work

ROOT = Path(__file__).resolve().parents[2]
SHARED = {"x": np.linspace(-1.0, 1.0, 300_000)}  # 2.4 MB: goes to the workers once


def _tasks(log: Path, n: int = 6, **flags: dict[int, bool]) -> list[Task]:
    return [Task(f"task={i}", f"task {i}", Job(i, str(log), kill=i in flags.get("kill", {}),
                                                fail=i in flags.get("fail", {})))
            for i in range(n)]


def _values(results: list[tuple[int, float, bool, int]]) -> list[tuple[int, float]]:
    return [(i, v) for i, v, _, _ in results]


@pytest.fixture(scope="module")
def serial_results(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[int, float]]:
    res, _ = run_tasks(work, _tasks(tmp_path_factory.mktemp("serial")), "serial", shared=SHARED)
    return _values(res)


@pytest.mark.parametrize("name", ["joblib", "ray"])
def test_backends_return_the_serial_results_bit_for_bit(name, serial_results, tmp_path, request) -> None:
    if name == "ray":
        request.getfixturevalue("local_ray")
    res, summary = run_tasks(work, _tasks(tmp_path), ExecutorConfig(name=name, workers=2), shared=SHARED)
    assert _values(res) == serial_results  # exact float equality, in task order
    assert all(not writeable for _, _, writeable, _ in res)  # the shared array arrived mapped, read-only
    assert os.getpid() not in {pid for *_, pid in res}  # computed in worker processes
    assert (summary.computed, summary.retries, summary.workers) == (6, 0, 2)


@pytest.mark.parametrize("name", ["serial", "joblib", "ray"])
def test_every_backend_pins_the_same_thread_count(name, tmp_path, request) -> None:
    if name == "ray":
        request.getfixturevalue("local_ray")
    tasks = [Task(f"t{i}", f"t{i}", i) for i in range(2)]
    res, _ = run_tasks(threads_seen, tasks, ExecutorConfig(name=name, workers=2 if name != "serial" else 1,
                                                             threads=1), shared=None)
    assert res == [(1, 1)] * 2  # torch intra-op threads, every OpenMP/BLAS pool's limit


@pytest.mark.parametrize("name", ["ray", "joblib"])
def test_a_killed_worker_is_retried_and_the_run_ends_identical(name, serial_results, tmp_path, request) -> None:
    if name == "ray":
        request.getfixturevalue("local_ray")
    log = tmp_path / "log"
    res, summary = run_tasks(work, _tasks(log, kill={2: True}), ExecutorConfig(name=name, workers=2, max_retries=2),
                             shared=SHARED)
    assert _values(res) == serial_results
    assert executions(log, 2) == 2  # the killed attempt and its retry
    assert summary.retries >= 1  # loky's pool breaks: tasks in flight beside it are retried too


@pytest.mark.parametrize("name", ["serial", "ray"])
def test_a_failing_task_stops_the_run_naming_it_and_a_rerun_computes_only_the_missing(
    name, serial_results, tmp_path, request
) -> None:
    if name == "ray":
        request.getfixturevalue("local_ray")
    log, cache = tmp_path / "log", ResultCache(tmp_path / "cache", "run-1")
    cfg = ExecutorConfig(name=name, workers=2 if name == "ray" else 1, max_retries=2)
    with pytest.raises(TaskError, match=r"task 3 failed after 2 retries: ValueError: boom in task 3"):
        run_tasks(work, _tasks(log, fail={3: True}), cfg, shared=SHARED, cache=cache)
    assert executions(log, 3) == 3  # first attempt + 2 retries
    done = cache.keys_on_disk()
    if name == "serial":  # tasks 0-2 ran before it, 4-5 never
        assert done == 3 and executions(log, 4) == 0
    else:  # 2 in flight: task 3 started once two of 0-2 had finished; later ones may have finished too
        assert 2 <= done <= 5
    before = executions(log)
    res, summary = run_tasks(work, _tasks(log), cfg, shared=SHARED, cache=cache)
    assert _values(res) == serial_results
    assert (summary.cached, summary.computed) == (done, 6 - done)
    assert executions(log) - before == 6 - done  # only the missing tasks ran again
    assert executions(log, 0) == 1


def test_cache_namespaces_and_unreadable_entries(tmp_path) -> None:
    a, b = ResultCache(tmp_path, "a"), ResultCache(tmp_path, "b")
    a.put("k", {"v": 1}, 0.5)
    assert a.get("k") == ({"v": 1}, 0.5) and b.get("k", None) is None
    next(a.folder.glob("*.pkl")).write_bytes(b"not a pickle")
    assert a.get("k", None) is None  # recomputed, not trusted
    a.clear()
    assert a.keys_on_disk() == 0


def test_shared_file_round_trip_is_read_only(tmp_path) -> None:
    obj = {"a": np.arange(12.0).reshape(3, 4), "b": np.zeros(0), "c": np.array([1, 2], dtype=np.int8), "s": "x"}
    back = load_shared(dump_shared(obj, tmp_path))
    for k in ("a", "b", "c"):
        np.testing.assert_array_equal(back[k], obj[k])
        assert back[k].dtype == obj[k].dtype and not back[k].flags.writeable
    assert back["s"] == "x"


@pytest.mark.parametrize(
    ("values", "key"),
    [({"name": "dask"}, "executor"), ({"workers": 0}, "executor.workers"), ({"threads": 0}, "executor.threads"),
     ({"max_retries": -1}, "executor.max_retries"), ({"name": "joblib", "address": "auto"}, "executor.address"),
     ({"workers": 1.5}, "executor.workers"), ({"nodes": 3}, "executor")],
)
def test_bad_executor_configs_name_the_key(values, key) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        executor_config(values)


def test_the_executor_group_composes_from_the_command_line() -> None:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for name in ("train_predictors", "train", "evaluate", "run"):
            assert executor_config(compose(config_name=name).executor) == ExecutorConfig()  # serial by default
        cfg = compose(config_name="train_predictors", overrides=["executor=ray", "executor.workers=3"])
        assert executor_config(cfg.executor) == ExecutorConfig(name="ray", workers=3, address=None)
        cfg = compose(config_name="train_predictors", overrides=["executor=joblib", "executor.workers=0"])
        with pytest.raises(ConfigError, match=r"executor\.workers"):
            executor_config(cfg.executor)
        with pytest.raises(Exception, match="executor/dask"):
            compose(config_name="train_predictors", overrides=["executor=dask"])
