"""Numba settings and exact-summation helpers shared by the env and risk kernels.

One place for: the ``njit`` decorator that falls back to no on-disk cache where none can
be written (a read-only install, a container user without a writable home), the jit
option sets, min/max (NaN-propagating with numpy's operand choice; non-NaN ones), and
numpy's pairwise summation order (so compiled sums round exactly like ``ndarray.sum``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit as _numba_njit

log = logging.getLogger(__name__)

_warned: list[str] = []  # functions compiled without cache (warn once)


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit`` that falls back to no on-disk cache where none can be written.

    numba raises at decoration time when it finds no writable cache location (read-only
    install and home); the kernels then compile on first use in every process instead.
    """

    def decorate(fn: Callable[..., Any]) -> Any:
        try:
            return _numba_njit(**options)(fn)
        except RuntimeError as exc:
            if not options.get("cache"):
                raise
            level = logging.DEBUG if _warned else logging.WARNING
            _warned.append(fn.__name__)
            log.log(level, "numba cache unavailable for %s (%s): compiling without cache", fn.__name__, exc)
            return _numba_njit(**{**options, "cache": False})(fn)

    return decorate


def compiled_entry(dispatcher: Any, args: tuple[Any, ...]) -> Callable[..., Any]:
    """The machine-code entry of ``dispatcher`` for the types of ``args`` (compiled, or loaded from cache, now).

    Calling it skips numba's per-call type dispatch, which costs ~2 µs for named-tuple
    arguments (more than a whole single-env step's kernel). No type check is made on a call:
    the caller must pass arguments of exactly these types (dtype, ndim, layout, writability).
    """
    return dispatcher.compile(tuple(dispatcher.typeof_pyval(a) for a in args))  # type: ignore[no-any-return]


# ``_nrt=False``: no reference counting. With it every array view and every array passed
# to a helper costs an atomic incref/decref pair, which took ~45% of a step; the kernels
# allocate nothing (all buffers come from `BatchLedger`), so they need no runtime.
JIT: dict[str, Any] = {"cache": True, "error_model": "numpy", "nogil": True, "_nrt": False}
# for kernels that allocate their scratch arrays (the risk projection): the runtime stays on
JIT_ALLOC: dict[str, Any] = {"cache": True, "error_model": "numpy", "nogil": True}
INLINE: dict[str, Any] = {**JIT, "inline": "always"}


@njit(**JIT)
def min_nan(a: float, b: float) -> float:
    """``np.minimum`` of two floats (NaN propagates)."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a <= b else b


@njit(**JIT)
def max_nan(a: float, b: float) -> float:
    """``np.maximum`` of two floats (NaN propagates)."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


@njit(**JIT)
def min_num(a: float, b: float) -> float:
    """``np.minimum`` of two non-NaN floats; on a tie (0.0 vs -0.0) it returns ``b`` like the risk
    kernels always have (bit-identical to their numpy reference)."""
    return a if a < b else b


@njit(**JIT)
def max_num(a: float, b: float) -> float:
    """``np.maximum`` of two non-NaN floats; on a tie it returns ``b`` (see `min_num`)."""
    return a if a > b else b


@njit(**JIT)
def pwsum_block(x: np.ndarray, n: int, stk: np.ndarray) -> float:
    """numpy's pairwise sum of ``x[:n]`` for n > 128, with ``stk`` (4, 64) as an explicit stack.

    numpy splits a block into two halves (the first a multiple of 8) until blocks have at
    most 128 items and adds the partial sums back up the tree (left + right); rows of
    ``stk``: block start, block length, state (0 descend left, 1 descend right, 2 done), sum.
    """
    depth = 0
    stk[0, 0], stk[1, 0], stk[2, 0] = 0.0, n, 0.0
    result = 0.0
    while depth >= 0:
        lo, m, state = int(stk[0, depth]), int(stk[1, depth]), stk[2, depth]
        if m <= 128 or state == 2.0:
            part = pairwise_block(x, lo, m) if m <= 128 else stk[3, depth]
            depth -= 1
            if depth < 0:
                result = part
            elif stk[2, depth] == 1.0:
                stk[3, depth] = part
            else:
                stk[3, depth] = stk[3, depth] + part
            continue
        half = m // 2
        half -= half % 8
        if state == 0.0:
            stk[2, depth] = 1.0
            stk[0, depth + 1], stk[1, depth + 1], stk[2, depth + 1] = lo, half, 0.0
        else:
            stk[2, depth] = 2.0
            stk[0, depth + 1], stk[1, depth + 1], stk[2, depth + 1] = lo + half, m - half, 0.0
        depth += 1
    return result


@njit(**INLINE)
def pairwise_block(x: np.ndarray, lo: int, n: int) -> float:
    """numpy's pairwise sum of ``x[lo:lo+n]`` for n <= 128 (8 interleaved partial sums); shared with risk."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += x[i]
        return res
    r0, r1, r2, r3 = x[lo], x[lo + 1], x[lo + 2], x[lo + 3]
    r4, r5, r6, r7 = x[lo + 4], x[lo + 5], x[lo + 6], x[lo + 7]
    i = lo + 8
    stop = lo + n - n % 8
    while i < stop:
        r0 += x[i]
        r1 += x[i + 1]
        r2 += x[i + 2]
        r3 += x[i + 3]
        r4 += x[i + 4]
        r5 += x[i + 5]
        r6 += x[i + 6]
        r7 += x[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < lo + n:
        res += x[i]
        i += 1
    return res


@njit(**INLINE)
def pwsum(x: np.ndarray, n: int, stk: np.ndarray) -> float:
    """Sum of ``x[:n]`` in numpy's pairwise order (bit-identical to ``x[:n].sum()``)."""
    if n <= 128:
        return pairwise_block(x, 0, n)
    return pwsum_block(x, n, stk)
