"""`RiskProjector`: project a proposed target-weight vector onto the allowed set.

The same object guards the training env (through `risk.wrapper.RiskWrapper`) and paper
trading: it needs only a `PortfolioSnapshot` and the market history up to the snapshot's
bar. Indicators (ATR, trailing spread and volatility) are precomputed once per market;
correlation clusters are computed on their schedule and cached.

Rule order (deterministic; rules 3-13 only lower tradable weights, so a later rule never
undoes an earlier limit; rule 2 sets the weights the env cannot change (no bar, or dust too
small to sell) to what they are, and the cost gate keeps a current weight only where that breaks
nothing; every rule that changes something is recorded with the assets and the total
absolute weight change):

 1. ``sanitise``: a proposal of the wrong shape, not numeric, or with NaN/inf is not
    executed: the current weights are held instead (RISK-6). Negative weights are clipped
    to 0 and a sum above 1 is scaled to 1, each with a recorded reason.
 2. ``untradable``: an asset without a bar at t (``snapshot.tradable`` False) keeps its
    current weight: the env can neither buy nor sell it, so the target says so. Such
    *locked* weights are givens that every later rule fits around: caps count them, and
    only tradable assets are cut (to zero when the locked weights alone fill a cap). A
    locked weight above a cap is reported, not pretended away.
 3. ``halt`` (ladder level 3, latched): target all cash (locked weights stay); rules 4-14
    are skipped.
 4. ``max_positions``: keep the ``max_positions`` largest proposals (ties: lower index),
    locked positions counted first. Ranking the proposal itself (the policy's intent)
    before any cap keeps the kept set independent of the caps, so tightening a cap can
    never bring another asset in.
 5. ``kill_switch`` (engaged): no position may grow: ``w_i <= current_i``.
 6. ``asset_block``: an asset whose own market trigger fires at t (volatility spike,
    spread anomaly, bad price; `risk.kill_switch`) may not grow, whatever the account
    holds; the switch itself engages when they fire on a share of the universe.
 7. ``ladder_schedule`` (level 2, hour not a multiple of ``dd_cut_rebalance_hours``):
    reduce-only, ``w_i <= current_i``.
 8. ``vol_sizing``: ``w_i <= base_risk_fraction / (atr_stop_multiple * ATR_i / close_i)``
    so a stop k x ATR away loses at most the base risk fraction; no ATR yet => 0.
 9. ``asset_cap``: ``w_i <= max_asset_weight``.
10. ``ladder_size`` (level >= 1): an asset may not be increased above
    ``dd_reduce_size_factor`` x its size cap (min of rules 8 and 9).
11. ``cluster_cap``: a cluster whose weights sum above ``max_cluster_weight`` has its
    tradable members scaled down proportionally to the room the locked ones leave.
12. ``exposure_cap``: the tradable total is scaled down so the sum is at most
    ``max_gross_exposure`` (x ``dd_cut_exposure_factor`` at level >= 2).
13. ``order_minimum``: a change the exchange would reject as smaller than the pair's
    minimum order (``ordermin``, ``costmin``; `risk.cost_gate.CostInputs.lots`) is not
    pretended: a buy below it keeps the current weight, a sale below it is enlarged to the
    minimum sale, and a sale that would leave less than one sellable order sells the whole
    position, so that what executes obeys the caps and no dust is created. Positions already
    too small to sell (dust) are locked like assets without a bar (rule 2). The env's
    ``min_order_fraction`` counts as a minimum too (it sends no order below it).
14. ``cost_gate``: a change that does not beat its cost is not made (`risk.cost_gate`):
    with an expected-return signal, the change's expected gain against its round-trip
    cost (fees + half-spread + impact); without one, changes smaller than
    ``no_trade_band``. Skipped increases become the current weight (lowering never
    breaks a limit); a skipped decrease keeps the current weight only if that still
    satisfies every limit (assets in index order), so forced reductions always go through.
15. final check: every limit is verified; should it fail (a bug), the tradable target is
    all cash and ``invariant_fallback`` is recorded.

Implementation: `RiskProjector.project` runs the rules in the numba kernel
`risk.kernels.project_row` (~2 us, about 8x faster than the numpy code per decision),
which keeps the numpy code's floating-point operations in the same order and so gives a
bit-identical target, rules, assets and amounts (a differential property test checks
this against `RiskProjector.project_reference`, the numpy implementation of the rules
above, which also decides the rare inputs the kernel does not take: a proposal or
snapshot array of the wrong shape or type). A vector env's accounts are projected together
(`risk.batch`: `risk.kernels.project_rows` runs the same kernel over every account in one
call, the ladder is updated on arrays); a row with a trigger or a starting halt comes back
here, so each account's decision is the one `project` gives.

Properties (tested): the result satisfies every limit (a locked weight may exceed a cap
only where no tradable weight is left in that cap); it is idempotent for a fixed
snapshot; no asset ends above ``max(proposal_i, current_i)``, and with the cost gate off
no tradable asset ends above its (sanitised) proposal (the current weights when the
proposal was held); with the cost gate off, tightening any limit never raises total
exposure. It does not hold per asset: scaling a cluster down proportionally gives an asset more room when a
tighter cap shrinks its neighbour (0.3/0.3 in a 0.4 cluster -> 0.2/0.2, but 0.3/0.1 ->
0.3/0.1), which every closest-point projection onto a sum cap shares.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.data.indicators import atr
from envs.data.market import HOUR, MarketData
from envs.snapshot import PortfolioSnapshot
from risk import kernels as K
from risk import rules as R
from risk.clusters import ClusterSchedule
from risk.cost_gate import CostInputs, dust
from risk.kill_switch import KillSwitch, MarketSignals, TriggerHit
from risk.ladder import LEVEL_NAMES, DrawdownLadder
from risk.limits import RiskLimits
from risk.rules import RULE_ORDER, _cap_groups, _cap_total  # noqa: F401 - the twin tests import them from here

log = logging.getLogger(__name__)

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

    def __init__(self, limits: RiskLimits, market: MarketData, costs: CostInputs | None = None) -> None:
        self.limits = limits
        self.ladder = DrawdownLadder()
        self.kill_switch = KillSwitch()
        self.set_market(market, costs)

    # ------------------------------------------------------------------ setup
    def set_market(self, market: MarketData, costs: CostInputs | None = None) -> None:
        """(Re)compute the market-derived inputs, keeping the account state (paper trading).

        ``costs``: the cost gate's inputs (`risk.cost_gate.cost_inputs_from_env`); without
        them the gate uses the no-trade band only.
        """
        lim = self.limits
        if costs is None:
            costs = CostInputs.none(market.n_bars, market.n_assets)
        if costs.pack.shape != (market.n_bars, 4, market.n_assets):
            raise ValueError(
                f"costs: expected a pack of shape {(market.n_bars, 4, market.n_assets)}, got {costs.pack.shape}"
            )
        self.costs = costs
        self._cost_params = costs.params()
        self._lots = costs.lot_table()
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
        # fast path (`project`): the kernel's structures, as plain tuples (see `risk.kernels`)
        self._n_bars = market.n_bars
        self._ts = market.timestamps.tolist()
        self._lim = K.limits_vector(lim)
        self._tables = tuple(
            K.Tables(self.vol_cap, self.signals.flags, costs.pack, self._lim, self._cost_params, self._lots)
        )
        self._new_buffers()
        self._engage = self.signals.engage

    def _new_buffers(self) -> None:
        """The kernel's per-projector buffers (one set per account: `fork` gives a fork its own)."""
        self._scratch = K.new_scratch(self.n_assets)
        self._scratch_tuple = tuple(self._scratch)
        self._asset_sets: dict[bytes, tuple[str, ...]] = {}

    def reset_state(self) -> None:
        """A new account (a new training episode): fresh high-water mark and kill switch."""
        self.ladder = DrawdownLadder()
        self.kill_switch = KillSwitch()

    def fork(self) -> RiskProjector:
        """A projector for another account on the same market (one per sub-env of a vector env).

        Shares the limits and everything `set_market` derived from the market (vol caps,
        market signals, the cluster schedule and its cache, cost inputs, the kernel's
        tables); gets a fresh ladder and kill switch and its own kernel buffers. A later
        `set_market` on either rebinds that projector's inputs only.
        """
        twin = copy.copy(self)
        twin.reset_state()
        twin._new_buffers()
        return twin

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
        prices = _vector(snapshot.prices, n)
        if shape != (n,) or weights is None or units is None or prices is None or tradable.shape != shape:
            return None
        lim, ks_sw = self.limits, self.kill_switch
        equity, ts = float(snapshot.equity), int(snapshot.timestamp)
        level, dd = self.ladder.update(equity, float(snapshot.peak_equity), ts, lim)
        mismatch = ts != self._ts[t]
        bad_equity = not math.isfinite(equity)
        wide = bool(self._engage[t])
        ks_base = ks_sw.engaged or ks_sw.exchange_down is not None or mismatch or bad_equity or wide
        sched = level == 2 and (ts // HOUR) % lim.dd_cut_rebalance_hours != 0
        labels = self.clusters.labels(t)
        out = np.empty((2, n))
        row = (raw, weights, units, tradable, prices, labels, out)  # the fields of `K.Row`
        code = K.project_row(row, t, level, ks_base, sched, equity, self._tables, self._scratch_tuple)
        if code < 0:
            return None
        hits: list[TriggerHit] = []
        if code & (K.S_INTEGRITY | K.S_TRIGGER) or mismatch or bad_equity or wide:  # rare: build the records
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
            hits += self.signals.hits(t, self._scratch.mask[1, :n].copy(), lim)
        newly = ks_sw.update(hits, ts)
        ivs: list[Intervention] = []
        rules = code & K.RULE_MASK
        while rules:
            low = rules & -rules
            r = low.bit_length() - 1
            rules ^= low
            amount = float(self._scratch.amounts[r])
            if r == K.R_SANITISE:
                ivs.append(Intervention("sanitise", (), amount, _sanitise_detail(code)))
            else:
                detail = f"engaged: {ks_sw.reasons}" if r == K.R_KILL else _DETAILS.get(r, "")
                ivs.append(Intervention(RULE_ORDER[r], self.asset_names(self._scratch.changed[r]), amount, detail))
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

    def asset_names(self, changed: np.ndarray) -> tuple[str, ...]:
        """The names of the assets a boolean mask marks (memoised: interventions repeat the same sets)."""
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

        raw, w, reason = R.rule_sanitise(proposed, current, n)  # 1.
        if reason:
            ivs.append(Intervention("sanitise", (), _amount(raw, w), reason))

        # state: ladder, kill switch
        level, dd = self.ladder.update(
            float(snapshot.equity), float(snapshot.peak_equity), int(snapshot.timestamp), lim
        )
        hits = integrity + self.signals.hits(t, held, lim)
        newly = self.kill_switch.update(hits, int(snapshot.timestamp))
        ks = self.kill_switch.engaged

        tradable = np.asarray(snapshot.tradable, dtype=bool)
        prices = np.asarray(snapshot.prices, dtype=np.float64)
        locked = ~tradable if tradable.shape == (n,) else np.zeros(n, dtype=bool)
        if units.shape == (n,) and prices.shape == (n,):
            locked = locked | dust(self._lots, units, prices)
        labels = self.clusters.labels(t)
        sched = level == 2 and (int(snapshot.timestamp) // HOUR) % lim.dd_cut_rebalance_hours != 0
        c = K.RuleInputs(
            current, locked, self.signals.blocked(t) & ~locked, self.vol_cap[t], labels, self.costs.pack[t],
            prices, self._lots, self._lim, self._cost_params, float(snapshot.equity), level, ks, sched,
        )  # fmt: skip
        w = self._rule(ivs, "untradable", w, R.rule_untradable(w, c), _LOCKED)
        if level == 3:
            w = self._rule(ivs, "halt", w, R.rule_halt(w, c), _DETAILS[K.R_HALT])
        else:  # rules 4-14 only lower tradable weights
            w = self._rule(ivs, "max_positions", w, R.rule_max_positions(w, c), "")
            w = self._rule(ivs, "kill_switch", w, R.rule_kill_switch(w, c), f"engaged: {self.kill_switch.reasons}")
            w = self._rule(ivs, "asset_block", w, R.rule_asset_block(w, c), _BLOCK)
            w = self._rule(ivs, "ladder_schedule", w, R.rule_ladder_schedule(w, c), _DETAILS[K.R_SCHED])
            w = self._rule(ivs, "vol_sizing", w, R.rule_vol_sizing(w, c), "")
            w = self._rule(ivs, "asset_cap", w, R.rule_asset_cap(w, c), "")
            w = self._rule(ivs, "ladder_size", w, R.rule_ladder_size(w, c), "")
            w = self._rule(ivs, "cluster_cap", w, R.rule_cluster_cap(w, c), "")
            w = self._rule(ivs, "exposure_cap", w, R.rule_exposure_cap(w, c), "")
            if prices.shape == (n,):  # a malformed snapshot has no prices to size orders with
                w = self._rule(ivs, "order_minimum", w, R.rule_order_minimum(w, c), _MIN_ORDER)
            w = self._rule(ivs, "cost_gate", w, R.rule_cost_gate(w, c), "")
        final, problem = R.rule_invariant_fallback(w, c)  # 15.
        if problem:
            log.error("risk projection broke its own invariant (%s); falling back to all cash", problem)
            w = self._rule(ivs, "invariant_fallback", w, final, problem)
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


_F64, _BOOL = np.dtype(np.float64), np.dtype(np.bool_)
_BLOCK = "market trigger on the asset: no entry"
_LOCKED = "no bar, or a position below the pair minimum: weight kept as held"
_MIN_ORDER = "below the pair's minimum order: buy dropped, sale enlarged to the minimum"
_DETAILS = {
    K.R_HALT: "drawdown halt: all cash",
    K.R_SCHED: "reduce-only between rebalances",
    K.R_UNTRADABLE: _LOCKED,
    K.R_BLOCK: _BLOCK,
    K.R_MIN_ORDER: _MIN_ORDER,
}


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
