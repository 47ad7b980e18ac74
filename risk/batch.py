"""The vector risk path in one batch: every account of a vector env projected by one numba call.

Why: `risk.wrapper.RiskVectorWrapper` used to run, per account and per hour, a
`PortfolioSnapshot`, `RiskProjector.project` (ladder and kill-switch objects, a
`RiskDecision`) and an info dict: about 50 us of Python per account-hour, most of an SB3
training step's env time. Here the snapshot is read from the ledger as (B, N) arrays, the
drawdown ladder is updated on arrays, the rules run for all accounts in
`risk.kernels.project_rows`, and the info dicts are built from the step's arrays only when
read (`RiskInfos`).

Exactness: a row gets the batched result only where the per-row path would do nothing
but arithmetic: finite equity and peaks, the snapshot aligned with the market, no
market-wide kill-switch condition at t, no exchange reported down, no halt starting now,
no held-asset trigger and no kernel fallback. Every other row ("slow") is left untouched
here and the caller runs `RiskProjector.project` on it as before, so triggers, audits and
halts are recorded by the same code. The arrays use the per-row path's floating-point
operations in the same order, so every output is bit-identical
(tests/risk/test_risk_batch.py, and the golden vector run in tests/env/test_golden_run.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from envs.step_info import lazy_item
from risk import kernels as K
from risk.ladder import LEVEL_NAMES
from risk.projection import _DETAILS, RULE_ORDER, Intervention, RiskDecision, RiskProjector, _sanitise_detail

_HELD_TRIGGERS = K.S_INTEGRITY | K.S_TRIGGER


@dataclass(frozen=True)
class AccountArrays:
    """The `PortfolioSnapshot` of every row of a `BatchCore`, as arrays over accounts (same values)."""

    t: np.ndarray  # (B,) int64 decision bars
    timestamp: np.ndarray  # (B,) int64
    equity: np.ndarray  # (B,)
    peak: np.ndarray  # (B,) the env's own peak equity
    units: np.ndarray  # (B, N)
    prices: np.ndarray  # (B, N) marks at t
    weights: np.ndarray  # (B, N) units x prices / equity (0 where equity <= 0)
    tradable: np.ndarray  # (B, N) bool
    alive: bool  # every equity > 0 (no row needs the zero-weights case)

    @classmethod
    def of(cls, core: Any) -> AccountArrays:
        """Read from ``core`` (a `BatchCore`) like `envs.kraken_spot.snapshot_of`, all rows at once."""
        led = core.ledger
        t = np.array(led.t, dtype=np.int64)
        eq = led.equity.copy()
        prices = core.arrays.mark[t]
        units = led.units.copy()
        alive = bool((eq > 0).all())
        weights = _per_equity(units * prices, eq, alive)
        return cls(t, core.market.timestamps[t], eq, led.peak.copy(), units, prices, weights, core.arrays.tradable[t],
                   alive)

    def realised(self, units_after: np.ndarray) -> np.ndarray:
        """`risk.wrapper.realised_weights` of every row: units after the fills x prices / equity at the decision."""
        return _per_equity(np.asarray(units_after, dtype=np.float64) * self.prices, self.equity, self.alive)


def _per_equity(values: np.ndarray, equity: np.ndarray, alive: bool) -> np.ndarray:
    """``values / equity`` per row, 0 for a row whose equity is not > 0 (as the per-row code does)."""
    if alive:
        return values / equity[:, None]  # type: ignore[no-any-return]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = values / equity[:, None]
    out[~(equity > 0)] = 0.0
    return out  # type: ignore[no-any-return]


@dataclass
class BatchDecisions:
    """One batched projection: per-row arrays (fresh each step, so a later step cannot change them).

    ``slow`` rows were not decided here (see the module docstring); `RiskInfos` takes their
    `RiskDecision` from the caller.
    """

    slow: np.ndarray  # (B,) bool
    any_slow: bool
    t: np.ndarray
    props: np.ndarray  # (B, N) the proposals as projected (current weights where the action was held)
    out: np.ndarray  # (B, 2, N) sanitised current weights, executed target
    codes: np.ndarray  # (B,) status bits
    amounts: np.ndarray  # (B, N_RULES)
    changed: np.ndarray  # (B, N_RULES, N)
    level: np.ndarray  # (B,) ladder level
    drawdown: np.ndarray  # (B,)
    engaged: np.ndarray  # (B,) kill switch engaged
    engaged_by: list[Any]  # per row: the switch's ``engaged_by`` list at the decision (its reasons); None if slow


class BatchProjector:
    """Projects every account of a vector env at once; the per-account `RiskProjector`s keep the state.

    Usable while all projectors share the first one's limits and market inputs (forks do;
    a `RiskProjector.set_market` on one of them ends it: `usable` is then False and the
    wrapper goes back to the per-row path).
    """

    def __init__(self, projectors: Sequence[RiskProjector]) -> None:
        first = projectors[0]
        self.projectors = projectors
        self.limits, self.tables, self.clusters = first.limits, first._tables, first.clusters
        self.assets = first.assets
        self.n_bars = first._n_bars
        self.market_ts = np.asarray(first.market.timestamps, dtype=np.int64)
        self.engage = np.asarray(first._engage, dtype=bool)
        lim = self.limits
        self.thresholds = np.array([lim.dd_halt, lim.dd_cut, lim.dd_reduce], dtype=np.float64)
        self.rebalance_hours = int(lim.dd_cut_rebalance_hours)
        self.scratch = tuple(K.new_scratch(first.n_assets))
        self.clip_tmp = np.empty(first.n_assets + 1)
        # cluster labels of every bar (a lookup per row instead of a call)
        self.labels = np.stack([first.clusters.labels(t) for t in range(first._n_bars)]).astype(np.int64)
        self.asset_names = first.asset_names  # every projector of a batch has the same assets

    def usable(self) -> bool:
        """True while every projector has the limits and market inputs this batch was built with."""
        lim, tab, cl = self.limits, self.tables, self.clusters
        return all(p.limits is lim and p._tables is tab and p.clusters is cl for p in self.projectors)

    def clip(self, acts: np.ndarray) -> tuple[np.ndarray, int]:
        """`risk.kernels.clip_action` of each row of ``acts`` (B, W) in place: the amounts (-1.0 for NaN/inf
        rows) and how many rows were clipped or non-finite."""
        amounts = np.empty(acts.shape[0])
        noted = K.clip_rows(acts, self.clip_tmp, self.scratch[4], amounts)
        return amounts, noted

    def account_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Each projector's ladder high-water mark (B,) and its (halted, kill switch engaged, exchange
        reported down) flags (3, B): what the batched ladder reads."""
        ladders = [p.ladder for p in self.projectors]
        switches = [p.kill_switch for p in self.projectors]
        held_peak = np.array([x.peak_equity for x in ladders], dtype=np.float64)
        pairs = zip(ladders, switches, strict=True)
        flags = np.array([(x.halted, y.engaged, y.exchange_down is not None) for x, y in pairs], dtype=bool).T.copy()
        return held_peak, flags

    def commit(self, rows: Iterable[int], peaks: list[float]) -> None:
        """What `RiskProjector.project` commits for a row decided without a trigger: the ladder's new
        high-water mark ``peaks[i]`` and no active kill-switch triggers."""
        for i in rows:
            p = self.projectors[i]
            p.ladder.peak_equity = peaks[i]
            ks = p.kill_switch
            if ks.active:
                ks.active = []

    def project(self, acc: AccountArrays, props: np.ndarray, skip: np.ndarray) -> BatchDecisions:
        """Decide every row but ``skip`` (rows the env resets now); rows it cannot decide exactly are marked slow.

        Commits the ladder's high-water mark and the kill switch's (empty) active triggers of
        the rows decided here, exactly as `RiskProjector.project` would; slow rows are untouched.
        """
        b = props.shape[0]
        held_peak, flags = self.account_state()
        halted, engaged, down = flags[0], flags[1], flags[2]
        peak, dd = np.empty(b), np.empty(b)
        level, sched, slow = np.empty(b, dtype=np.int64), np.empty(b, dtype=bool), np.empty(b, dtype=bool)
        n_slow = K.ladder_rows(held_peak, acc.peak, acc.equity, halted, down, self.thresholds, acc.t, acc.timestamp,
                               self.market_ts, self.engage, self.rebalance_hours, peak, dd, level, sched, slow)
        tc = np.where(slow, 0, acc.t) if n_slow else acc.t  # slow rows may be outside the market
        n = props.shape[1]
        out = np.empty((b, 2, n))
        codes = np.zeros(b, dtype=np.int64)
        amounts = np.empty((b, K.N_RULES))
        changed = np.empty((b, K.N_RULES, n), dtype=bool)
        redo = K.project_rows(props, acc.weights, acc.units, acc.tradable, acc.prices, self.labels[tc], out, tc,
                              level, engaged, sched, acc.equity, self.tables, self.scratch, amounts, changed, codes)
        if redo:
            slow |= (codes < 0) | ((codes & _HELD_TRIGGERS) != 0)
        skipped = bool(skip.any())
        if skipped:
            slow &= ~skip
        any_slow = bool(n_slow or redo) and bool(slow.any())
        by: list[Any] = [None] * b
        decided = range(b) if not (any_slow or skipped) else np.flatnonzero(~slow & ~skip).tolist()
        self.commit(decided, peak.tolist())
        for i in decided:
            by[i] = self.projectors[i].kill_switch.engaged_by
        return BatchDecisions(slow, any_slow, acc.t, props, out, codes, amounts, changed, level, dd, engaged, by)

    def interventions(self, d: BatchDecisions, i: int) -> list[Intervention]:
        """Row ``i``'s kernel interventions, as `RiskProjector._project_fast` records them."""
        ivs: list[Intervention] = []
        code = int(d.codes[i])
        rules = code & K.RULE_MASK
        while rules:
            low = rules & -rules
            r = low.bit_length() - 1
            rules ^= low
            amount = float(d.amounts[i, r])
            if r == K.R_SANITISE:
                ivs.append(Intervention("sanitise", (), amount, _sanitise_detail(code)))
            else:
                detail = f"engaged: {_reasons(d.engaged_by[i])}" if r == K.R_KILL else _DETAILS.get(r, "")
                ivs.append(Intervention(RULE_ORDER[r], self.asset_names(d.changed[i, r]), amount, detail))
        return ivs

    def info(self, d: BatchDecisions, i: int) -> dict[str, Any]:
        """`RiskDecision.to_info` of row ``i`` (a row decided here)."""
        level = int(d.level[i])
        return {
            "t": int(d.t[i]),
            "proposed": d.props[i].copy(),
            "executed": d.out[i, 1].copy(),
            "interventions": [iv.to_dict() for iv in self.interventions(d, i)],
            "ladder_level": level,
            "ladder_state": LEVEL_NAMES[level],
            "drawdown": float(d.drawdown[i]),
            "kill_switch": {
                "engaged": bool(d.engaged[i]),
                "reasons": _reasons(d.engaged_by[i]),
                "engaged_now": False,
                "active_triggers": [],
            },
            "halt": level == 3,
        }


