"""Numba kernels of the projection's per-step fast path (`RiskProjector.project`).

`project_row` runs rules 1-15 of `risk.projection` for one snapshot on plain arrays and
writes the current and executed weights, the assets each rule changed and the amount.
It is a transcription of the numpy reference (`RiskProjector.project_reference`) that
keeps the reference's floating-point operations *in the same order*: sums use numpy's
pairwise summation (`_pwsum`, identical to ``ndarray.sum`` on contiguous float64), group
sums accumulate in index order like ``np.bincount``, and min/max pick the same operand as
``np.minimum``/``np.maximum``. The executed target is therefore bit-identical to the
reference's (tests/risk/test_risk_kernels.py checks this on random cases).

Anything unusual the kernel does not handle (a broken invariant) returns `FALLBACK` and
the caller reruns the reference; triggers are only *detected* here (status bits), their
`TriggerHit` records are built by the caller.
"""

from __future__ import annotations

import numpy as np

from envs.numba_utils import JIT_ALLOC, njit
from envs.numba_utils import min_nan as _min
from envs.numba_utils import pairwise_block as _block

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

_JIT = JIT_ALLOC


def limits_vector(limits: object) -> np.ndarray:
    """The limits `project_row` reads, as a float64 vector indexed by the ``L_*`` constants."""
    return np.array(
        [
            limits.max_positions,  # type: ignore[attr-defined]
            limits.max_asset_weight,  # type: ignore[attr-defined]
            limits.max_gross_exposure,  # type: ignore[attr-defined]
            limits.max_cluster_weight,  # type: ignore[attr-defined]
            limits.dd_reduce_size_factor,  # type: ignore[attr-defined]
            limits.dd_cut_exposure_factor,  # type: ignore[attr-defined]
            limits.no_trade_band,  # type: ignore[attr-defined]
        ],
        dtype=np.float64,
    )


@njit(**_JIT)
def _pw(a: np.ndarray, lo: int, n: int) -> float:
    """numpy's pairwise sum of ``a[lo:lo + n]`` (same order, so the same rounding).

    Above 128 elements numpy splits ``n`` into halves (the first a multiple of 8) and adds
    the two sums; done here with an explicit stack, because numba's on-disk cache does
    not reload recursive functions safely.
    """
    if n <= 128:
        return _block(a, lo, n)
    los = np.empty(64, dtype=np.int64)
    ns = np.empty(64, dtype=np.int64)
    seen = np.zeros(64, dtype=np.bool_)
    vals = np.empty(64)
    top = 0  # node stack: (lo, n, children pushed?)
    nv = 0  # value stack
    los[0], ns[0] = lo, n
    while top >= 0:
        m = ns[top]
        if m <= 128:
            vals[nv] = _block(a, los[top], m)
            nv += 1
            top -= 1
        elif seen[top]:  # both halves summed: combine them (left + right)
            vals[nv - 2] = vals[nv - 2] + vals[nv - 1]
            nv -= 1
            seen[top] = False
            top -= 1
        else:
            seen[top] = True
            half = m // 2
            half -= half % 8
            l0 = los[top]
            los[top + 1], ns[top + 1], seen[top + 1] = l0 + half, m - half, False  # right, summed second
            los[top + 2], ns[top + 2], seen[top + 2] = l0, half, False  # left, summed first
            top += 2
    return vals[0]


@njit(**_JIT)
def pwsum(a: np.ndarray) -> float:
    """``a.sum()`` for a contiguous 1-D float64 array, bit for bit."""
    return _pw(a, 0, a.shape[0])


@njit(**_JIT)
def _mn(a: float, b: float) -> float:
    return a if a < b else b  # np.minimum's choice for non-NaN operands


@njit(**_JIT)
def _mx(a: float, b: float) -> float:
    return a if a > b else b  # np.maximum's choice for non-NaN operands


