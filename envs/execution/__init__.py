"""The execution model: orders, fills, fees, slippage, the ledger and its kernels.

``envs.execution.execute_hour`` (and `Executor`, `AccountState`, `HourResult`) run one hour of
the env's execution for one account outside the env (`envs.execution.execute`); they are
imported on first use, so that `envs.config` can import `envs.execution.fees` without a cycle.
"""

from __future__ import annotations

from typing import Any

_LAZY = ("AccountState", "Executor", "HourResult", "execute_hour")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from envs.execution import execute

        return getattr(execute, name)
    raise AttributeError(f"module 'envs.execution' has no attribute {name!r}")


__all__ = list(_LAZY)
