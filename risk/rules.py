"""The numpy reference of the projection's rules, one function per entry of `RULE_ORDER`.

``rule_<name>(w, c)`` returns the weights after rule ``<name>`` (``w`` itself when the rule
does not apply), reading what it needs from a `risk.kernels.RuleInputs`; the numba kernel
has a helper of the same name that does the same in place (`risk.kernels`), so the twins
can be compared one rule at a time (tests/risk/test_risk_rules.py).
`RiskProjector.project_reference` runs them in `RULE_ORDER` and records what each changed.
The rules themselves are documented in `risk.projection`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from risk.cost_gate import C_RETURN, min_order_units, round_trip_cost
from risk.kernels import L_ASSET, L_BAND, L_CLUSTER, L_EXPOSURE_FACTOR, L_GROSS, L_MAXPOS, L_SIZE_FACTOR, RuleInputs

RULE_ORDER = (
    "sanitise",
    "untradable",
    "halt",
    "max_positions",
    "kill_switch",
    "asset_block",
    "ladder_schedule",
    "vol_sizing",
    "asset_cap",
    "ladder_size",
    "cluster_cap",
    "exposure_cap",
    "order_minimum",
    "cost_gate",
    "invariant_fallback",
)


def rule_sanitise(proposed: Any, current: np.ndarray, n: int) -> tuple[np.ndarray | None, np.ndarray, str]:
    """1. (proposal as an array or None, weights, reason): a proposal of the wrong shape, not
    numeric or with NaN/inf holds ``current``; negatives -> 0; a sum above 1 scaled to 1."""
    try:
        raw = np.array(proposed, dtype=np.float64)
    except (TypeError, ValueError):
        return None, current.copy(), f"not numeric ({type(proposed).__name__}): held current weights"
    if raw.shape != (n,):
        return raw, current.copy(), f"wrong shape: expected ({n},), got {raw.shape}: held current weights"
    if not np.all(np.isfinite(raw)):
        return raw, current.copy(), "NaN/inf in proposal: held current weights"
    w, reasons = raw.copy(), []
    if np.any(w < 0):
        w = np.clip(w, 0.0, None)
        reasons.append("negative weights clipped to 0")
    total = w.sum()
    if total > 1.0:  # rounding (1 + 1e-16 from an action conversion) is scaled silently
        w = _cap_total(w, 1.0)
        if total > 1.0 + 1e-9:
            reasons.append("weights summing above 1 scaled to 1")
    return raw, w, "; ".join(reasons)


def rule_untradable(w: np.ndarray, c: RuleInputs) -> np.ndarray:
    """2. A locked asset (no bar, or dust) keeps its current weight."""
    return np.where(c.locked, c.cur, w) if c.locked.any() else w


def rule_halt(w: np.ndarray, c: RuleInputs) -> np.ndarray:
    """3. Ladder level 3: all cash (locked weights stay)."""
    return np.where(c.locked, w, 0.0) if c.level == 3 else w


def rule_max_positions(w: np.ndarray, c: RuleInputs) -> np.ndarray:
    """4. Keep the locked positions, then the largest free ones (ties: lower index)."""
    return _keep_largest(w, int(c.lim[L_MAXPOS]), c.locked)


def rule_kill_switch(w: np.ndarray, c: RuleInputs) -> np.ndarray:
    """5. Kill switch engaged: no position grows."""
    return np.minimum(w, c.cur) if c.ks else w


def rule_asset_block(w: np.ndarray, c: RuleInputs) -> np.ndarray:
    """6. An asset whose own market trigger fires may not grow."""
    return np.where(c.blocked, np.minimum(w, c.cur), w) if c.blocked.any() else w


def rule_ladder_schedule(w: np.ndarray, c: RuleInputs) -> np.ndarray:
    """7. Level-2 hour between rebalances: reduce-only."""
    return np.minimum(w, c.cur) if c.sched else w


def rule_vol_sizing(w: np.ndarray, c: RuleInputs) -> np.ndarray:
    """8. A tradable weight is at most its ATR-stop cap."""
    return np.where(c.locked, w, np.minimum(w, c.vol))


def rule_asset_cap(w: np.ndarray, c: RuleInputs) -> np.ndarray:
    """9. A tradable weight is at most ``max_asset_weight``."""
    return np.where(c.locked, w, np.minimum(w, c.lim[L_ASSET]))


def rule_ladder_size(w: np.ndarray, c: RuleInputs) -> np.ndarray:
    """10. Level >= 1: no tradable weight above the size factor x its size cap (or its current weight)."""
    return np.where(c.locked, w, np.minimum(w, size_bound(c))) if c.level >= 1 else w


def rule_cluster_cap(w: np.ndarray, c: RuleInputs) -> np.ndarray:
    """11. Clusters above ``max_cluster_weight``: free members scaled into the room the locked ones leave."""
    return _cap_groups(w, c.labels, c.lim[L_CLUSTER], c.locked)


def rule_exposure_cap(w: np.ndarray, c: RuleInputs) -> np.ndarray:
    """12. The free weights scaled so the sum is at most the (ladder-cut) gross exposure."""
    return _cap_total(w, exposure_cap(c), c.locked)


def rule_order_minimum(w: np.ndarray, c: RuleInputs) -> np.ndarray:
    """13. No buy below the pair's minimum order; a sale below it is enlarged to it, and a sale
    that would leave less than one sellable order sells the whole position (no dust).

    The minimum is the larger of the pair's (ordermin, costmin, two lots of margin for the
    env's floor) and twice the env's ``min_order_fraction`` (changes it does not send).
    """
    free, prices = ~c.locked, c.prices
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.maximum(min_order_units(c.lots, prices) * prices / c.equity, 2.0 * float(c.cp[3]))
    d = w - c.cur
    sell = free & (d < 0.0)
    x = np.where(sell & (-d < value), c.cur - value, w)
    x = np.where(sell & (x < value), 0.0, x)
    return np.where(free & (d > 0.0) & (d < value), c.cur, x)


def rule_cost_gate(w: np.ndarray, c: RuleInputs) -> np.ndarray:
    """14. A change that does not beat its cost is not made: skipped increases become the
    current weight; a skipped decrease keeps the current weight only if that still satisfies
    every limit (assets in index order), so forced reductions always go through."""
    current, lim = c.cur, c.lim
    diff = w - current
    er = c.costs[C_RETURN]
    has = np.isfinite(er)
    with np.errstate(invalid="ignore"):
        cost = round_trip_cost(c.costs, diff, float(c.equity), c.cp)
        beats = diff * er > np.abs(diff) * cost
    skip = np.where(has, ~beats, np.abs(diff) < lim[L_BAND]) & (diff != 0)
    if not np.any(skip):
        return w
    out = np.where(skip & (diff > 0), current, w)
    cand = np.flatnonzero(skip & (diff < 0))
    if cand.size == 0:
        return out
    # restoring current_i can only break the per-asset caps of i, its cluster's cap, the
    # total cap and the position count (the no-increase rules allow current_i itself)
    kept = out.copy()
    sums = np.bincount(c.labels, weights=out)
    total, count = float(out.sum()), int(np.count_nonzero(out))
    cap = min(1.0, exposure_cap(c))
    for i in cand.tolist():
        ci, delta, g = current[i], current[i] - out[i], c.labels[i]
        opens = out[i] == 0
        if ci > lim[L_ASSET] or ci > c.vol[i] or (opens and count + 1 > lim[L_MAXPOS]):
            continue
        if sums[g] + delta > lim[L_CLUSTER] or total + delta > cap:
            continue
        out[i] = ci
        sums[g] += delta
        total += delta
        count += int(opens)
    if violation(out, c):
        return kept  # rounding at a cap's edge: do not restore
    return out


def rule_invariant_fallback(w: np.ndarray, c: RuleInputs) -> tuple[np.ndarray, str]:
    """15. The final check: (the tradable target all cash, the broken limit) if ``w`` breaks
    one (a bug), else (``w``, '')."""
    problem = violation(w, c)
    return (np.where(c.locked, c.cur, 0.0), problem) if problem else (w, "")


def violation(w: np.ndarray, c: RuleInputs) -> str:
    """The first limit ``w`` breaks ('' if none); the final check and the cost gate's.

    Locked weights must equal the current ones; the caps bind the tradable weights, and a
    sum cap that the locked weights alone exceed binds only in that no tradable weight may
    remain under it.
    """
    lim, n, locked, current = c.lim, c.cur.shape[0], c.locked, c.cur
    if w.shape != (n,) or not np.isfinite(w).all():
        return "target not finite or wrong shape"
    if (w < 0).any():
        return "negative weight"
    free = ~locked
    if (w[locked] != current[locked]).any():
        return "untradable: a locked weight changed"
    if c.level == 3:
        return "halt: target not all cash" if w[free].any() else ""
    room = max(lim[L_MAXPOS] - int(np.count_nonzero(w[locked])), 0)
    if np.count_nonzero(w[free]) > room:
        return "max_positions"
    if (w[free] > lim[L_ASSET]).any() or (w[free] > c.vol[free]).any():
        return "asset_cap/vol_sizing"
    if c.level >= 1 and (w[free] > size_bound(c)[free]).any():
        return "ladder_size"
    free_w = np.where(locked, 0.0, w)
    over = np.bincount(c.labels, weights=w) > lim[L_CLUSTER]
    if (over & (np.bincount(c.labels, weights=free_w) > 0)).any():
        return "cluster_cap"
    if w.sum() > min(1.0, exposure_cap(c)) and free_w.sum() > 0:
        return "exposure_cap"
    if (c.ks or c.sched) and (w > current).any():
        return "no-increase rule (kill switch / reduce-only)"
    if (w[c.blocked] > current[c.blocked]).any():
        return "no-increase rule (asset_block)"
    return ""


def size_bound(c: RuleInputs) -> np.ndarray:
    """Rule 10's bound: the size factor x min(vol cap, asset cap), at least the current weight."""
    return np.maximum(c.lim[L_SIZE_FACTOR] * np.minimum(c.vol, c.lim[L_ASSET]), c.cur)