@njit(**_JIT)
def _cap_total(w: np.ndarray, cap: float, locked: np.ndarray, tmp: np.ndarray) -> None:
    """In place: `risk.projection._cap_total` (``tmp`` is scratch)."""
    n = w.shape[0]
    total = _pw(w, 0, n)
    if total <= cap:
        return
    for i in range(n):
        tmp[i] = 0.0 if locked[i] else w[i]
    free_total = _pw(tmp, 0, n)
    if not free_total > 0.0:
        return
    for i in range(n):
        tmp[i] = w[i] if locked[i] else 0.0
    room = cap - _pw(tmp, 0, n)
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
    while _pw(w, 0, n) > cap:
        for i in range(n):
            tmp[i] = 0.0 if locked[i] else w[i]
        if not _pw(tmp, 0, n) > 0.0:
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
    """In place: `risk.projection._cap_groups` (``sums``/``fsums``/``lsums`` float, ``over`` bool scratch)."""
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
def _record(
    rule: int, before: np.ndarray, w: np.ndarray, changed: np.ndarray, amounts: np.ndarray, tmp: np.ndarray
) -> int:
    """Mark the assets ``rule`` changed and the sum of |change|; returns the rule's bit or 0."""
    n = w.shape[0]
    k = 0
    for i in range(n):
        c = w[i] != before[i]
        changed[rule, i] = c
        if c:
            tmp[k] = abs(w[i] - before[i])
            k += 1
    if k == 0:
        return 0
    amounts[rule] = _pw(tmp, 0, k)
    return 1 << rule


@njit(**_JIT)
def _size_bound(i: int, vol: np.ndarray, cur: np.ndarray, lim: np.ndarray) -> float:
    return _mx(lim[L_SIZE_FACTOR] * _mn(vol[i], lim[L_ASSET]), cur[i])


@njit(**_JIT)
def _exposure_cap(level: int, lim: np.ndarray) -> float:
    cap = lim[L_GROSS]
    return cap * lim[L_EXPOSURE_FACTOR] if level >= 2 else cap


@njit(**_JIT)
def violates(
    w: np.ndarray,
    cur: np.ndarray,
    locked: np.ndarray,
    blocked: np.ndarray,
    vol: np.ndarray,
    labels: np.ndarray,
    lim: np.ndarray,
    level: int,
    no_increase: bool,
    sums: np.ndarray,
    fsums: np.ndarray,
    tmp: np.ndarray,
) -> bool:
    """True if ``w`` breaks a limit: `RiskProjector.violation` != '' (same checks)."""
    n = w.shape[0]
    for i in range(n):
        if not np.isfinite(w[i]):
            return True
    for i in range(n):
        if w[i] < 0.0:
            return True
    for i in range(n):
        if locked[i] and w[i] != cur[i]:
            return True
    if level == 3:
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
        if not locked[i] and (w[i] > lim[L_ASSET] or w[i] > vol[i]):
            return True
    if level >= 1:
        for i in range(n):
            if not locked[i] and w[i] > _size_bound(i, vol, cur, lim):
                return True
    g = _group_sums(w, labels, sums)
    _free_group_sums(w, labels, locked, False, fsums)
    for k in range(g):
        if sums[k] > lim[L_CLUSTER] and fsums[k] > 0.0:
            return True
    if _pw(w, 0, n) > min(1.0, _exposure_cap(level, lim)):
        for i in range(n):
            tmp[i] = 0.0 if locked[i] else w[i]
        if _pw(tmp, 0, n) > 0.0:
            return True
    if no_increase:
        for i in range(n):
            if w[i] > cur[i]:
                return True
    for i in range(n):  # noqa: SIM110 - a plain loop compiles to the tightest code
        if blocked[i] and w[i] > cur[i]:
            return True
    return False


@njit(**_JIT)
def _round_trip(i: int, change: float, equity: float, costs: np.ndarray, cp: np.ndarray) -> float:
    """`risk.cost_gate.round_trip_cost` for asset ``i`` (same operations in the same order)."""
    dv = costs[C_DVOL, i]
    notional = abs(change) * equity
    traded = dv > 0.0
    impact = cp[1] * costs[C_SIGMA, i] * np.sqrt(notional / (dv if traded else 1.0))
    if not traded:
        impact = cp[2]
    rate = _min(costs[C_HALF, i] + impact, cp[2])
    return 2.0 * (cp[0] + rate)


