"""`RiskProjector`: project a proposed target-weight vector onto the allowed set.

The same object guards the training env (through `risk.wrapper.RiskWrapper`) and paper
trading: it needs only a `PortfolioSnapshot` and the market history up to the snapshot's
bar. Indicators (ATR, trailing spread and volatility) are precomputed once per market;
correlation clusters are computed on their schedule and cached.

Rule order (deterministic; rules 2-11 only lower weights, so a later rule never undoes an
earlier limit, and the cost gate keeps a current weight only where that breaks nothing;
every rule that changes something is recorded with the assets and the total absolute
weight change):

 1. ``sanitise``: a proposal of the wrong shape, not numeric, or with NaN/inf is not
    executed: the current weights are held instead (RISK-6). Negative weights are clipped
    to 0 and a sum above 1 is scaled to 1, each with a recorded reason.
 2. ``halt`` (ladder level 3, latched): target all cash; rules 3-12 are skipped.
 3. ``max_positions``: keep the ``max_positions`` largest proposals (ties: lower index).
    Ranking the proposal itself (the policy's intent) before any cap keeps the kept set
    independent of the caps, so tightening a cap can never bring another asset in.
 4. ``kill_switch`` (engaged): no position may grow: ``w_i <= current_i``.
 5. ``ladder_schedule`` (level 2, hour not a multiple of ``dd_cut_rebalance_hours``):
    reduce-only, ``w_i <= current_i``.
 6. ``untradable``: an asset that cannot trade next bar cannot be bought.
 7. ``vol_sizing``: ``w_i <= base_risk_fraction / (atr_stop_multiple * ATR_i / close_i)``
    so a stop k x ATR away loses at most the base risk fraction; no ATR yet => 0.
 8. ``asset_cap``: ``w_i <= max_asset_weight``.
 9. ``ladder_size`` (level >= 1): an asset may not be increased above
    ``dd_reduce_size_factor`` x its size cap (min of rules 7 and 8).
10. ``cluster_cap``: a cluster whose weights sum above ``max_cluster_weight`` is scaled down
    proportionally.
11. ``exposure_cap``: the total is scaled down to ``max_gross_exposure`` (x
    ``dd_cut_exposure_factor`` at level >= 2).
12. ``cost_gate``: a change smaller than ``no_trade_band`` is not made. Small increases are
    always skipped (lowering never breaks a limit); a small decrease is skipped only if
    keeping the current weight still satisfies every limit (assets in index order), so
    the gate never re-introduces a violation.
13. final check: every limit is verified; should it fail (a bug), the target is all cash
    and ``invariant_fallback`` is recorded.

Implementation: `RiskProjector.project` runs the rules in the numba kernel
`risk.kernels.project_row` (~2 us, about 8x faster than the numpy code per decision),
which keeps the numpy code's floating-point operations in the same order and so gives a
bit-identical target, rules, assets and amounts (a differential property test checks
this against `RiskProjector.project_reference`, the numpy implementation of the rules
above, which also decides the rare inputs the kernel does not take: a proposal or
snapshot array of the wrong shape or type).

Properties (tested): the result satisfies every limit; it is idempotent for a fixed
snapshot; no asset ends above ``max(proposal_i, current_i)``, and with the cost gate off
no asset ends above its (sanitised) proposal (the current weights when the proposal was
held); with the cost gate off, tightening any limit never raises total exposure. It does
not hold per asset: scaling a cluster down proportionally gives an asset more room when a
tighter cap shrinks its neighbour (0.3/0.3 in a 0.4 cluster -> 0.2/0.2, but 0.3/0.1 ->
0.3/0.1), which every closest-point projection onto a sum cap shares.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.data.indicators import atr
from envs.data.market import HOUR, MarketData
from envs.snapshot import PortfolioSnapshot
from risk import kernels as K
from risk.clusters import ClusterSchedule
from risk.kill_switch import KillSwitch, MarketSignals, TriggerHit
from risk.ladder import LEVEL_NAMES, DrawdownLadder
from risk.limits import RiskLimits

log = logging.getLogger(__name__)

RULE_ORDER = (
    "sanitise",
    "halt",
    "max_positions",
    "kill_switch",
    "ladder_schedule",
    "untradable",
    "vol_sizing",
    "asset_cap",
    "ladder_size",
    "cluster_cap",
    "exposure_cap",
    "cost_gate",
    "invariant_fallback",
)


@dataclass(frozen=True)
class Intervention:
    """One rule that changed the target: which assets and by how much (sum of |change|)."""

    rule: str
    assets: tuple[str, ...]
    amount: float
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "assets": list(self.assets), "amount": self.amount, "detail": self.detail}


@dataclass
class RiskDecision:
    """What the risk layer decided for one snapshot; `to_info` is what goes in ``info["risk"]``."""

    t: int
    timestamp: int
    proposed: np.ndarray | None  # the proposal as given (None if not numeric)
    current: np.ndarray
    target: np.ndarray  # the executed target weights
    interventions: list[Intervention]
    level: int
    drawdown: float
    kill_switch_engaged: bool
    kill_switch_reasons: list[str]
    active_triggers: list[TriggerHit] = field(default_factory=list)  # firing at this evaluation
    engaged_now: bool = False  # this evaluation engaged the switch (one event per engagement)
    halted: bool = False
    clusters: np.ndarray | None = None

    @property
    def rules(self) -> list[str]:
        return [iv.rule for iv in self.interventions]

    def to_info(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "proposed": self.proposed,
            "executed": self.target,
            "interventions": [iv.to_dict() for iv in self.interventions],
            "ladder_level": self.level,
            "ladder_state": LEVEL_NAMES[self.level],
            "drawdown": self.drawdown,
            "kill_switch": {
                "engaged": self.kill_switch_engaged,
                "reasons": self.kill_switch_reasons,
                "engaged_now": self.engaged_now,
                "active_triggers": [h.to_dict() for h in self.active_triggers],
            },
            "halt": self.halted,
        }


class RiskProjector:
    """Limits + market-derived inputs + per-account state (ladder, kill switch)."""

    def __init__(self, limits: RiskLimits, market: MarketData) -> None:
        self.limits = limits
        self.ladder = DrawdownLadder()
        self.kill_switch = KillSwitch()
        self.set_market(market)

    # ------------------------------------------------------------------ setup
    def set_market(self, market: MarketData) -> None:
        """(Re)compute the market-derived inputs, keeping the account state (paper trading)."""
        lim = self.limits
        self.market = market
        self.assets = market.assets
        self.n_assets = market.n_assets
        with np.errstate(invalid="ignore", divide="ignore"):
            rel_atr = atr(market, lim.atr_window) / market.close
            cap = lim.base_risk_fraction / (lim.atr_stop_multiple * rel_atr)
        self.vol_cap = np.where(np.isfinite(cap) & (cap > 0), cap, 0.0)
        self.signals = MarketSignals(market, lim)
        self.clusters = ClusterSchedule(
            market,
            window=lim.corr_window,
            distance=lim.cluster_distance,
            refresh_hours=lim.cluster_refresh_hours,
        )
        # fast path (`project`): plain inputs of the kernel, scratch consumed within one call
        n = self.n_assets
        self._n_bars = market.n_bars
        self._ts = market.timestamps.tolist()
        self._lim = K.limits_vector(lim)
        self._amounts = np.zeros(K.N_RULES)
        self._changed = np.zeros((K.N_RULES, n), dtype=bool)
        self._work = np.zeros((4, n + 1))
        self._mask = np.zeros((3, n + 1), dtype=bool)
        self._asset_sets: dict[bytes, tuple[str, ...]] = {}

    def reset_state(self) -> None:
        """A new account (a new training episode): fresh high-water mark and kill switch."""
        self.ladder = DrawdownLadder()
        self.kill_switch = KillSwitch()

    def state_dict(self) -> dict[str, Any]:
        return {"ladder": self.ladder.to_dict(), "kill_switch": self.kill_switch.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ladder = DrawdownLadder.from_dict(state["ladder"])
        self.kill_switch = KillSwitch.from_dict(state["kill_switch"])

    # ------------------------------------------------------------- projection
    def project(self, snapshot: PortfolioSnapshot, proposed: Any) -> RiskDecision:
        """The executed target for ``proposed`` given ``snapshot`` (see the module docstring).

        Runs the numba kernel `risk.kernels.project_row`, which gives bit-identical results
        to `project_reference`; inputs of the wrong shape or type, and a broken invariant,
        go through `project_reference` itself.
        """
        decision = self._project_fast(snapshot, proposed)
        return decision if decision is not None else self.project_reference(snapshot, proposed)

    def _project_fast(self, snapshot: PortfolioSnapshot, proposed: Any) -> RiskDecision | None:
        """`project` on the kernel; None (state untouched but the idempotent ladder update)
        where the reference must decide."""
        n, t = self.n_assets, snapshot.t
        if not 0 <= t < self._n_bars:
            return None
        t = int(t)
        try:
            raw = np.array(proposed, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        shape = raw.shape
        weights: np.ndarray | None = snapshot.weights
        units: np.ndarray | None = snapshot.units
        tradable = snapshot.tradable
        if not (type(weights) is np.ndarray and weights.dtype == _F64 and weights.shape == shape):
            weights = _vector(weights, n)
        if not (type(units) is np.ndarray and units.dtype == _F64 and units.shape == shape):
            units = _vector(units, n)
        if type(tradable) is not np.ndarray or tradable.dtype != _BOOL:
            tradable = np.asarray(tradable, dtype=bool)
        if shape != (n,) or weights is None or units is None or tradable.shape != shape:
            return None
        lim, ks_sw = self.limits, self.kill_switch
        equity, ts = float(snapshot.equity), int(snapshot.timestamp)
        level, dd = self.ladder.update(equity, float(snapshot.peak_equity), ts, lim)
        mismatch = ts != self._ts[t]
        bad_equity = not math.isfinite(equity)
        ks_base = ks_sw.engaged or ks_sw.exchange_down is not None or mismatch or bad_equity
        sched = level == 2 and (ts // HOUR) % lim.dd_cut_rebalance_hours != 0
        labels = self.clusters.labels(t)
        out = np.empty((2, n))
        code = K.project_row(
            raw, weights, units, tradable, t, self.vol_cap, self.signals.flags, labels, self._lim,
            level, ks_base, sched, out, self._amounts, self._changed, self._work, self._mask,
        )  # fmt: skip
        if code < 0:
            return None
        hits: list[TriggerHit] = []
        if code & (K.S_INTEGRITY | K.S_TRIGGER) or mismatch or bad_equity:  # rare: build the records
            if code & K.S_INTEGRITY or bad_equity:
                hits.append(TriggerHit("data_integrity", None, float("nan"), 0.0, "snapshot not finite"))
            if mismatch:
                hits.append(
                    TriggerHit(
                        "data_integrity",
                        None,
                        float(snapshot.timestamp),
                        float(self.market.timestamps[t]),
                        "snapshot timestamp differs from the market's bar t",
                    )
                )
            market_hits = self.signals.hits(t, self._mask[0, :n].copy(), self._mask[1, :n].copy(), lim)
            if bool(market_hits) != bool(code & K.S_TRIGGER):  # cannot happen: flags mirror hits()
                log.error("risk kernel trigger flags disagree with MarketSignals.hits at t=%d", t)
                return None
            hits += market_hits
        newly = ks_sw.update(hits, ts)
        ivs: list[Intervention] = []
        rules = code & K.RULE_MASK
        while rules:
            low = rules & -rules
            r = low.bit_length() - 1
            rules ^= low
            if r == K.R_SANITISE:
                ivs.append(Intervention("sanitise", (), float(self._amounts[r]), _sanitise_detail(code)))
            else:
                detail = f"engaged: {ks_sw.reasons}" if r == K.R_KILL else _DETAILS.get(r, "")
                assets = self._assets_of(self._changed[r])
                ivs.append(Intervention(RULE_ORDER[r], assets, float(self._amounts[r]), detail))
        return RiskDecision(
            t=t,
            timestamp=ts,
            proposed=raw,
            current=out[0],
            target=out[1],
            interventions=ivs,
            level=level,
            drawdown=dd,
            kill_switch_engaged=ks_sw.engaged,
            kill_switch_reasons=ks_sw.reasons,
            active_triggers=list(ks_sw.active),
            engaged_now=newly,
            halted=level == 3,
            clusters=labels,
        )

    def _assets_of(self, changed: np.ndarray) -> tuple[str, ...]:
        key = changed.tobytes()
        names = self._asset_sets.get(key)
        if names is None:
            names = tuple(self.assets[i] for i in np.flatnonzero(changed))
            if len(self._asset_sets) < 4096:
                self._asset_sets[key] = names
        return names

    def project_reference(self, snapshot: PortfolioSnapshot, proposed: Any) -> RiskDecision:
        """The numpy reference of `project` (rule by rule, as in the module docstring)."""
        lim, n, t = self.limits, self.n_assets, int(snapshot.t)
        if not 0 <= t < self.market.n_bars:
            raise IndexError(f"snapshot.t={t}: expected a bar of the risk market (0..{self.market.n_bars - 1})")
        ivs: list[Intervention] = []
        integrity: list[TriggerHit] = []

        current = np.asarray(snapshot.weights, dtype=np.float64)
        units = np.asarray(snapshot.units, dtype=np.float64)
        if current.shape != (n,) or not np.all(np.isfinite(current)) or not np.isfinite(snapshot.equity):
            integrity.append(TriggerHit("data_integrity", None, float("nan"), 0.0, "snapshot not finite"))
            current = np.zeros(n) if current.shape != (n,) else np.nan_to_num(current, nan=0.0, posinf=0.0)
        current = np.clip(current, 0.0, None)
        if int(snapshot.timestamp) != int(self.market.timestamps[t]):
            integrity.append(
                TriggerHit(
                    "data_integrity",
                    None,
                    float(snapshot.timestamp),
                    float(self.market.timestamps[t]),
                    "snapshot timestamp differs from the market's bar t",
                )
            )
        held = (units > 0) | (current > 0) if units.shape == (n,) else current > 0

        # 1. sanitise
        raw, w, reason = self._sanitise(proposed, current)
        if reason:
            ivs.append(Intervention("sanitise", (), _amount(raw, w), reason))

        # state: ladder, kill switch
        level, dd = self.ladder.update(
            float(snapshot.equity), float(snapshot.peak_equity), int(snapshot.timestamp), lim
        )
        hits = integrity + self.signals.hits(t, held | (w > 0), held, lim)
        newly = self.kill_switch.update(hits, int(snapshot.timestamp))
        ks = self.kill_switch.engaged

        tradable = np.asarray(snapshot.tradable, dtype=bool)
        labels = self.clusters.labels(t)
        if level == 3:
            w = self._rule(ivs, "halt", w, np.zeros(n), "drawdown halt: all cash")
        else:
            w = self._rule(ivs, "max_positions", w, _keep_largest(w, lim.max_positions), "")
            if ks:
                w = self._rule(ivs, "kill_switch", w, np.minimum(w, current), f"engaged: {self.kill_switch.reasons}")
            if level == 2 and (int(snapshot.timestamp) // HOUR) % lim.dd_cut_rebalance_hours != 0:
                w = self._rule(ivs, "ladder_schedule", w, np.minimum(w, current), "reduce-only between rebalances")
            if tradable.shape == (n,) and not tradable.all():
                w = self._rule(ivs, "untradable", w, np.where(tradable, w, np.minimum(w, current)), "")
            w = self._rule(ivs, "vol_sizing", w, np.minimum(w, self.vol_cap[t]), "")
            w = self._rule(ivs, "asset_cap", w, np.minimum(w, lim.max_asset_weight), "")
            if level >= 1:
                w = self._rule(ivs, "ladder_size", w, np.minimum(w, self._size_bound(t, current)), "")
            w = self._rule(ivs, "cluster_cap", w, _cap_groups(w, labels, lim.max_cluster_weight), "")
            w = self._rule(ivs, "exposure_cap", w, _cap_total(w, self._exposure_cap(level)), "")
            if lim.no_trade_band > 0:
                w = self._rule(ivs, "cost_gate", w, self._cost_gate(w, current, t, level, labels, ks, snapshot), "")

        problem = self.violation(w, current, t, level, labels, ks, int(snapshot.timestamp), tradable)
        if problem:
            log.error("risk projection broke its own invariant (%s); falling back to all cash", problem)
            w = self._rule(ivs, "invariant_fallback", w, np.zeros(n), problem)
        return RiskDecision(
            t=t,
            timestamp=int(snapshot.timestamp),
            proposed=raw,
            current=current,
            target=w,
            interventions=ivs,
            level=level,
            drawdown=dd,
            kill_switch_engaged=ks,
            kill_switch_reasons=self.kill_switch.reasons,
            active_triggers=list(self.kill_switch.active),
            engaged_now=newly,
            halted=level == 3,
            clusters=labels,
        )

    # -------------------------------------------------------------- helpers
    def _sanitise(self, proposed: Any, current: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, str]:
        n = self.n_assets
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

    def _rule(
        self, ivs: list[Intervention], rule: str, before: np.ndarray, after: np.ndarray, detail: str
    ) -> np.ndarray:
        if after is before:
            return after
        changed = after != before
        if changed.any():
            idx = np.flatnonzero(changed)
            ivs.append(
                Intervention(
                    rule,
                    tuple(self.assets[i] for i in idx),
                    float(np.abs(after[idx] - before[idx]).sum()),
                    detail,
                )
            )
        return after

    def _size_bound(self, t: int, current: np.ndarray) -> np.ndarray:
        lim = self.limits
        base = np.minimum(self.vol_cap[t], lim.max_asset_weight)
        return np.maximum(lim.dd_reduce_size_factor * base, current)

    def _exposure_cap(self, level: int) -> float:
        lim = self.limits
        cap = lim.max_gross_exposure
        return cap * lim.dd_cut_exposure_factor if level >= 2 else cap

    def _cost_gate(
        self,
        w: np.ndarray,
        current: np.ndarray,
        t: int,
        level: int,
        labels: np.ndarray,
        ks: bool,
        snapshot: PortfolioSnapshot,
    ) -> np.ndarray:
        band = self.limits.no_trade_band
        diff = w - current
        small = (np.abs(diff) < band) & (diff != 0)
        if not np.any(small):
            return w
        out = np.where(small & (diff > 0), current, w)
        cand = np.flatnonzero(small & (diff < 0))
        if cand.size == 0:
            return out
        # restoring current_i can only break the per-asset caps of i, its cluster's cap, the
        # total cap and the position count (the no-increase rules allow current_i itself)
        lim = self.limits
        kept = out.copy()
        vol = self.vol_cap[t]
        sums = np.bincount(labels, weights=out)
        total, count = float(out.sum()), int(np.count_nonzero(out))
        cap = min(1.0, self._exposure_cap(level))
        for i in cand.tolist():
            ci, delta, g = current[i], current[i] - out[i], labels[i]
            opens = out[i] == 0
            if ci > lim.max_asset_weight or ci > vol[i] or (opens and count + 1 > lim.max_positions):
                continue
            if sums[g] + delta > lim.max_cluster_weight or total + delta > cap:
                continue
            out[i] = ci
            sums[g] += delta
            total += delta
            count += int(opens)
        tradable = np.asarray(snapshot.tradable, dtype=bool)
        if self.violation(out, current, t, level, labels, ks, int(snapshot.timestamp), tradable):
            return kept  # rounding at a cap's edge: do not restore
        return out

    def violation(
        self,
        w: np.ndarray,
        current: np.ndarray,
        t: int,
        level: int,
        labels: np.ndarray,
        ks: bool,
        timestamp: int,
        tradable: np.ndarray,
    ) -> str:
        """The first limit ``w`` breaks ('' if none); used for the final check and the cost gate."""
        lim, n = self.limits, self.n_assets
        if w.shape != (n,) or not np.isfinite(w).all():
            return "target not finite or wrong shape"
        if (w < 0).any():
            return "negative weight"
        if level == 3:
            return "halt: target not all cash" if w.any() else ""
        if np.count_nonzero(w) > lim.max_positions:
            return "max_positions"
        if (w > lim.max_asset_weight).any() or (w > self.vol_cap[t]).any():
            return "asset_cap/vol_sizing"
        if level >= 1 and (w > self._size_bound(t, current)).any():
            return "ladder_size"
        if (np.bincount(labels, weights=w) > lim.max_cluster_weight).any():
            return "cluster_cap"
        if w.sum() > min(1.0, self._exposure_cap(level)):
            return "exposure_cap"
        if ks or (level == 2 and (timestamp // HOUR) % lim.dd_cut_rebalance_hours != 0):
            if (w > current).any():
                return "no-increase rule (kill switch / reduce-only)"
        elif tradable.shape == (n,) and (w[~tradable] > current[~tradable]).any():
            return "no-increase rule (untradable)"
        return ""


_F64, _BOOL = np.dtype(np.float64), np.dtype(np.bool_)
_DETAILS = {K.R_HALT: "drawdown halt: all cash", K.R_SCHED: "reduce-only between rebalances"}


def _sanitise_detail(code: int) -> str:
    if code & K.S_NONFINITE:
        return "NaN/inf in proposal: held current weights"
    reasons = []
    if code & K.S_NEGATIVE:
        reasons.append("negative weights clipped to 0")
    if code & K.S_SCALED:
        reasons.append("weights summing above 1 scaled to 1")
    return "; ".join(reasons)


def _vector(x: Any, n: int) -> np.ndarray | None:
    """``x`` as a (n,) float64 array (no copy if it is one already), None if it cannot be."""
    if type(x) is np.ndarray and x.dtype == np.float64 and x.shape == (n,):
        return x
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return a if a.shape == (n,) else None


def _amount(raw: np.ndarray | None, w: np.ndarray) -> float:
    if raw is None or raw.shape != w.shape:
        return float(np.abs(w).sum())
    return float(np.abs(np.nan_to_num(raw, nan=0.0, posinf=1.0, neginf=0.0) - w).sum())


def _keep_largest(w: np.ndarray, k: int) -> np.ndarray:
    """Zero all but the ``k`` largest positive entries (ties broken by lower index)."""
    if int(np.count_nonzero(w)) <= k:
        return w
    keep = np.argsort(-w, kind="stable")[:k]
    out = np.zeros_like(w)
    out[keep] = w[keep]
    return out


def _cap_total(w: np.ndarray, cap: float) -> np.ndarray:
    """Scale ``w`` down so its sum is <= cap exactly (guarding against rounding up)."""
    total = w.sum()
    if total <= cap:
        return w
    out = w * (cap / total)
    shrink = 1e-15
    while out.sum() > cap:  # rounding up by a few ulps; escalate so subnormals terminate too
        if shrink >= 0.5:
            return np.zeros_like(w)
        out = out * (1.0 - shrink)
        shrink *= 2.0
    return out


def _cap_groups(w: np.ndarray, labels: np.ndarray, cap: float) -> np.ndarray:
    """Scale each group (cluster) whose sum exceeds ``cap`` down to the cap.

    Group sums are always taken with ``np.bincount`` (the same summation the final check
    uses), so a scaled group never ends one rounding step above its cap.
    """
    sums = np.bincount(labels, weights=w)
    if not np.any(sums > cap):
        return w
    out = w.copy()
    for g in np.flatnonzero(sums > cap):
        members = labels == g
        out[members] = w[members] * (cap / sums[g])
    shrink = 1e-15
    while True:  # rounding up by a few ulps; escalate so subnormals terminate too
        over = np.bincount(labels, weights=out) > cap
        if not over.any():
            return out
        if shrink >= 0.5:
            return np.where(over[labels], 0.0, out)
        out = np.where(over[labels], out * (1.0 - shrink), out)
        shrink *= 2.0