def exposure_cap(c: RuleInputs) -> float:
    """Rule 12's cap: the gross exposure, cut by the ladder's factor at level >= 2."""
    cap = float(c.lim[L_GROSS])
    return cap * float(c.lim[L_EXPOSURE_FACTOR]) if c.level >= 2 else cap


def _keep_largest(w: np.ndarray, k: int, locked: np.ndarray | None = None) -> np.ndarray:
    """Zero all but the ``k`` largest positive entries (ties broken by lower index).

    Locked entries are kept and use up places first; the rest go to the largest free ones.
    """
    locked = np.zeros(w.shape, dtype=bool) if locked is None else locked
    room = max(k - int(np.count_nonzero(w[locked])), 0)
    if int(np.count_nonzero(w[~locked])) <= room:
        return w
    keep = np.argsort(-np.where(locked, -1.0, w), kind="stable")[:room]
    out = np.where(locked, w, 0.0)
    out[keep] = w[keep]
    return out


def _cap_total(w: np.ndarray, cap: float, locked: np.ndarray | None = None) -> np.ndarray:
    """Scale the free entries of ``w`` down so its sum is <= cap exactly (guarding against rounding up).

    Locked entries stay; the free ones share ``cap`` minus the locked sum (0 if none is left).
    """
    total = w.sum()
    if total <= cap:
        return w
    locked = np.zeros(w.shape, dtype=bool) if locked is None else locked
    free_w = np.where(locked, 0.0, w)
    free_total = free_w.sum()
    if not free_total > 0:
        return w
    room = cap - np.where(locked, w, 0.0).sum()
    out = np.where(locked, w, w * (room / free_total)) if room > 0 else np.where(locked, w, 0.0)
    shrink = 1e-15
    while out.sum() > cap and np.where(locked, 0.0, out).sum() > 0:  # rounding up by a few ulps
        if shrink >= 0.5:  # escalate so subnormals terminate too
            return np.where(locked, out, 0.0)
        out = np.where(locked, out, out * (1.0 - shrink))
        shrink *= 2.0
    return out