@njit(**_JIT)
def _cost_gate(
    w: np.ndarray,
    cur: np.ndarray,
    locked: np.ndarray,
    blocked: np.ndarray,
    vol: np.ndarray,
    labels: np.ndarray,
    lim: np.ndarray,
    level: int,
    no_increase: bool,
    costs: np.ndarray,
    cp: np.ndarray,
    equity: float,
    kept: np.ndarray,
    sums: np.ndarray,
    fsums: np.ndarray,
    tmp: np.ndarray,
    skip: np.ndarray,
) -> None:
    """In place: `RiskProjector._cost_gate` (``kept``, ``sums``, ``fsums``, ``tmp``, ``skip`` are scratch)."""
    n = w.shape[0]
    band = lim[L_BAND]
    anyskip = False
    anydown = False
    for i in range(n):
        d = w[i] - cur[i]
        r = costs[C_RETURN, i]
        if np.isfinite(r):
            s = not (d * r > abs(d) * _round_trip(i, d, equity, costs, cp))
        else:
            s = abs(d) < band
        s = s and d != 0.0
        skip[i] = s
        if s:
            anyskip = True
            if d > 0.0:
                w[i] = cur[i]
            else:
                anydown = True
    if not anyskip or not anydown:
        return
    for i in range(n):
        kept[i] = w[i]
    # candidates: the skipped decreases, judged on the weights before this loop (``kept``)
    _group_sums(w, labels, sums)
    total = _pw(w, 0, n)
    count = 0
    for i in range(n):
        if w[i] != 0.0:
            count += 1
    cap = min(1.0, _exposure_cap(level, lim))
    for i in range(n):
        if not (skip[i] and kept[i] - cur[i] < 0.0):
            continue
        ci = cur[i]
        delta = ci - w[i]
        opens = w[i] == 0.0
        if ci > lim[L_ASSET] or ci > vol[i] or (opens and count + 1 > lim[L_MAXPOS]):
            continue
        if sums[labels[i]] + delta > lim[L_CLUSTER] or total + delta > cap:
            continue
        w[i] = ci
        sums[labels[i]] += delta
        total += delta
        if opens:
            count += 1
    if violates(w, cur, locked, blocked, vol, labels, lim, level, no_increase, sums, fsums, tmp):
        for i in range(n):
            w[i] = kept[i]


