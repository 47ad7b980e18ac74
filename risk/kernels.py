"""Numba kernels of the projection's per-step fast path (`RiskProjector.project`).

`project_row` runs rules 1-15 of `risk.projection` for one snapshot and writes the
current and executed weights, the assets each rule changed and the amount. Each entry
of `risk.projection.RULE_ORDER` is one inlined helper ``rule_<name>`` here and one numpy
function of the same name in `risk.rules` (the reference), so the twins can be compared
one rule at a time. The kernel keeps the reference's floating-point operations *in the
same order*: sums use numpy's pairwise summation (`envs.numba_utils.pwsum`, identical to
``ndarray.sum`` on contiguous float64), group sums accumulate in index order like
``np.bincount``, and min/max pick the same operand as ``np.minimum``/``np.maximum``. The
executed target is therefore bit-identical to the reference's
(tests/risk/test_risk_properties.py checks whole decisions, tests/risk/test_risk_rules.py
single rules).

Arguments come in named structures: `Tables` (per market), `Row` (per call), `Scratch`
(per projector) and `RuleInputs` (what every rule reads). `project_row` takes them as
plain tuples and rebuilds the named ones inside: numba types a plain tuple argument in C,
a namedtuple in Python (~1.4 us a call, measured).

Anything unusual the kernel does not handle (a broken invariant) returns `FALLBACK` and
the caller reruns the reference; triggers are only *detected* here (status bits), their
`TriggerHit` records are built by the caller.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from envs.numba_utils import INLINE, JIT, JIT_ALLOC, njit
from envs.numba_utils import max_num as _mx
from envs.numba_utils import min_nan as _min
from envs.numba_utils import min_num as _mn
from envs.numba_utils import pwsum as _pwsum

# rule indices: positions in risk.projection.RULE_ORDER
R_SANITISE, R_UNTRADABLE, R_HALT, R_MAXPOS, R_KILL, R_BLOCK, R_SCHED = 0, 1, 2, 3, 4, 5, 6
R_VOL, R_ASSET, R_LADDER, R_CLUSTER, R_EXPOSURE, R_MIN_ORDER, R_COST, R_FALLBACK = 7, 8, 9, 10, 11, 12, 13, 14
N_RULES = 15
RULE_MASK = (1 << N_RULES) - 1

# the limits vector (`limits_vector`)
L_MAXPOS, L_ASSET, L_GROSS, L_CLUSTER, L_SIZE_FACTOR, L_EXPOSURE_FACTOR, L_BAND = 0, 1, 2, 3, 4, 5, 6

# bits of the (T, N) trigger table (`risk.kill_switch.MarketSignals.flags`)
F_MARKET = 1  # the asset's market trigger fires (spike, spread, bad price): no entry into it
F_HELD = 2  # holding the asset is a data-integrity failure (NaN close, stale): engages the switch

# cost-gate inputs: a (4, N) row of `risk.cost_gate.CostInputs.pack` and (fee, impact_k, max_slippage)
C_RETURN, C_HALF, C_SIGMA, C_DVOL = 0, 1, 2, 3

# status bits of `project_row`'s return value (bits 0..14: rule r changed something)
S_INTEGRITY = 1 << 16  # the snapshot's weights were not finite
S_TRIGGER = 1 << 17  # a held asset's integrity trigger fires
S_NONFINITE = 1 << 20  # proposal had NaN/inf: current weights held
S_NEGATIVE = 1 << 21  # negative proposal weights clipped to 0
S_SCALED = 1 << 22  # proposal summing above 1 (+1e-9) scaled to 1
FALLBACK = -1

# no reference counting in the projection (`envs.numba_utils.JIT`): it allocates nothing, and
# with the runtime on every call passing `RuleInputs` increfs/decrefs each of its arrays;
# only the entry points that allocate a stack when given none keep the runtime (`_ALLOC`)
_JIT, _ALLOC = JIT, JIT_ALLOC
_RULE = INLINE  # the rule helpers, inlined into `project_row`


class Tables(NamedTuple):
    """Per-market inputs of `project_row`, built once by `RiskProjector.set_market`."""

    vol_cap: np.ndarray  # (T, N) rule 8's cap per bar
    flags: np.ndarray  # (T, N) int8 trigger bits F_*
    costs: np.ndarray  # (T, 4, N) cost-gate inputs, rows C_*
    lim: np.ndarray  # (7,) the limits vector, L_*
    cp: np.ndarray  # (4,) fee, impact_k, max_slippage, min_order_fraction
    lots: np.ndarray  # (3, N) lot scale, ordermin, costmin


class Row(NamedTuple):
    """One call of `project_row`: the proposal, the snapshot's arrays, bar t's cluster labels, the output."""

    prop: np.ndarray  # (N,) the proposal (any float values)
    weights: np.ndarray  # (N,) the snapshot's weights
    units: np.ndarray  # (N,)
    tradable: np.ndarray  # (N,) bool
    prices: np.ndarray  # (N,)
    labels: np.ndarray  # (N,) int64 cluster labels of bar t
    out: np.ndarray  # (2, N) written: the sanitised current weights, the executed target


class Scratch(NamedTuple):
    """Per-projector buffers: what `project_row` reports besides ``out`` and its scratch."""

    amounts: np.ndarray  # (N_RULES,) sum of |change| per rule that changed something
    changed: np.ndarray  # (N_RULES, N) bool: the assets each rule changed
    work: np.ndarray  # (6, N + 1) float64 scratch: before, tmp, sums, kept, fsums, lsums
    mask: np.ndarray  # (5, N + 1) bool: scratch, held (output), over, locked, blocked
    stk: np.ndarray  # (4, 64) float64: pairwise-sum stack


class RuleInputs(NamedTuple):
    """What the rules read besides the weights (kernel and numpy reference alike)."""

    cur: np.ndarray  # (N,) sanitised current weights (non-finite -> 0, negative -> 0)
    locked: np.ndarray  # (N,) bool: no bar at t, or dust: the weight stays as held
    blocked: np.ndarray  # (N,) bool: the asset's own market trigger fires (no entry)
    vol: np.ndarray  # (N,) rule 8's cap at t
    labels: np.ndarray  # (N,) int64 cluster labels
    costs: np.ndarray  # (4, N) cost-gate inputs at t
    prices: np.ndarray  # (N,) the snapshot's prices
    lots: np.ndarray  # (3, N)
    lim: np.ndarray  # (7,) limits vector
    cp: np.ndarray  # (4,) cost parameters
    equity: float
    level: int  # drawdown-ladder level 0..3
    ks: bool  # kill switch engaged (after this bar's triggers)
    sched: bool  # level-2 reduce-only hour


def new_scratch(n: int) -> Scratch:
    """Fresh buffers for an ``n``-asset projector."""
    return Scratch(
        np.zeros(N_RULES), np.zeros((N_RULES, n), dtype=bool), np.zeros((6, n + 1)),
        np.zeros((5, n + 1), dtype=bool), np.zeros((4, 64)),
    )  # fmt: skip


def limits_vector(limits: Any) -> np.ndarray:
    """The limits `project_row` reads (a `RiskLimits`), as a float64 vector indexed by ``L_*``."""
    return np.array(
        [
            limits.max_positions,
            limits.max_asset_weight,
            limits.max_gross_exposure,
            limits.max_cluster_weight,
            limits.dd_reduce_size_factor,
            limits.dd_cut_exposure_factor,
            limits.no_trade_band,
        ],
        dtype=np.float64,
    )


# ---------------------------------------------------------------- shared pieces
@njit(**_ALLOC)
def pwsum(a: np.ndarray) -> float:
    """``a.sum()`` for a contiguous 1-D float64 array, bit for bit."""
    return _pwsum(a, a.shape[0], np.empty((4, 64)))


@njit(**_ALLOC)
def _cap_total(w: np.ndarray, cap: float, locked: np.ndarray, tmp: np.ndarray, stk: Any = None) -> None:
    """In place: `risk.rules._cap_total` (``tmp`` and ``stk`` are scratch; a stack is allocated if none)."""
    if stk is None:
        stk = np.empty((4, 64))
    _cap_total_in(w, cap, locked, tmp, stk)


@njit(**_JIT)
def _cap_total_in(w: np.ndarray, cap: float, locked: np.ndarray, tmp: np.ndarray, stk: np.ndarray) -> None:
    """`_cap_total` with its stack given (the kernel's)."""
    n = w.shape[0]
    total = _pwsum(w, n, stk)
    if total <= cap:
        return
    for i in range(n):
        tmp[i] = 0.0 if locked[i] else w[i]
    free_total = _pwsum(tmp, n, stk)
    if not free_total > 0.0:
        return
    for i in range(n):
        tmp[i] = w[i] if locked[i] else 0.0
    room = cap - _pwsum(tmp, n, stk)
    if room > 0.0:
        f = room / free_total
        for i in range(n):
            if not locked[i]:
                w[i] = w[i] * f
    else:
        for i in range(n):
            if not locked[i]:
                w[i] = 0.0
    shrink = 1e-15
    while _pwsum(w, n, stk) > cap:
        for i in range(n):
            tmp[i] = 0.0 if locked[i] else w[i]
        if not _pwsum(tmp, n, stk) > 0.0:
            return
        if shrink >= 0.5:
            for i in range(n):
                if not locked[i]:
                    w[i] = 0.0
            return
        g = 1.0 - shrink
        for i in range(n):
            if not locked[i]:
                w[i] = w[i] * g
        shrink *= 2.0


@njit(**_JIT)
def _n_groups(labels: np.ndarray) -> int:
    """``np.bincount``'s output length: the largest label + 1."""
    g = 0
    for i in range(labels.shape[0]):
        if labels[i] + 1 > g:
            g = labels[i] + 1
    return g


@njit(**_JIT)
def _group_sums(w: np.ndarray, labels: np.ndarray, sums: np.ndarray) -> int:
    """``np.bincount(labels, weights=w)`` into ``sums``; returns the number of groups."""
    n = w.shape[0]
    g = _n_groups(labels)
    for k in range(g):
        sums[k] = 0.0
    for i in range(n):
        sums[labels[i]] += w[i]
    return g


@njit(**_JIT)
def _free_group_sums(w: np.ndarray, labels: np.ndarray, locked: np.ndarray, take_locked: bool,
                     sums: np.ndarray) -> None:
    """``np.bincount(labels, weights=np.where(locked, 0, w))`` (or of the locked part) into ``sums``."""
    n = w.shape[0]
    for k in range(_n_groups(labels)):
        sums[k] = 0.0
    for i in range(n):
        sums[labels[i]] += (w[i] if locked[i] else 0.0) if take_locked else (0.0 if locked[i] else w[i])


@njit(**_JIT)
def _cap_groups(w: np.ndarray, labels: np.ndarray, cap: float, locked: np.ndarray, sums: np.ndarray,
                fsums: np.ndarray, lsums: np.ndarray, over: np.ndarray) -> None:
    """In place: `risk.rules._cap_groups` (``sums``/``fsums``/``lsums`` float, ``over`` bool scratch)."""
    n = w.shape[0]
    g = _group_sums(w, labels, sums)
    _free_group_sums(w, labels, locked, False, fsums)
    anyover = False
    for k in range(g):
        over[k] = sums[k] > cap and fsums[k] > 0.0
        anyover = anyover or over[k]
    if not anyover:
        return
    _free_group_sums(w, labels, locked, True, lsums)
    for i in range(n):
        k = labels[i]
        if over[k] and not locked[i]:
            room = cap - lsums[k]
            w[i] = w[i] * (room / fsums[k]) if room > 0.0 else 0.0
    shrink = 1e-15
    while True:
        _group_sums(w, labels, sums)
        _free_group_sums(w, labels, locked, False, fsums)
        anyover = False
        for k in range(g):
            over[k] = sums[k] > cap and fsums[k] > 0.0
            anyover = anyover or over[k]
        if not anyover:
            return
        if shrink >= 0.5:
            for i in range(n):
                if over[labels[i]] and not locked[i]:
                    w[i] = 0.0
            return
        f = 1.0 - shrink
        for i in range(n):
            if over[labels[i]] and not locked[i]:
                w[i] = w[i] * f
        shrink *= 2.0


@njit(**_JIT)
def _mark(w: np.ndarray, s: Scratch) -> None:
    """Remember ``w`` before a rule (in ``s.work[0]``) for `_record`."""
    before = s.work[0]
    for i in range(w.shape[0]):
        before[i] = w[i]


@njit(**_JIT)
def _record(rule: int, w: np.ndarray, s: Scratch) -> int:
    """Mark the assets ``rule`` changed since `_mark` and the sum of |change|; returns the rule's bit or 0."""
    before, tmp = s.work[0], s.work[1]
    k = 0
    for i in range(w.shape[0]):
        c = w[i] != before[i]
        s.changed[rule, i] = c
        if c:
            tmp[k] = abs(w[i] - before[i])
            k += 1
    if k == 0:
        return 0
    s.amounts[rule] = _pwsum(tmp, k, s.stk)
    return 1 << rule


@njit(**_JIT)
def _size_bound(i: int, c: RuleInputs) -> float:
    return _mx(c.lim[L_SIZE_FACTOR] * _mn(c.vol[i], c.lim[L_ASSET]), c.cur[i])


@njit(**_JIT)
def _exposure_cap(level: int, lim: np.ndarray) -> float:
    cap = lim[L_GROSS]
    return cap * lim[L_EXPOSURE_FACTOR] if level >= 2 else cap


@njit(**_JIT)
def violates(w: np.ndarray, c: RuleInputs, s: Scratch) -> bool:
    """True if ``w`` breaks a limit: `risk.rules.violation` != '' (same checks)."""
    n = w.shape[0]
    cur, locked, lim = c.cur, c.locked, c.lim
    for i in range(n):
        if not np.isfinite(w[i]):
            return True
    for i in range(n):
        if w[i] < 0.0:
            return True
    for i in range(n):
        if locked[i] and w[i] != cur[i]:
            return True
    if c.level == 3:
        for i in range(n):  # noqa: SIM110 - a plain loop compiles to the tightest code
            if not locked[i] and w[i] != 0.0:
                return True
        return False
    n_locked = 0
    n_free = 0
    for i in range(n):
        if w[i] != 0.0:
            if locked[i]:
                n_locked += 1
            else:
                n_free += 1
    room = lim[L_MAXPOS] - n_locked
    if n_free > (room if room > 0.0 else 0.0):
        return True
    for i in range(n):
        if not locked[i] and (w[i] > lim[L_ASSET] or w[i] > c.vol[i]):
            return True
    if c.level >= 1:
        for i in range(n):
            if not locked[i] and w[i] > _size_bound(i, c):
                return True
    sums, fsums, tmp = s.work[2], s.work[4], s.work[1]
    g = _group_sums(w, c.labels, sums)
    _free_group_sums(w, c.labels, locked, False, fsums)
    for k in range(g):
        if sums[k] > lim[L_CLUSTER] and fsums[k] > 0.0:
            return True
    if _pwsum(w, n, s.stk) > min(1.0, _exposure_cap(c.level, lim)):
        for i in range(n):
            tmp[i] = 0.0 if locked[i] else w[i]
        if _pwsum(tmp, n, s.stk) > 0.0:
            return True
    if c.ks or c.sched:
        for i in range(n):
            if w[i] > cur[i]:
                return True
    for i in range(n):  # noqa: SIM110 - a plain loop compiles to the tightest code
        if c.blocked[i] and w[i] > cur[i]:
            return True
    return False


@njit(**_JIT)
def _round_trip(i: int, change: float, c: RuleInputs) -> float:
    """`risk.cost_gate.round_trip_cost` for asset ``i`` (same operations in the same order)."""
    costs, cp = c.costs, c.cp
    dv = costs[C_DVOL, i]
    notional = abs(change) * c.equity
    traded = dv > 0.0
    impact = cp[1] * costs[C_SIGMA, i] * np.sqrt(notional / (dv if traded else 1.0))
    if not traded:
        impact = cp[2]
    rate = _min(costs[C_HALF, i] + impact, cp[2])
    return 2.0 * (cp[0] + rate)


# ---------------------------------------------------------------- the rules, in RULE_ORDER
@njit(**_RULE)
def rule_sanitise(prop: np.ndarray, cur: np.ndarray, w: np.ndarray, s: Scratch) -> int:
    """1. ``w`` = the proposal: NaN/inf holds ``cur``, negatives -> 0, a sum above 1 scaled to 1.

    Returns the status bits (`S_NONFINITE`, `S_NEGATIVE`, `S_SCALED`, the rule's bit); the
    amount goes to ``s.amounts``; the rule reports no assets.
    """
    n = prop.shape[0]
    tmp = s.work[1]
    status = 0
    finite = True
    neg = False
    for i in range(n):
        x = prop[i]
        if not np.isfinite(x):
            finite = False
        elif x < 0.0:
            neg = True
    if not finite:
        for i in range(n):
            w[i] = cur[i]
            x = prop[i]
            if x != x or x == -np.inf:
                x = 0.0
            elif x == np.inf:
                x = 1.0
            tmp[i] = abs(x - w[i])
        s.amounts[R_SANITISE] = _pwsum(tmp, n, s.stk)
        return S_NONFINITE | (1 << R_SANITISE)
    for i in range(n):
        x = prop[i]
        w[i] = (x if x > 0.0 else 0.0) if neg else x
    total = _pwsum(w, n, s.stk)
    if total > 1.0:
        none = s.mask[0]
        for i in range(n):
            none[i] = False
        _cap_total_in(w, 1.0, none, tmp, s.stk)
        if total > 1.0 + 1e-9:
            status |= S_SCALED
    if neg:
        status |= S_NEGATIVE
    if status:
        for i in range(n):
            tmp[i] = abs(prop[i] - w[i])
        s.amounts[R_SANITISE] = _pwsum(tmp, n, s.stk)
        status |= 1 << R_SANITISE
    return status


@njit(**_RULE)
def rule_untradable(w: np.ndarray, c: RuleInputs, s: Scratch) -> int:
    """2. A locked asset (no bar, or dust) keeps its current weight."""
    _mark(w, s)
    for i in range(w.shape[0]):
        if c.locked[i]:
            w[i] = c.cur[i]
    return _record(R_UNTRADABLE, w, s)


@njit(**_RULE)
def rule_halt(w: np.ndarray, c: RuleInputs, s: Scratch) -> int:
    """3. Ladder level 3: all cash (locked weights stay)."""
    if c.level != 3:
        return 0
    _mark(w, s)
    for i in range(w.shape[0]):
        if not c.locked[i]:
            w[i] = 0.0
    return _record(R_HALT, w, s)


@njit(**_RULE)
def rule_max_positions(w: np.ndarray, c: RuleInputs, s: Scratch) -> int:
    """4. Keep the locked positions, then the largest free ones (ties: lower index, like a stable argsort)."""
    n = w.shape[0]
    locked = c.locked
    k = int(c.lim[L_MAXPOS])
    n_locked = 0
    n_free = 0
    for i in range(n):
        if w[i] != 0.0:
            if locked[i]:
                n_locked += 1
            else:
                n_free += 1
    room = k - n_locked if k > n_locked else 0
    if n_free <= room:
        return 0
    _mark(w, s)
    before = s.work[0]
    for i in range(n):
        if locked[i]:
            continue
        rank = 0
        for j in range(n):
            if not locked[j] and (before[j] > before[i] or (before[j] == before[i] and j < i)):
                rank += 1
        w[i] = before[i] if rank < room else 0.0
    return _record(R_MAXPOS, w, s)


@njit(**_RULE)
def rule_kill_switch(w: np.ndarray, c: RuleInputs, s: Scratch) -> int:
    """5. Kill switch engaged: no position grows."""
    if not c.ks:
        return 0
    _mark(w, s)
    for i in range(w.shape[0]):
        w[i] = _mn(w[i], c.cur[i])
    return _record(R_KILL, w, s)


@njit(**_RULE)
def rule_asset_block(w: np.ndarray, c: RuleInputs, s: Scratch) -> int:
    """6. An asset whose own market trigger fires may not grow."""
    _mark(w, s)
    for i in range(w.shape[0]):
        if c.blocked[i]:
            w[i] = _mn(w[i], c.cur[i])
    return _record(R_BLOCK, w, s)


@njit(**_RULE)
def rule_ladder_schedule(w: np.ndarray, c: RuleInputs, s: Scratch) -> int:
    """7. Level-2 hour between rebalances: reduce-only."""
    if not c.sched:
        return 0
    _mark(w, s)
    for i in range(w.shape[0]):
        w[i] = _mn(w[i], c.cur[i])
    return _record(R_SCHED, w, s)


@njit(**_RULE)
def rule_vol_sizing(w: np.ndarray, c: RuleInputs, s: Scratch) -> int:
    """8. A tradable weight is at most its ATR-stop cap."""
    _mark(w, s)
    for i in range(w.shape[0]):
        if not c.locked[i]:
            w[i] = _mn(w[i], c.vol[i])
    return _record(R_VOL, w, s)


@njit(**_RULE)
def rule_asset_cap(w: np.ndarray, c: RuleInputs, s: Scratch) -> int:
    """9. A tradable weight is at most ``max_asset_weight``."""
    _mark(w, s)
    for i in range(w.shape[0]):
        if not c.locked[i]:
            w[i] = _mn(w[i], c.lim[L_ASSET])
    return _record(R_ASSET, w, s)


@njit(**_RULE)
def rule_ladder_size(w: np.ndarray, c: RuleInputs, s: Scratch) -> int:
    """10. Level >= 1: no tradable weight above the size factor x its size cap (or its current weight)."""
    if c.level < 1:
        return 0
    _mark(w, s)
    for i in range(w.shape[0]):
        if not c.locked[i]:
            w[i] = _mn(w[i], _size_bound(i, c))
    return _record(R_LADDER, w, s)


@njit(**_RULE)
def rule_cluster_cap(w: np.ndarray, c: RuleInputs, s: Scratch) -> int:
    """11. Clusters above ``max_cluster_weight``: free members scaled into the room the locked ones leave."""
    _mark(w, s)
    work = s.work
    _cap_groups(w, c.labels, c.lim[L_CLUSTER], c.locked, work[2], work[4], work[5], s.mask[2])
    return _record(R_CLUSTER, w, s)


@njit(**_RULE)
def rule_exposure_cap(w: np.ndarray, c: RuleInputs, s: Scratch) -> int:
    """12. The free weights scaled so the sum is at most the (ladder-cut) gross exposure."""
    _mark(w, s)
    _cap_total_in(w, _exposure_cap(c.level, c.lim), c.locked, s.work[1], s.stk)
    return _record(R_EXPOSURE, w, s)


@njit(**_RULE)
def rule_order_minimum(w: np.ndarray, c: RuleInputs, s: Scratch) -> int:
    """13. No buy below the pair's minimum order; a sale below it enlarged to it (no dust left)."""
    _mark(w, s)
    cur, lots = c.cur, c.lots
    for i in range(w.shape[0]):
        if c.locked[i]:
            continue
        p = c.prices[i]
        value = _mx((_mx(lots[1, i], lots[2, i] / p) + 2.0 / lots[0, i]) * p / c.equity, 2.0 * c.cp[3])
        d = w[i] - cur[i]
        if d > 0.0 and d < value:
            w[i] = cur[i]
        elif d < 0.0:
            x = cur[i] - value if -d < value else w[i]
            w[i] = 0.0 if x < value else x  # never leave a remainder too small to sell
    return _record(R_MIN_ORDER, w, s)


@njit(**_RULE)
def rule_cost_gate(w: np.ndarray, c: RuleInputs, s: Scratch) -> int:
    """14. A change that does not beat its cost is not made; a skipped decrease keeps the current
    weight only where that breaks no limit (`risk.rules.rule_cost_gate`)."""
    _mark(w, s)
    n = w.shape[0]
    cur, lim, labels = c.cur, c.lim, c.labels
    kept, sums, skip = s.work[3], s.work[2], s.mask[0]
    band = lim[L_BAND]
    anyskip = False
    anydown = False
    for i in range(n):
        d = w[i] - cur[i]
        r = c.costs[C_RETURN, i]
        if np.isfinite(r):
            sk = not (d * r > abs(d) * _round_trip(i, d, c))
        else:
            sk = abs(d) < band
        sk = sk and d != 0.0
        skip[i] = sk
        if sk:
            anyskip = True
            if d > 0.0:
                w[i] = cur[i]
            else:
                anydown = True
    if anyskip and anydown:
        for i in range(n):
            kept[i] = w[i]
        # candidates: the skipped decreases, judged on the weights before this loop (``kept``)
        _group_sums(w, labels, sums)
        total = _pwsum(w, n, s.stk)
        count = 0
        for i in range(n):
            if w[i] != 0.0:
                count += 1
        cap = min(1.0, _exposure_cap(c.level, lim))
        for i in range(n):
            if not (skip[i] and kept[i] - cur[i] < 0.0):
                continue
            ci = cur[i]
            delta = ci - w[i]
            opens = w[i] == 0.0
            if ci > lim[L_ASSET] or ci > c.vol[i] or (opens and count + 1 > lim[L_MAXPOS]):
                continue
            if sums[labels[i]] + delta > lim[L_CLUSTER] or total + delta > cap:
                continue
            w[i] = ci
            sums[labels[i]] += delta
            total += delta
            if opens:
                count += 1
        if violates(w, c, s):
            for i in range(n):
                w[i] = kept[i]
    return _record(R_COST, w, s)


@njit(**_RULE)
def rule_invariant_fallback(w: np.ndarray, c: RuleInputs, s: Scratch) -> bool:
    """15. The final check: True if ``w`` breaks a limit (the caller then reruns the reference,
    which records the fallback)."""
    return violates(w, c, s)


# ---------------------------------------------------------------- the projection
@njit(**_JIT)
def _current(weights: np.ndarray, cur: np.ndarray) -> int:
    """The snapshot's weights with non-finite -> 0 (`S_INTEGRITY`) and negatives -> 0, into ``cur``."""
    status = 0
    for i in range(cur.shape[0]):
        x = weights[i]
        if not np.isfinite(x):
            status = S_INTEGRITY
            x = 0.0
        cur[i] = x if x > 0.0 else 0.0
    return status


@njit(**_JIT)
def _locks(row: Row, flags: np.ndarray, lots: np.ndarray, cur: np.ndarray, mask: np.ndarray) -> int:
    """Held (``mask[1]``), locked (``mask[3]``: no bar, or dust too small to sell) and blocked
    (``mask[4]``: the asset's market trigger) assets; returns `S_TRIGGER` if a held asset's
    integrity trigger fires."""
    status = 0
    units = row.units
    for i in range(cur.shape[0]):
        held = units[i] > 0.0 or cur[i] > 0.0
        mask[1, i] = held
        u = units[i]
        dust = u > 0.0 and (u < lots[1, i] or u * row.prices[i] < lots[2, i])
        mask[3, i] = not row.tradable[i] or dust
        mask[4, i] = not mask[3, i] and (flags[i] & F_MARKET) != 0
        if held and (flags[i] & F_HELD) != 0:
            status = S_TRIGGER
    return status


@njit(**_JIT)
def _project(row: Row, t: int, level: int, ks_base: bool, sched: bool, equity: float, tab: Tables,
             s: Scratch) -> int:
    n = row.prop.shape[0]
    cur, w = row.out[0], row.out[1]
    status = _current(row.weights, cur)
    status |= rule_sanitise(row.prop, cur, w, s)
    for r in range(N_RULES):  # the sanitise rule reports no assets
        for i in range(n):
            s.changed[r, i] = False
    status |= _locks(row, tab.flags[t], tab.lots, cur, s.mask)
    ks = ks_base or (status & (S_INTEGRITY | S_TRIGGER)) != 0
    c = RuleInputs(cur, s.mask[3, :n], s.mask[4, :n], tab.vol_cap[t], row.labels, tab.costs[t], row.prices,
                   tab.lots, tab.lim, tab.cp, equity, level, ks, sched)
    status |= rule_untradable(w, c, s)
    if level == 3:
        status |= rule_halt(w, c, s)
    else:  # rules 4-14 only lower tradable weights
        status |= rule_max_positions(w, c, s)
        status |= rule_kill_switch(w, c, s)
        status |= rule_asset_block(w, c, s)
        status |= rule_ladder_schedule(w, c, s)
        status |= rule_vol_sizing(w, c, s)
        status |= rule_asset_cap(w, c, s)
        status |= rule_ladder_size(w, c, s)
        status |= rule_cluster_cap(w, c, s)
        status |= rule_exposure_cap(w, c, s)
        status |= rule_order_minimum(w, c, s)
        status |= rule_cost_gate(w, c, s)
    if rule_invariant_fallback(w, c, s):
        return FALLBACK
    return status


@njit(**_JIT)
def project_row(row: tuple, t: int, level: int, ks_base: bool, sched: bool, equity: float, tables: tuple,
                scratch: tuple) -> int:
    """One projection (rules 1-15 of `risk.projection`); ``row``, ``tables``, ``scratch``: the
    fields of `Row`, `Tables`, `Scratch` as plain tuples.

    Scalars: bar ``t``, the ladder ``level``, ``ks_base`` (kill switch engaged before this
    bar's held-asset triggers: already engaged, market-wide stress or exchange down at t,
    or a snapshot-level integrity failure found by the caller), ``sched`` (level-2
    reduce-only hour) and ``equity``. Writes ``row.out``, ``scratch.changed``/``amounts``
    per rule that changed something and ``scratch.mask[1]`` (held). Returns the status
    bits (rules in bits 0..14, ``S_*``) or `FALLBACK`.
    """
    return _project(Row(*row), t, level, ks_base, sched, equity, Tables(*tables), Scratch(*scratch))


@njit(**_JIT)
def project_rows(props: np.ndarray, weights: np.ndarray, units: np.ndarray, tradable: np.ndarray,
                 prices: np.ndarray, labels: np.ndarray, out: np.ndarray, t: np.ndarray, level: np.ndarray,
                 ks_base: np.ndarray, sched: np.ndarray, equity: np.ndarray, tables: tuple, scratch: tuple,
                 amounts: np.ndarray, changed: np.ndarray, codes: np.ndarray) -> int:
    """`project_row` for every account of a vector env in one call (`risk.batch`).

    Row ``b`` of each (B, ...) array is one account's call of `project_row`: the same
    `_project`, so each row's result is bit for bit that of the per-row kernel
    (tests/risk/test_risk_batch.py). ``scratch``: one `Scratch` tuple whose ``work``,
    ``mask`` and ``stk`` serve every row in turn; ``amounts`` (B, N_RULES) and ``changed``
    (B, N_RULES, N) receive each row's ``Scratch.amounts``/``changed``; ``codes`` (B,) the
    status bits or `FALLBACK`. Held assets (``Scratch.mask[1]``) are not kept per row: a
    row whose triggers fire is redone by the caller on the per-row path. Returns the number
    of such rows (`FALLBACK`, `S_INTEGRITY` or `S_TRIGGER`), so that the caller need not scan.
    """
    tab = Tables(*tables)
    sc = Scratch(*scratch)
    redo = 0
    for b in range(props.shape[0]):
        row = Row(props[b], weights[b], units[b], tradable[b], prices[b], labels[b], out[b])
        s = Scratch(amounts[b], changed[b], sc.work, sc.mask, sc.stk)
        code = _project(row, t[b], level[b], ks_base[b], sched[b], equity[b], tab, s)
        codes[b] = code
        if code < 0 or (code & (S_INTEGRITY | S_TRIGGER)) != 0:
            redo += 1
    return redo


@njit(**_JIT)
def ladder_rows(held_peak: np.ndarray, snap_peak: np.ndarray, equity: np.ndarray, halted: np.ndarray,
                down: np.ndarray, thresholds: np.ndarray, t: np.ndarray, ts: np.ndarray, market_ts: np.ndarray,
                engage: np.ndarray, rebalance_hours: int, peak: np.ndarray, dd: np.ndarray, level: np.ndarray,
                sched: np.ndarray, slow: np.ndarray) -> int:
    """`risk.ladder.DrawdownLadder.update` of every account, without its side effects (`risk.batch`).

    Per row: ``peak = max(held_peak, snap_peak, equity)`` (Python's ``max``: the first
    largest), the drawdown and level as `DrawdownLadder.update` / `ladder_level_of` compute
    them (``thresholds`` = dd_halt, dd_cut, dd_reduce), level 3 while ``halted``, and
    ``sched`` (level 2 between rebalance hours). ``slow`` is set where the per-row path must
    decide instead: a halt starting now (it is audited), a non-finite or non-positive
    peak/equity, a bar outside the market, a snapshot not aligned with the market, a
    market-wide kill-switch condition at t (its triggers are recorded) or an exchange
    reported down (``down``: the switch records that trigger). Returns the number
    of slow rows.
    """
    hour = 3600
    n_bars = market_ts.shape[0]
    n_slow = 0
    for b in range(equity.shape[0]):
        eq = equity[b]
        p = held_peak[b]
        if snap_peak[b] > p:
            p = snap_peak[b]
        if eq > p:
            p = eq
        peak[b] = p
        x = 1.0 - eq / p if p > 0.0 else 0.0
        dd[b] = x if x > 0.0 else 0.0
        lv = 0
        if p > 0.0:
            if eq <= p * (1.0 - thresholds[0]):
                lv = 3
            elif eq <= p * (1.0 - thresholds[1]):
                lv = 2
            elif eq <= p * (1.0 - thresholds[2]):
                lv = 1
        tb = t[b]
        bad = not (np.isfinite(eq) and np.isfinite(p) and np.isfinite(held_peak[b]) and np.isfinite(snap_peak[b]))
        bad = bad or down[b] or not p > 0.0 or tb < 0 or tb >= n_bars or (lv == 3 and not halted[b])
        if not bad:
            bad = ts[b] != market_ts[tb] or engage[tb]
        slow[b] = bad
        n_slow += bad
        if halted[b]:
            lv = 3
        level[b] = lv
        sched[b] = lv == 2 and (ts[b] // hour) % rebalance_hours != 0
    return n_slow


@njit(**_JIT)
def clip_rows(a: np.ndarray, tmp: np.ndarray, stk: np.ndarray, amounts: np.ndarray) -> int:
    """`clip_action` on each row of ``a`` (B, W) in place, amounts (or -1.0) into ``amounts`` (B,);
    returns the number of rows it clipped or found non-finite (amount != 0)."""
    noted = 0
    for b in range(a.shape[0]):
        x = _clip_in(a[b], tmp, stk)
        amounts[b] = x
        if x != 0.0:
            noted += 1
    return noted


@njit(**_JIT)
def _clip_in(a: np.ndarray, tmp: np.ndarray, stk: np.ndarray) -> float:
    """`clip_action` with its scratch given."""
    n = a.shape[0]
    clip = False
    for i in range(n):
        x = a[i]
        if not np.isfinite(x):
            return -1.0
        if abs(x) > 1.0:
            clip = True
    if not clip:
        return 0.0
    for i in range(n):
        x = a[i]
        c = x if x > -1.0 else -1.0
        c = c if c < 1.0 else 1.0
        tmp[i] = abs(x - c)
        a[i] = c
    return _pwsum(tmp, n, stk)


@njit(**_ALLOC)
def clip_action(a: np.ndarray, tmp: np.ndarray, stk: Any = None) -> float:
    """In place ``a = clip(a, -1, 1)``; returns -1.0 if ``a`` has NaN/inf (left as is),
    else ``np.abs(a - clip(a, -1, 1)).sum()`` (0.0 when nothing was clipped)."""
    if stk is None:
        stk = np.empty((4, 64))
    return _clip_in(a, tmp, stk)