def _cap_groups(w: np.ndarray, labels: np.ndarray, cap: float, locked: np.ndarray | None = None) -> np.ndarray:
    """Scale the free members of each group (cluster) whose sum exceeds ``cap`` down to the cap.

    Locked members stay; the free ones share the room they leave (none when they fill it).
    Group sums are always taken with ``np.bincount`` (the same summation the final check
    uses), so a scaled group never ends one rounding step above its cap.
    """
    locked = np.zeros(w.shape, dtype=bool) if locked is None else locked
    sums = np.bincount(labels, weights=w)
    free_sums = np.bincount(labels, weights=np.where(locked, 0.0, w))
    over = (sums > cap) & (free_sums > 0)
    if not np.any(over):
        return w
    locked_sums = np.bincount(labels, weights=np.where(locked, w, 0.0))
    out = w.copy()
    for g in np.flatnonzero(over):
        members = (labels == g) & ~locked
        room = cap - locked_sums[g]
        out[members] = w[members] * (room / free_sums[g]) if room > 0 else 0.0
    shrink = 1e-15
    while True:  # rounding up by a few ulps; escalate so subnormals terminate too
        free_out = np.where(locked, 0.0, out)
        over = (np.bincount(labels, weights=out) > cap) & (np.bincount(labels, weights=free_out) > 0)
        if not over.any():
            return out
        hit = over[labels] & ~locked
        if shrink >= 0.5:
            return np.where(hit, 0.0, out)
        out = np.where(hit, out * (1.0 - shrink), out)
        shrink *= 2.0