@njit(**_JIT)
def project_row(
    prop: np.ndarray,
    weights: np.ndarray,
    units: np.ndarray,
    tradable: np.ndarray,
    t: int,
    vol_cap: np.ndarray,
    flags: np.ndarray,
    labels: np.ndarray,
    lim: np.ndarray,
    level: int,
    ks_base: bool,
    sched: bool,
    costs: np.ndarray,
    cp: np.ndarray,
    equity: float,
    prices: np.ndarray,
    lots: np.ndarray,
    out: np.ndarray,
    amounts: np.ndarray,
    changed: np.ndarray,
    work: np.ndarray,
    mask: np.ndarray,
) -> int:
    """One projection (rules 1-15 of `risk.projection`) on arrays.

    Inputs: ``prop`` (N,) the proposal (any float values), the snapshot's ``weights``,
    ``units`` and ``tradable``, bar ``t`` of the (T, N) ``vol_cap`` and ``flags`` tables,
    the cluster ``labels`` of bar t, the limits vector ``lim``, the ladder ``level``,
    ``ks_base`` (kill switch engaged before this bar's held-asset triggers: already
    engaged, market-wide stress or exchange down at t, or a snapshot-level integrity
    failure found by the caller), ``sched`` (level-2 reduce-only hour), and the cost gate's
    ``costs`` (4, N) row of bar t, ``cp`` (fee, impact_k, max_slippage, min_order_fraction)
    and ``equity``; the
    snapshot's ``prices`` and the pairs' ``lots`` (3, N: scale, ordermin, costmin).
    Outputs: ``out[0]`` the sanitised current weights, ``out[1]`` the executed target,
    ``changed[r]``/``amounts[r]`` per rule r that changed something, ``mask[1]`` the held
    flags, ``mask[3]`` locked (no bar), ``mask[4]`` blocked (the asset's market trigger).
    Scratch: ``work`` (6, N + 1) float64 and ``mask[0]``, ``mask[2]`` (``mask`` is (5, N + 1)
    bool). Returns the status bits (rules in bits 0..14, ``S_*``) or `FALLBACK`.
    """
    n = prop.shape[0]
    cur = out[0]
    w = out[1]
    before = work[0]
    tmp = work[1]
    sums = work[2]
    kept = work[3]
    fsums = work[4]
    lsums = work[5]
    locked = mask[3]
    blocked = mask[4]
    status = 0
    vol = vol_cap[t]
    # the snapshot's weights: non-finite -> 0 (an integrity failure), negatives -> 0
    for i in range(n):
        c = weights[i]
        if not np.isfinite(c):
            status |= S_INTEGRITY
            c = 0.0
        cur[i] = c if c > 0.0 else 0.0
    # 1. sanitise
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
        amounts[R_SANITISE] = _pw(tmp, 0, n)
        status |= S_NONFINITE | (1 << R_SANITISE)
    else:
        for i in range(n):
            x = prop[i]
            w[i] = (x if x > 0.0 else 0.0) if neg else x
        total = _pw(w, 0, n)
        if total > 1.0:
            for i in range(n):
                mask[0, i] = False
            _cap_total(w, 1.0, mask[0], tmp)
            if total > 1.0 + 1e-9:
                status |= S_SCALED
        if neg:
            status |= S_NEGATIVE
        if neg or status & S_SCALED:
            for i in range(n):
                tmp[i] = abs(prop[i] - w[i])
            amounts[R_SANITISE] = _pw(tmp, 0, n)
            status |= 1 << R_SANITISE
    for r in range(N_RULES):  # the sanitise rule reports no assets
        for i in range(n):
            changed[r, i] = False
    # kill switch: this bar's held-asset integrity triggers; per-asset market blocks
    frow = flags[t]
    ks = ks_base or (status & S_INTEGRITY) != 0
    any_locked = False
    any_blocked = False
    for i in range(n):
        held = units[i] > 0.0 or cur[i] > 0.0
        mask[1, i] = held
        u = units[i]
        dust = u > 0.0 and (u < lots[1, i] or u * prices[i] < lots[2, i])  # too small to sell
        locked[i] = not tradable[i] or dust
        blocked[i] = not locked[i] and (frow[i] & F_MARKET) != 0
        any_locked = any_locked or locked[i]
        any_blocked = any_blocked or blocked[i]
        if held and (frow[i] & F_HELD) != 0:
            status |= S_TRIGGER
            ks = True
    no_increase = ks or sched
    if any_locked:  # 2. untradable: a held asset without a bar keeps its weight
        for i in range(n):
            before[i] = w[i]
            if locked[i]:
                w[i] = cur[i]
        status |= _record(R_UNTRADABLE, before, w, changed, amounts, tmp)
    if level == 3:  # 3. halt
        for i in range(n):
            before[i] = w[i]
            if not locked[i]:
                w[i] = 0.0
        status |= _record(R_HALT, before, w, changed, amounts, tmp)
    else:
        # 4. max_positions: locked positions first, then the largest free ones (ties: lower
        # index), like a stable argsort
        k = int(lim[L_MAXPOS])
        n_locked = 0
        n_free = 0
        for i in range(n):
            if w[i] != 0.0:
                if locked[i]:
                    n_locked += 1
                else:
                    n_free += 1
        room = k - n_locked if k > n_locked else 0
        if n_free > room:
            for i in range(n):
                before[i] = w[i]
            for i in range(n):
                if locked[i]:
                    continue
                rank = 0
                for j in range(n):
                    if not locked[j] and (before[j] > before[i] or (before[j] == before[i] and j < i)):
                        rank += 1
                w[i] = before[i] if rank < room else 0.0
            status |= _record(R_MAXPOS, before, w, changed, amounts, tmp)
        if ks:  # 5. kill switch: nothing grows
            for i in range(n):
                before[i] = w[i]
                w[i] = _mn(w[i], cur[i])
            status |= _record(R_KILL, before, w, changed, amounts, tmp)
        if any_blocked:  # 6. the asset's own market trigger: no entry
            for i in range(n):
                before[i] = w[i]
                if blocked[i]:
                    w[i] = _mn(w[i], cur[i])
            status |= _record(R_BLOCK, before, w, changed, amounts, tmp)
        if sched:  # 7. level-2 reduce-only hour
            for i in range(n):
                before[i] = w[i]
                w[i] = _mn(w[i], cur[i])
            status |= _record(R_SCHED, before, w, changed, amounts, tmp)
        for i in range(n):  # 8. vol sizing
            before[i] = w[i]
            if not locked[i]:
                w[i] = _mn(w[i], vol[i])
        status |= _record(R_VOL, before, w, changed, amounts, tmp)
        for i in range(n):  # 9. asset cap
            before[i] = w[i]
            if not locked[i]:
                w[i] = _mn(w[i], lim[L_ASSET])
        status |= _record(R_ASSET, before, w, changed, amounts, tmp)
        if level >= 1:  # 10. ladder size
            for i in range(n):
                before[i] = w[i]
                if not locked[i]:
                    w[i] = _mn(w[i], _size_bound(i, vol, cur, lim))
            status |= _record(R_LADDER, before, w, changed, amounts, tmp)
        for i in range(n):  # 11. cluster caps
            before[i] = w[i]
        _cap_groups(w, labels, lim[L_CLUSTER], locked, sums, fsums, lsums, mask[2])
        status |= _record(R_CLUSTER, before, w, changed, amounts, tmp)
        for i in range(n):  # 12. exposure cap
            before[i] = w[i]
        _cap_total(w, _exposure_cap(level, lim), locked, tmp)
        status |= _record(R_EXPOSURE, before, w, changed, amounts, tmp)
        for i in range(n):  # 13. order minimum: no buy below it, a sale below it enlarged to it
            before[i] = w[i]
        for i in range(n):
            if locked[i]:
                continue
            p = prices[i]
            value = _mx((_mx(lots[1, i], lots[2, i] / p) + 2.0 / lots[0, i]) * p / equity, 2.0 * cp[3])
            d = w[i] - cur[i]
            if d > 0.0 and d < value:
                w[i] = cur[i]
            elif d < 0.0:
                x = cur[i] - value if -d < value else w[i]
                w[i] = 0.0 if x < value else x  # never leave a remainder too small to sell
        status |= _record(R_MIN_ORDER, before, w, changed, amounts, tmp)
        for i in range(n):  # 14. cost gate
            before[i] = w[i]
        _cost_gate(w, cur, locked, blocked, vol, labels, lim, level, no_increase, costs, cp, equity, kept,
                   sums, fsums, tmp, mask[0])
        status |= _record(R_COST, before, w, changed, amounts, tmp)
    # 15. final check; a failure is handled by the reference path (it records the fallback)
    if violates(w, cur, locked, blocked, vol, labels, lim, level, no_increase, sums, fsums, tmp):
        return FALLBACK
    return status


@njit(**_JIT)
def clip_action(a: np.ndarray, tmp: np.ndarray) -> float:
    """In place ``a = clip(a, -1, 1)``; returns -1.0 if ``a`` has NaN/inf (left as is),
    else ``np.abs(a - clip(a, -1, 1)).sum()`` (0.0 when nothing was clipped)."""
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
    return _pw(tmp, 0, n)