def _reasons(engaged_by: list[Any] | None) -> list[str]:
    """`KillSwitch.reasons` of a switch whose ``engaged_by`` was this (None: not engaged)."""
    return sorted({h.reason for h in engaged_by}) if engaged_by else []


class RiskInfos(Sequence[dict[str, Any]]):
    """``infos["risk"]`` of one vector step: item i is sub-env i's dict, built on first access.

    The same dicts as the per-row path's (`RiskDecision.to_info` + ``action``, ``realised``,
    ``shortfall``; ``{"autoreset": True}`` for a sub-env reset at this step). Everything it
    reads is private to its step.
    """

    __slots__ = ("_batch", "_built", "_d", "_ended", "_pre", "_raw", "_realised", "_shortfall", "_slow")

    def __init__(self, batch: BatchProjector, d: BatchDecisions, slow: dict[int, RiskDecision],
                 pre: dict[int, Intervention], raw: np.ndarray, ended: np.ndarray, realised: np.ndarray,
                 shortfall: np.ndarray) -> None:
        self._batch, self._d, self._slow, self._pre, self._raw = batch, d, slow, pre, raw
        self._ended, self._realised, self._shortfall = ended, realised, shortfall
        self._built: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return int(self._ended.shape[0])

    def _row(self, i: int) -> dict[str, Any]:
        row = self._built.get(i)
        if row is None:
            row = self._build(i)
            self._built[i] = row
        return row

    def _build(self, i: int) -> dict[str, Any]:
        if self._ended[i]:
            return {"autoreset": True}
        decision = self._slow.get(i)
        info = decision.to_info() if decision is not None else self._batch.info(self._d, i)
        pre = self._pre.get(i)
        if pre is not None:
            info["interventions"].insert(0, pre.to_dict())
        info["action"] = self._raw[i]
        info["realised"] = self._realised[i]
        info["shortfall"] = self._shortfall[i]
        return info

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        return lazy_item(len(self), i, self._row)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self._row(k) for k in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RiskInfos | list):
            return len(self) == len(other) and all(_same(a, b) for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RiskInfos({list(self)!r})"


def _same(a: Any, b: Any) -> bool:
    """Deep equality of info values (arrays compared element-wise, bit for bit)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        return x.tobytes() == y.tobytes() if x.dtype.kind in "fcbiu" else bool(np.array_equal(x, y))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


__all__ = ["AccountArrays", "BatchDecisions", "BatchProjector", "RiskInfos"]
