"""The paper-trading hourly loop: the backtest's policy, risk projection and execution, rolled forward.

Time contract (architecture contract 1). The cycle of hour ``H`` (keyed by the decision bar
``H``, as the env's step ``t``) runs when the feed closes bar ``H + 1``:

``FETCHED``  bar ``H + 1`` as the feed gave it (canonical JSON, NaN as null, its raw hash);
``DECIDED``  the policy's action at ``H`` from a `KrakenSpotEnv` built over the bars known
             up to ``H`` only (features and signals are causal: row ``t`` equals the
             full-period env's row ``t``, tested), the account loaded into its ledger; the
             proposal sanitised as `risk.wrapper` does and projected by a `RiskProjector`
             whose ladder and kill switch are restored from the store; the executed target
             goes through the env's own action round trip (``weights_to_action`` then the
             kernel's ``actions_to_weights``), as `RiskWrapper.step` hands it to the env;
``INTENTS``  the orders the env's execution model sends for that target in bar ``H + 1``;
``FILLED``   their fills and fees: `envs.execution.execute_hour` on the persisted bar, the
             same kernel phases the env steps with (one code path);
``LEDGER_COMMITTED`` the account at the close of ``H + 1`` (Decimal books, the exact float
             account, the projector's ``state_dict`` and the policy's memory in the risk detail);
``AUDIT_SEALED`` one terminal record: ``traded``, ``held`` or ``halted``.

A restart resumes at the recorded stage and re-derives everything after it from persisted
payloads (the bar, the decision, the account of the last committed hour), never from fresh
data; every transition is idempotent (same content = no-op). The decision is computed only
once per hour (a replay of DECIDED reads it back). A simulated exchange needs no order to be
placed before bar ``H + 1`` closes, so recording the decision with the bar it trades on
changes no number; a live-order mode would persist DECIDED at ``H`` first (out of scope).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from agents.metrics import json_safe
from envs.config import EnvConfig
from envs.data.market import HOUR, MarketData
from envs.execution.execute import AccountState, Executor, HourResult, load_account
from envs.execution.orders import REASONS
from envs.kraken_spot import KrakenSpotEnv, snapshot_of
from paper.account import (
    account_from_dict,
    account_to_dict,
    check_policy_supported,
    load_policy_state,
    policy_state,
    remark_after_gap,
)
from paper.audit import AuditEvent
from paper.canonical import content_hash
from paper.feeds.base import BarBatch, Feed, FeedDown
from paper.hours import iso
from paper.ledger import LedgerUpdate, Portfolio, RiskState
from paper.market import append_bar, batch_from_payload, batch_payload, validate_batch
from paper.orders import Fill, OrderIntent, client_order_id
from paper.scrub import scrub_text
from paper.state import Stage, StateStore
from risk.cost_gate import cost_inputs_from_env
from risk.kill_switch import ReactivationRefused
from risk.limits import RiskLimits
from risk.projection import RiskProjector
from risk.wrapper import action_to_proposal, split_action

log = logging.getLogger(__name__)
SIZING_REASONS = ("lot_size", "ordermin", "costmin")


def D(x: float) -> Decimal:
    """A float as the exact Decimal of its shortest repr (the store's money boundary)."""
    return Decimal(repr(float(x)))


PREDICTION_HORIZONS = (1, 4, 24)
REGIME_CHANNELS = ("regime_p_trend", "regime_p_range", "regime_p_high_vol", "regime_p_crash")


def signal_snapshot(core: Any, t: int, assets: Sequence[str]) -> dict[str, Any]:
    """The predictions and regime probabilities the decision at bar ``t`` could see, per asset.

    ``predictions``: ``{asset: {"1": {"p_up", "exp_return"}, "4": ..., "24": ...}}`` (horizon in
    hours) from the meta-learner's ``meta_h{h}_*`` channels; ``regime``:
    ``{asset: [p_trend, p_range, p_high_vol, p_crash]}``.
    Assets without a prediction at ``t`` (``signals_available`` off) are left out; no signals
    (a baseline on bare bars) give empty mappings.
    """
    names = list(getattr(core, "signal_names", ()) or ())
    signals = getattr(core, "signals", None)
    if signals is None or not names:
        return {"predictions": {}, "regime": {}}
    row = np.asarray(signals[t], dtype=np.float64)  # (N, K)
    flag = names.index("signals_available") if "signals_available" in names else None
    have = row[:, flag] > 0.5 if flag is not None else np.ones(len(assets), dtype=bool)
    preds: dict[str, Any] = {}
    regime: dict[str, Any] = {}
    for i, asset in enumerate(assets):
        if not have[i]:
            continue
        per_h = {}
        for h in PREDICTION_HORIZONS:
            rec = {k: float(row[i, names.index(f"meta_h{h}_{k}")]) for k in ("p_up", "exp_return")
                   if f"meta_h{h}_{k}" in names}
            if rec:
                per_h[str(h)] = rec
        if per_h:
            preds[asset] = per_h
        if all(c in names for c in REGIME_CHANNELS):
            regime[asset] = [float(row[i, names.index(c)]) for c in REGIME_CHANNELS]
    return json_safe({"predictions": preds, "regime": regime})


@dataclass
class PaperSetup:
    """What the loop trades with: the run's env config (with the backtest's action mode), risk limits, policy.

    ``signals``/``signal_names``: the prediction signals aligned to the feed's recorded market
    (rows from the history start); the loop slices the rows it knows. They come from the
    walk-forward prediction store, whose predictors are refit at each fold's first test bar
    (``walk_forward.retrain_every``): ``retrains`` maps those decision hours to the fold's
    record, and the loop audits a ``retrain`` event with the decision of that hour.
    """

    env_config: EnvConfig
    limits: RiskLimits
    policy: Any
    signals: np.ndarray | None = None
    signal_names: Sequence[str] | None = None
    retrains: Mapping[int, Mapping[str, Any]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class HourOutcome:
    hour: int
    kind: str  # traded | held | halted
    equity: float
    fees: float
    n_fills: int
    ladder_level: int
    kill_switch: bool

    def status_line(self) -> str:
        return (f"{iso(self.hour)} {self.kind:<6} equity={self.equity:.2f} fees={self.fees:.4f} "
                f"fills={self.n_fills} ladder={self.ladder_level} kill_switch={'ON' if self.kill_switch else 'off'}")


def decision_config(cfg: EnvConfig) -> EnvConfig:
    """The env config for a decision env over the known bars: no episode bounds, no history."""
    return dataclasses.replace(cfg, start=None, end=None, start_mode="fixed", record_history=False)


class PaperLoop:
    """Rolls ``setup.policy`` forward over ``feed`` into ``store``; see the module docstring."""

    def __init__(self, store: StateStore, feed: Feed, setup: PaperSetup, history: MarketData,
                 status: Callable[[str], None] | None = None) -> None:
        check_policy_supported(setup.policy)
        self.store, self.feed, self.setup = store, feed, setup
        self.cfg = setup.env_config
        self.status = status or (lambda line: log.info(line))
        if int(history.timestamps[-1]) > store.next_hour():
            history = history.between(None, store.next_hour())
        self.known = history  # every bar up to the open hour's decision bar
        self.t0 = int(history.timestamps[0])
        self.history_hash = market_hash(history.between(None, store.first_hour))
        if int(self.known.timestamps[-1]) != store.next_hour():
            raise ValueError(f"PaperLoop: history ends at {iso(int(self.known.timestamps[-1]))}, "
                             f"the open hour is {iso(store.next_hour())}")

    # ------------------------------------------------------------------ driving
    def run(self, max_hours: int | None = None, stop: Callable[[], bool] = lambda: False) -> list[HourOutcome]:
        """Process hours until the feed has no next bar, ``max_hours`` or ``stop()`` (checked between hours).

        A replay's pace; `paper.live.LiveRunner` drives a live feed (waiting, outages, stale data).
        """
        out: list[HourOutcome] = []
        while (max_hours is None or len(out) < max_hours) and not stop():
            o = self.step()
            if o is None:
                break
            out.append(o)
            self.status(o.status_line())
        return out

    def record_downtime(self, now_hour: int, reason: str = "process down") -> list[int]:
        """Hours before ``now_hour`` the process did not trade (it was down): recorded ``missed``, never filled.

        A live feed calls this on start-up with the first hour it can still decide at; the next
        decision re-marks the account (resting orders cancelled, `paper.account.remark_after_gap`).
        An hour whose cycle already started is resumed, not missed.
        """
        if self.store.open_cycle() is not None:
            return []
        hours = self.store.missed_hours_until(now_hour)
        self.store.record_missed(hours, reason)
        return hours

    def _catch_up(self, hour: int) -> None:
        """Extend the known bars to the open hour (after hours recorded missed) from the feed's history."""
        last = int(self.known.timestamps[-1])
        if last >= hour:
            return
        gap = self.feed.history(hour, (hour - last) // HOUR)
        if int(gap.timestamps[0]) != last + HOUR:
            raise ValueError(f"PaperLoop: the feed's history has no bars {iso(last + HOUR)} .. {iso(hour)}")
        self.known = concat_markets(self.known, gap)

    def step(self, fetched: BarBatch | None = None) -> HourOutcome | None:
        """The open hour's cycle (resumed where the store says); None if its execution bar is not closed yet.

        A `FeedDown` from the feed is recorded (`feed_down`) and re-raised: the caller waits
        and retries; the kill switch engages at the next decision. ``fetched``: the open
        hour's execution bar when the caller already has it (a probe after an outage).
        """
        hour = self.store.next_hour()
        try:
            self._catch_up(hour)
        except FeedDown as exc:  # the backfill of missed hours goes through the feed too
            self.feed_down(exc)
            raise
        stage = self.store.cycle_stage(hour)
        if stage is None:
            if fetched is not None and fetched.hour == hour + HOUR:
                batch: BarBatch | None = fetched
            else:
                try:
                    batch = self.feed.next_bar(hour)
                except FeedDown as exc:
                    self.feed_down(exc)
                    raise
            if batch is None:
                return None
            if (reason := self.outage()) is not None:
                self.feed_up(reason)
            batch = validate_batch(batch, self.known.assets)
            self.store.record_fetched(hour, {"bar": batch_payload(batch, self.known.assets),
                                             "history_hash": self.history_hash})
        else:
            batch = batch_from_payload(self.store.stage_payload(hour, Stage.FETCHED)["snapshot"]["bar"])
        return self._finish(hour, batch)

    # ------------------------------------------------------------------ feed outages
    def outage(self) -> str | None:
        """The reason of the feed outage in progress (recorded, not yet over), else None."""
        found = feed_outage(self.store.audit_records())
        return None if found is None else found[0]

    def feed_down(self, exc: FeedDown) -> bool:
        """Record the start of an outage once: a ``kill_switch`` event (source feed); True if newly recorded.

        Why engage at once rather than after N hours: the feed has already spent its retry
        budget (`paper.feeds.faults`), so the exchange is down, in maintenance, cancel-only
        or serving bad data; the projector applies the event at the next decision, where it
        latches like any trigger until an operator reactivates.
        """
        if self.outage() == exc.reason:
            return False
        detail = scrub_text("; ".join([str(exc), *getattr(exc, "__notes__", [])]))[:500]
        self.store.record_event("kill_switch", {"reasons": [exc.reason], "source": "feed", "detail": detail})
        log.warning("feed down (%s): kill switch engages at the next decision", exc.reason)
        return True

    def feed_up(self, reason: str) -> None:
        """Record the end of the outage (the exchange condition clears; the switch stays engaged)."""
        self.store.record_event("fault", {"feed": "up", "reason": reason})

    # ------------------------------------------------------------------ the cycle
    def _finish(self, hour: int, batch: BarBatch) -> HourOutcome:
        store, t = self.store, self.known.n_bars - 1
        account, proj_state, pol_state = self._carried(t)
        if store.cycle_stage(hour) < Stage.DECIDED:  # type: ignore[operator]
            decision = self.decide(t, account, proj_state, pol_state)
            events = self._decision_events(decision)
            events += self._retrain_events(hour)
            store.record_decided(hour, decision, events)
        decision = store.stage_payload(hour, Stage.DECIDED)["decision"]
        market = append_bar(self.known, batch)
        result = execute(market, self.cfg, account, decision, t)
        intents, fills, statuses = orders_of(result, decision, market, t, store.run_id, hour)
        store.record_intents(hour, intents)
        store.record_fills(hour, fills, statuses)
        risk = risk_state(decision, result.state, hour)
        marks = {a: D(m) for a, m in zip(market.assets, mark_prices(market, t + 1), strict=True) if np.isfinite(m)}
        portfolio = Portfolio(D(max(result.state.cash, 0.0)),
                              {a: D(u) for a, u in zip(market.assets, result.state.units.tolist(), strict=True)})
        store.commit_ledger(hour, LedgerUpdate(portfolio, marks, D(result.equity), D(result.fees), risk))
        halted = bool(decision["risk"]["halt"]) or bool(decision["risk"]["kill_switch"]["engaged"])
        kind = "halted" if halted else ("traded" if result.fills else "held")
        payload = {"equity": D(result.equity), "fees": D(result.fees), "n_fills": len(result.fills),
                   "slippage": D(result.slippage), "traded": D(result.traded), "equity_before": D(result.equity_before),
                   "decision_hash": content_hash(decision), "bar_hash": batch.raw_hash}
        if store.cycle_stage(hour) != Stage.AUDIT_SEALED:
            store.seal_hour(hour, kind, payload)
        self.known = market
        return HourOutcome(hour, kind, result.equity, result.fees, len(result.fills), risk.ladder_level,
                           risk.kill_switch_engaged)

    def _retrain_events(self, hour: int) -> list[AuditEvent]:
        """The refits due since the previous decided hour, up to ``hour``: one at a missed hour is
        carried by the next decision (its models are the ones this decision uses)."""
        since = self.store.decided_before(hour)
        since = self.store.first_hour - HOUR if since is None else since
        return [AuditEvent("retrain", {"hour": iso(h), **dict(self.setup.retrains[h])})
                for h in sorted(self.setup.retrains) if since < h <= hour]

    def _carried(self, t: int) -> tuple[AccountState, dict[str, Any] | None, dict[str, Any] | None]:
        """The account deciding at bar ``t``, the projector's and the policy's state, from the last committed hour."""
        last = self.store.last_bar()  # the last full cycle sealed: this hour's own commit may already be in
        if last is None:
            return AccountState.initial(self.cfg, self.known.n_assets, t), None, None
        detail = self.store.stage_payload(last, Stage.LEDGER_COMMITTED)["ledger"]["risk"]["detail"]
        account = account_from_dict(detail["account"])
        gap = (self.store.next_hour() - last) // HOUR - 1
        if gap > 0:  # hours recorded missed since: re-mark, never fill retroactively
            account = remark_after_gap(account, self.known, t, gap)
        return account, detail["projector"], detail["policy"]

    def decision_env(self, t: int, account: AccountState) -> KrakenSpotEnv:
        """A KrakenSpotEnv over the bars known at decision bar ``t`` with ``account`` loaded at ``t``."""
        known = self.known.slice(0, t + 1)
        sig = None if self.setup.signals is None else self.setup.signals[: known.n_bars]
        env = KrakenSpotEnv(market=known, config=decision_config(self.cfg), signals=sig,
                            signal_names=self.setup.signal_names)
        load_account(env.core.ledger, account, t)
        return env

    def decide(self, t: int, account: AccountState, proj_state: dict[str, Any] | None,
               pol_state: dict[str, Any] | None) -> dict[str, Any]:
        """Policy -> sanitised proposal -> risk projection -> executed target (the RiskWrapper's path)."""
        env = self.decision_env(t, account)
        policy = self.setup.policy
        policy.bind(env)
        if pol_state is None:
            policy.reset()
        else:
            load_policy_state(policy, pol_state)
        lim = self.setup.limits
        projector = RiskProjector(lim, env.market, cost_inputs_from_env(env, lim.cost_gate_horizon))
        if proj_state is not None:
            projector.load_state_dict(proj_state)
        self._apply_events(projector, int(env.market.timestamps[t]), account)
        obs = env.core.observation_single()
        led = env.core.ledger  # what the env's step info says at the decision bar (baselines read it)
        info = {"weights": led.w[0].copy(), "t": t, "equity": float(led.equity[0]), "cash": float(led.cash[0]),
                "timestamp": int(env.market.timestamps[t])}
        action = np.asarray(policy.act(obs, info), dtype=np.float64)
        snap = snapshot_of(env.core, 0)
        proposal, pre = action_to_proposal(env, action, np.asarray(snap.weights, dtype=np.float64))
        d = projector.project(snap, proposal)
        executed = env.weights_to_action(d.target)
        urgency = split_action(env, action)[1]
        full = executed if urgency is None else np.concatenate([executed, urgency])
        weights, hold = env.core.ledger.action_to_weights(np.ascontiguousarray(full[None, :]))
        report = d.to_info()
        if pre is not None:
            report["interventions"].insert(0, pre.to_dict())
        return json_safe({
            **signal_snapshot(env.core, t, env.market.assets),
            "t": t, "hour": int(env.market.timestamps[t]), "obs_hash": content_hash(json_safe(obs)),
            "action": action, "proposal": proposal, "target": d.target, "weights": weights[0],
            "hold": bool(hold[0]), "urgency": urgency, "current": snap.weights, "risk": report,
            "projector": projector.state_dict(), "policy": policy_state(policy),
        })

    def _apply_events(self, projector: RiskProjector, hour: int, account: AccountState) -> None:
        """The audit events since the previous decision, in order: feed outages, then reactivations.

        Feed outages (``kill_switch`` with source feed, ``fault`` feed up) recorded after the
        previous decided hour report the exchange down / up to the kill switch; an operator's
        ``reactivate`` event recorded for this hour is the only way out of the kill switch.
        """
        since = self.store.decided_before(hour)
        records = self.store.audit_records()
        for rec in records:
            if rec.kind not in ("kill_switch", "fault") or rec.hour > hour or (since is not None and rec.hour <= since):
                continue
            p = rec.payload_obj()
            if rec.kind == "kill_switch" and p.get("source") == "feed":
                projector.kill_switch.report_exchange_down(str(p["reasons"][0]), rec.hour)
            elif rec.kind == "fault" and p.get("feed") == "up":
                projector.kill_switch.report_exchange_up()
        for rec in records:
            if rec.kind != "reactivate" or rec.hour != hour:
                continue
            p = rec.payload_obj()
            try:  # a refusal (a trigger still active) is kept in the kill switch's own audit, persisted
                projector.kill_switch.reactivate(p["operator"], p["reason"], hour)
            except ReactivationRefused as exc:
                log.warning("%s", exc)
                continue
            if projector.ladder.halted:
                projector.ladder.reset(p["operator"], p["reason"], account.equity, hour)

    @staticmethod
    def _decision_events(decision: dict[str, Any]) -> list[AuditEvent]:
        ks = decision["risk"]["kill_switch"]
        if ks.get("engaged_now"):
            return [AuditEvent("kill_switch", {"reasons": ks.get("reasons", []), "t": decision["t"]})]
        return []


def feed_outage(records: Sequence[Any]) -> tuple[str, int] | None:
    """(reason, hour recorded) of the feed outage in progress in an audit trail, else None."""
    for rec in reversed(records):
        p = rec.payload_obj() if rec.kind in ("kill_switch", "fault") else {}
        if rec.kind == "fault" and p.get("feed") == "up":
            return None
        if rec.kind == "kill_switch" and p.get("source") == "feed":
            return str(p["reasons"][0]), int(rec.hour)
    return None


# ---------------------------------------------------------------------- pure steps (re-derivable)
def concat_markets(a: MarketData, b: MarketData) -> MarketData:
    """``b``'s bars after ``a``'s (same assets, contiguous grid)."""
    def cat(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
        return None if x is None or y is None else np.concatenate([x, y])

    return dataclasses.replace(
        a, timestamps=np.concatenate([a.timestamps, b.timestamps]), open=np.concatenate([a.open, b.open]),
        high=np.concatenate([a.high, b.high]), low=np.concatenate([a.low, b.low]),
        close=np.concatenate([a.close, b.close]), volume=np.concatenate([a.volume, b.volume]),
        tradable=np.concatenate([a.tradable, b.tradable]), filled=np.concatenate([a.filled, b.filled]),
        trades=cat(a.trades, b.trades), spread=cat(a.spread, b.spread),
        integrity_ok=cat(a.integrity_ok, b.integrity_ok), regimes=None,
    )


def market_hash(market: MarketData) -> str:
    """Content hash of a market's bars (what the start event pins for the history)."""
    return content_hash(json_safe({"t": market.timestamps, "o": market.open, "h": market.high, "l": market.low,
                                  "c": market.close, "v": market.volume, "tr": market.tradable}))


def execute(market: MarketData, cfg: EnvConfig, account: AccountState, decision: dict[str, Any], t: int) -> HourResult:
    """The decided target executed on bar ``t + 1`` by the env's kernel (`execute_hour`)."""
    weights = None if decision["hold"] else np.array(decision["weights"], dtype=np.float64)
    urgency = None if decision["urgency"] is None else np.array(
        [np.nan if u is None else u for u in decision["urgency"]], dtype=np.float64)
    return Executor(market, cfg).execute_hour(account, weights, t, urgency)


def mark_prices(market: MarketData, t: int) -> np.ndarray:
    """Last known close of each asset at bar ``t`` (NaN before its first bar)."""
    close = market.close[: t + 1]
    out = np.full(market.n_assets, np.nan)
    for i in range(market.n_assets):
        ok = np.flatnonzero(np.isfinite(close[:, i]))
        if ok.size:
            out[i] = close[ok[-1], i]
    return out


def orders_of(result: HourResult, decision: dict[str, Any], market: MarketData, t: int, run_id: str,
              hour: int) -> tuple[list[OrderIntent], list[Fill], dict[str, str]]:
    """The hour's orders per pair and side, reconstructed from what the kernel did.

    An order = filled + recorded shortfall + still resting after the bar, on one side of one
    pair (a resting order from an earlier hour that fills now counts in this hour's order).
    """
    pairs = {a: (market.pairs[a].altname if a in market.pairs else f"{a}USD") for a in market.assets}
    before = np.asarray(decision["weights"], dtype=np.float64) if not decision["hold"] else None
    current = np.asarray(decision["current"], dtype=np.float64)
    resting = result.state.pending
    groups: dict[tuple[int, str], dict[str, Any]] = {}

    def group(i: int, side: str) -> dict[str, Any]:
        return groups.setdefault((i, side), {"fills": [], "short": 0.0, "reasons": [], "rest": 0.0, "price": None})

    for asset, side, qty, price, fee, liq in result.fills:
        group(asset, side)["fills"].append((qty, price, fee, liq))
    for asset, reason, qty in result.shortfalls:
        sides = [s for (i, s) in groups if i == asset]
        if sides:
            side = sides[0]
        elif resting[asset] != 0:
            side = "buy" if resting[asset] > 0 else "sell"
        else:  # refused at sizing: the side the target asked for
            side = "buy" if before is not None and before[asset] > current[asset] else "sell"
        g = group(asset, side)
        g["short"] += qty
        g["reasons"].append(reason)
    for i in np.flatnonzero(resting != 0).tolist():
        g = group(i, "buy" if resting[i] > 0 else "sell")
        g["rest"] = abs(float(resting[i]))
        g["price"] = float(result.state.pending_price[i])
    intents: list[OrderIntent] = []
    fills: list[Fill] = []
    statuses: dict[str, str] = {}
    for (i, side), g in sorted(groups.items()):
        filled = sum(q for q, *_ in g["fills"])
        units = D(filled) + D(g["short"]) + D(g["rest"])
        if units <= 0:
            continue
        maker = [p for _, p, _, liq in g["fills"] if liq == "maker"]
        limit = g["price"] if g["price"] is not None else (maker[0] if maker else None)
        kind = "limit" if limit is not None else "market"
        pair = pairs[market.assets[i]]
        intents.append(OrderIntent(pair, side, units, kind, None if limit is None else D(limit)))
        cid = client_order_id(run_id, hour, pair, side, 0)
        for k, (q, p, f, liq) in enumerate(g["fills"]):
            fills.append(Fill(cid, D(p), D(q), D(f), liq, k))
        if g["rest"] > 0:
            statuses[cid] = "partial" if filled > 0 else "open"
        elif g["short"] == 0:
            statuses[cid] = "filled"
        elif filled > 0:
            statuses[cid] = "partial"
        else:
            statuses[cid] = "rejected" if set(g["reasons"]) <= set(SIZING_REASONS) else "expired"
    assert set(SIZING_REASONS) <= set(REASONS)
    return intents, fills, statuses


def _since(decision: dict[str, Any], hour: int) -> int:
    at = decision["projector"]["kill_switch"].get("engaged_at")
    return int(at) if isinstance(at, int) and at % HOUR == 0 else hour


def risk_state(decision: dict[str, Any], account: AccountState, hour: int) -> RiskState:
    """The store's typed risk row plus the exact serialisations the next hour restores."""
    r = decision["risk"]
    ks = r["kill_switch"]
    engaged = bool(ks["engaged"])
    detail = {"account": account_to_dict(account), "projector": decision["projector"], "policy": decision["policy"]}
    return RiskState(
        ladder_level=int(r["ladder_level"]), peak_equity=D(account.peak_equity),
        kill_switch_engaged=engaged,
        kill_switch_trigger=",".join(ks.get("reasons") or ["unknown"]) if engaged else None,
        kill_switch_since=_since(decision, hour) if engaged else None, halted=bool(r["halt"]), detail=json_safe(detail),
    )


__all__ = ["HourOutcome", "PaperLoop", "PaperSetup", "concat_markets", "decision_config", "execute", "feed_outage",

           "market_hash", "orders_of", "risk_state"]
