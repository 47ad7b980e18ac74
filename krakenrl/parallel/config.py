"""The ``executor`` config group (``conf/executor/{serial,joblib,ray}.yaml``) as a checked dataclass.

``executor=ray executor.workers=2`` on any entry point that runs independent tasks selects the
backend; ``executor.address`` points Ray at an existing cluster (``auto``: the one ``ray start``
made on this node). Results never depend on these values; only wall time does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from envs.config_mapping import MappingConfig
from envs.errors import ConfigError

EXECUTORS = ("serial", "joblib", "ray")


@dataclass(frozen=True)
class ExecutorConfig(MappingConfig):
    """Which backend runs the tasks, with how many workers and how many retries per task."""

    config_section: ClassVar[str] = "executor"

    name: str = "serial"  # serial | joblib | ray
    workers: int = 1  # parallel tasks (joblib processes; Ray CPUs when Ray is started here)
    max_retries: int = 2  # re-runs of a failed task (an exception or a dead worker) before the run fails
    threads: int = 1  # intra-op threads per task (torch, OpenMP, BLAS), the same in every backend
    address: str | None = None  # ray only: None starts a local Ray; "auto" or "host:port" joins a cluster

    def __post_init__(self) -> None:
        if self.name not in EXECUTORS:
            raise ConfigError(f"executor: expected one of {list(EXECUTORS)}, got {self.name!r}")
        for key in ("workers", "threads"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"executor.{key}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) or self.max_retries < 0:
            raise ConfigError(f"executor.max_retries: expected an integer >= 0, got {self.max_retries!r}")
        if self.address is not None and self.name != "ray":
            raise ConfigError(f"executor.address: only the ray executor joins a cluster, got executor={self.name}")


def executor_config(node: Mapping[str, Any] | ExecutorConfig | str | None) -> ExecutorConfig:
    """The config from a Hydra node, a plain mapping, a bare name (``"ray"``) or None (serial)."""
    if isinstance(node, str):
        return ExecutorConfig(name=node)
    return ExecutorConfig.from_mapping(node)


__all__ = ["EXECUTORS", "ExecutorConfig", "executor_config"]
