"""Pin a task's intra-op thread count, the same in every backend.

Floating-point sums split over a different number of threads add in a different order, so a
task run with 1 thread in a serial loop and with 4 in a Ray worker could differ in the last
bits. Every backend runs every task inside `pinned_threads(config.threads)`: torch's
intra-op pool and every OpenMP / BLAS pool threadpoolctl knows of (LightGBM, XGBoost,
NumPy's BLAS). Model configs that name their own ``n_jobs`` / ``threads`` still win inside
the model; they are part of the config, hence the same everywhere too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def pinned_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` threads in torch and every native thread pool, then restore."""
    from threadpoolctl import threadpool_limits

    old_env = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(n)  # pools created inside the block (first LightGBM call)
    torch = _torch()
    old_torch = torch.get_num_threads() if torch is not None else None
    try:
        if torch is not None:
            torch.set_num_threads(n)
        with threadpool_limits(limits=n):
            yield
    finally:
        if torch is not None and old_torch is not None:
            torch.set_num_threads(old_torch)
        if old_env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old_env


def _torch():  # type: ignore[no-untyped-def]
    """torch if it is installed (the executor itself does not need it)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of the package
        return None
    return torch


__all__ = ["pinned_threads"]
