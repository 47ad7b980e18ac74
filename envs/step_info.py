"""The ``info`` detail both envs share: fill and rejection dicts, and the episode-end reason.

The kernels leave compact records per account row (`envs.execution.kernels`): fill codes
``fc = (asset * 2 + buy) * 2 + maker`` with values ``fv = (qty, price, fee)``, and reject
codes ``rc = asset * REJECT_STRIDE + reason`` (reasons: `envs.execution.orders.REASONS`)
with the unfilled base quantities ``rq``.
`StepLabels` turns them into the dicts of ``info["fills"]`` and ``info["rejected"]``; the
single env and the vector env call the same methods, so their dicts are identical.

The vector env wraps each step's records in `PerEnvRecords`, a sequence of per-env lists
built on first access: a training loop that never reads them pays for two small objects
per step, not for thousands of dicts. They read the ledger's record buffers in place; the
env calls `PerEnvRecords.detach` (a copy) on the ones still referenced before its next
step overwrites the buffers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from envs.execution.orders import REASON_SLOTS, REASONS

if TYPE_CHECKING:
    from envs.execution.core import BatchCore

def lazy_item(n: int, i: int | slice, row: Callable[[int], Any]) -> Any:
    """``seq[i]`` of a lazily built per-env sequence of length ``n`` whose items ``row(k)`` builds."""
    if isinstance(i, slice):
        return [row(k) for k in range(*i.indices(n))]
    k = int(i)
    if not -n <= k < n:
        raise IndexError(f"env index {i} out of range for {n} envs")
    return row(k % n)


REJECT_STRIDE = REASON_SLOTS  # rc = asset * REJECT_STRIDE + reason code, as the kernels write it
FILL_KEYS = ("pair", "asset", "side", "qty", "price", "fee", "liquidity")
REJECT_KEYS = ("pair", "asset", "reason", "qty_unfilled")


class StepLabels:
    """Code -> label tables of one market's assets and pairs."""

    def __init__(self, pairs: Sequence[str], assets: Sequence[str]) -> None:
        named = list(zip(pairs, assets, strict=True))
        self.fill_labels = {
            (i * 2 + buy) * 2 + maker: (p, a, "buy" if buy else "sell", "maker" if maker else "taker")
            for i, (p, a) in enumerate(named)
            for buy in (0, 1)
            for maker in (0, 1)
        }
        self.reject_labels = {
            i * REJECT_STRIDE + code: (p, a, REASONS[code])
            for i, (p, a) in enumerate(named)
            for code in range(1, len(REASONS))
        }

    def fills(self, codes: np.ndarray, values: np.ndarray, count: int) -> list[dict[str, Any]]:
        """Fill dicts from one row's ``fc`` codes and ``fv`` (qty, price, fee) values."""
        labels = self.fill_labels
        return [
            {"pair": pair, "asset": asset, "side": side, "qty": q, "price": p, "fee": f, "liquidity": liq}
            for (pair, asset, side, liq), (q, p, f) in zip(
                [labels[c] for c in codes[:count].tolist()], values[:count].tolist(), strict=True
            )
        ]

    def rejected(self, codes: np.ndarray, quantities: np.ndarray, count: int) -> list[dict[str, Any]]:
        """Shortfall dicts (pair, asset, reason, qty_unfilled) from one row's ``rc`` codes and ``rq`` quantities."""
        labels = self.reject_labels
        return [
            {"pair": pair, "asset": asset, "reason": reason, "qty_unfilled": q}
            for (pair, asset, reason), q in zip(
                [labels[c] for c in codes[:count].tolist()], quantities[:count].tolist(), strict=True
            )
        ]


def end_reason(core: BatchCore, row: int, terminated: bool, time_limit: int | None = None) -> str:
    """Why row ``row``'s episode just ended: ruin, halt_drawdown, data_end, episode_length or time_limit.

    ``time_limit`` is a step cap shorter than the episode (the vector env's ``max_episode_steps``).
    """
    led = core.ledger
    if terminated:
        return "ruin" if led.equity[row] <= 0 else "halt_drawdown"
    if int(led.t[row]) >= core.last_bar:
        return "data_end"
    steps = int(led.steps[row])
    if time_limit is not None and time_limit <= steps < core.episode_len:
        return "time_limit"
    return "episode_length"


class PerEnvRecords(Sequence[list[dict[str, Any]]]):
    """``info["fills"]`` or ``info["rejected"]`` of one vector step: item i is env i's list of dicts.

    Reads the step's record arrays (live buffers until `detach`); each env's list is built
    on first access.
    """

    __slots__ = ("__weakref__", "_built", "_codes", "_counts", "_fills", "_labels", "_values")

    def __init__(
        self, labels: StepLabels, counts: np.ndarray, codes: np.ndarray, values: np.ndarray, fills: bool
    ) -> None:
        self._labels, self._counts, self._codes, self._values = labels, counts, codes, values
        self._fills = fills
        self._built: dict[int, list[dict[str, Any]]] = {}

    def detach(self) -> None:
        """Copy the record arrays, so that later steps cannot change what this step reports."""
        self._codes = self._codes.copy()
        self._values = self._values.copy()

    def __len__(self) -> int:
        return int(self._counts.shape[0])

    def _row(self, i: int) -> list[dict[str, Any]]:
        row = self._built.get(i)
        if row is None:
            n = int(self._counts[i])
            if n == 0:
                row = []
            elif self._fills:
                row = self._labels.fills(self._codes[i], self._values[i], n)
            else:
                row = self._labels.rejected(self._codes[i], self._values[i], n)
            self._built[i] = row
        return row

    @overload
    def __getitem__(self, i: int) -> list[dict[str, Any]]: ...

    @overload
    def __getitem__(self, i: slice) -> list[list[dict[str, Any]]]: ...

    def __getitem__(self, i: int | slice) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        return lazy_item(len(self), i, self._row)

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        return (self._row(k) for k in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable-style container, like list

    def __repr__(self) -> str:
        return f"PerEnvRecords({list(self)!r})"


__all__ = ["FILL_KEYS", "REJECT_KEYS", "REJECT_STRIDE", "PerEnvRecords", "StepLabels", "end_reason"]
