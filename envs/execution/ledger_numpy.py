"""`NumpyLedger`: the step arithmetic as whole-array numpy operations (the reference form).

The env runs the numba kernels of `envs.execution.kernels` (through `BatchLedger`); this
is the same arithmetic written with numpy arrays, kept as the readable specification and
as the reference that the kernel equivalence test compares with, bit for bit. Float64
throughout; `envs.execution.reference` re-does the same in exact `Decimal`.

One step (decision at the close of bar t, orders inside bar t+1, mark at its close):

1. New target weights (rows not holding) are turned into lot-rounded orders at the
   decision price (`orders.size_orders`); they replace any resting orders.
2. Phase A inside bar t+1: limit orders that the bar trades through fill at their limit
   (maker); in market mode every order fills at the open plus slippage (taker). Urgent
   orders (``action_mode="execution"``, urgency > 0 on a new decision) are market orders at
   the open, filled first (their own phase), and never rest.
3. Phase B at the close of t+1: limit orders that reached their time-to-live fall back
   to a market order at the close plus slippage (taker), or are cancelled.
4. Every fill: sells first (capped at units held), then buys (scaled down together so
   that notional + fee fits the cash; a scaled buy that breaks the pair minimums is
   dropped). Fee = rate × notional, in USD. Every shortfall gets a record (reason and
   unfilled quantity, `StepOut.records`); the rules are in `envs.execution.ledger`.
5. Mark at the close of t+1: equity = cash + Σ units × close.

Fee tiers use `NumpyLedger.volume_30d`: the episode's trades of the last 720 steps plus the
part of the pre-episode ``fee_volume_30d`` still inside the window (spread evenly over the 720
hours before the start, so it is gone after 720 steps); see `envs.execution.ledger`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.config import EnvConfig
from envs.execution.arrays import ExecArrays
from envs.execution.fees import FeeModel, fee_table, rates_from_table
from envs.execution.fills import limit_prices, traded_through
from envs.execution.ledger import CASH_MARGIN, FEE_WINDOW
from envs.execution.orders import (
    INSUFFICIENT_CASH,
    LIMIT_EXPIRED,
    NO_BAR,
    PARTICIPATION_CAP,
    ZERO_VOLUME,
    LotRules,
    floor_to_lot,
    size_orders,
)
from envs.execution.slippage import SlippageModel, make_slippage_model


@dataclass(frozen=True, eq=False)
class Fills:
    """Fills of one phase as (B, N) arrays; qty 0 means no fill."""

    qty: np.ndarray
    price: np.ndarray
    fee: np.ndarray
    maker: bool


@dataclass(eq=False)
class Bar:
    """One step's working set for the fill phases (the kernel keeps the same in its `kernels.Work` rows)."""

    t: np.ndarray  # (B,) decision bars
    u: np.ndarray  # (B,) execution bars
    is_buy: np.ndarray  # (B, N) side of each order
    qty: np.ndarray  # (B, N) base quantity of the order worked in this bar
    sign: np.ndarray  # (B, N) +1 buy, -1 sell
    ok: np.ndarray  # (B, N) bar u may fill
    cap: np.ndarray  # (B, N) participation capacity of bar u
    urgent: np.ndarray | None  # (B, N) urgent market orders (execution mode), None when there are none
    reject: np.ndarray  # (B, N) int8 first shortfall reason
    unfilled: np.ndarray  # (B, N) its unfilled quantity
    cash_short: np.ndarray  # (B, N) quantity a cash shortage cut off a buy
    hit: np.ndarray | None = None  # (B, N) limit traded through (limit phase)
    q_a: np.ndarray | None = None  # (B, N) quantity sent to the limit phase

    @property
    def short(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The three shortfall arrays `_shortfall` updates in place."""
        return self.reject, self.unfilled, self.cash_short


@dataclass(frozen=True, eq=False)
class StepOut:
    equity_before: np.ndarray  # (B,) at the close of bar t
    equity: np.ndarray  # (B,) at the close of bar t+1
    fees: np.ndarray  # (B,) USD paid this step
    slippage: np.ndarray  # (B,) USD conceded to spread and impact this step
    traded: np.ndarray  # (B,) USD notional traded this step
    is_buy: np.ndarray  # (B, N) side of the order behind each fill
    # [urgent market orders at the open, when a row has any,] phase A (limit or market at the open),
    # [phase B (fallback at the close), with limit orders and the market fallback]
    phases: tuple[Fills, ...]
    ordered: np.ndarray  # (B, N) base quantity of the order worked in this bar (0: none)
    reject: np.ndarray  # (B, N) int8 reason code of each asset's first shortfall record (orders.REASONS)
    unfilled: np.ndarray  # (B, N) its unfilled base quantity
    cash_short: np.ndarray  # (B, N) quantity a cash shortage cut off a buy (a second, insufficient_cash record)

    def records(self, row: int) -> list[tuple[int, int, float]]:
        """Shortfall records of one row as (asset, reason code, unfilled qty), in the kernel's order."""
        out = []
        for i in range(self.reject.shape[1]):
            if self.reject[row, i]:
                out.append((i, int(self.reject[row, i]), float(self.unfilled[row, i])))
            if self.cash_short[row, i] > 0.0:
                out.append((i, INSUFFICIENT_CASH, float(self.cash_short[row, i])))
        return out


class NumpyLedger:
    """State of B independent accounts over one shared market; see the module docstring."""

    def __init__(
        self, arrays: ExecArrays, rules: LotRules, fees: FeeModel, config: EnvConfig, n: int,
        slippage: SlippageModel | None = None,
    ) -> None:
        self.a, self.rules, self.fee_model, self.cfg, self.n = arrays, rules, fees, config, n
        self.fee_table = fee_table(fees)  # the same (3, K) tier table the kernel reads
        self.slippage = make_slippage_model(config) if slippage is None else slippage
        n_assets = arrays.price.shape[1]
        self.limit = config.order_type == "limit"
        self.fallback_market = config.limit_fallback == "market"
        self.t = np.zeros(n, dtype=np.int64)
        self.steps = np.zeros(n, dtype=np.int64)
        self.cash = np.full(n, config.initial_cash)
        self.units = np.zeros((n, n_assets))
        self.equity = np.full(n, config.initial_cash)
        self.peak = np.full(n, config.initial_cash)
        self.last_trade = np.zeros(n, dtype=np.int64)
        self.pend = np.zeros((n, n_assets))  # signed resting quantity (+ buy, − sell)
        self.pend_px = np.zeros((n, n_assets))
        self.age = np.zeros((n, n_assets), dtype=np.int64)
        self.cum_fees = np.zeros(n)
        self.cum_slippage = np.zeros(n)
        self.cum_traded = np.zeros(n)
        self.vol30 = np.zeros(n)  # USD traded in the episode's last FEE_WINDOW steps
        self.ring = np.zeros((n, FEE_WINDOW))  # USD traded in each of the last FEE_WINDOW steps
        self._w: np.ndarray | None = None

    # ------------------------------------------------------------------ state
    def reset_rows(self, rows: np.ndarray, starts: np.ndarray) -> None:
        """Fresh accounts at decision bars ``starts`` for the selected rows (mask or indices)."""
        c = self.cfg
        self._w = None
        self.t[rows] = starts
        self.steps[rows] = 0
        self.cash[rows] = c.initial_cash
        self.units[rows] = 0.0
        self.equity[rows] = c.initial_cash
        self.peak[rows] = c.initial_cash
        self.last_trade[rows] = np.asarray(starts) - int(np.ceil(c.trade_age_scale_hours))
        self.pend[rows] = 0.0
        self.pend_px[rows] = 0.0
        self.age[rows] = 0
        self.cum_fees[rows] = 0.0
        self.cum_slippage[rows] = 0.0
        self.cum_traded[rows] = 0.0
        self.vol30[rows] = 0.0
        self.ring[rows] = 0.0

    def weights(self) -> np.ndarray:
        """(B, N) asset weights at the current decision bar (cached until the state changes)."""
        if self._w is None:
            eq = np.where(self.equity > 0.0, self.equity, np.inf)  # ruined accounts weigh nothing
            self._w = self.units * self.a.mark[self.t] / eq[:, None]
            self._w.flags.writeable = False
        return self._w

    def volume_30d(self) -> np.ndarray:
        """(B,) trailing 30-day USD volume for the fee tier: episode trades plus the unexpired credit.

        ``fee_volume_30d`` counts as traded evenly over the 720 hours before the episode, so
        ``fee_volume_30d × (720 − steps) / 720`` of it is still in the window (none from step 720 on).
        """
        before = np.maximum(FEE_WINDOW - self.steps, 0)
        return np.where(before > 0, self.vol30 + self.cfg.fee_volume_30d * before / FEE_WINDOW, self.vol30)

    # ------------------------------------------------------------------- step
    def step(self, target: np.ndarray, hold: np.ndarray, urgency: np.ndarray | None = None) -> StepOut:
        """Advance every row one bar: orders from ``target`` (B, N) unless ``hold`` (B,).

        ``urgency`` (B, N) (execution mode): > 0 makes the new order a market order at the open.
        The phases have the names of the kernel's inlined helpers (`envs.execution.kernels`).
        """
        self._w = None
        u = self.t + 1
        eq_before = self.equity.copy()
        maker, taker = self.fee_rates()
        bar = self.size_orders(target, hold, eq_before, urgency)
        slip = np.zeros(self.n)
        phases = []
        if self.limit:
            if bar.urgent is not None:
                phase_m, slip = self.urgent_phase(bar, taker)
                phases.append(phase_m)
            phase_a, remaining = self.limit_phase(bar, maker)
            phases.append(phase_a)
            if self.fallback_market:
                phase_b, slip_b, remaining = self.fallback_phase(bar, phase_a, remaining, taker)
                slip = slip + slip_b
                phases.append(phase_b)
            self.expire_orders(bar, phase_a, remaining)
        else:
            phase_a, slip = self.market_phase(bar, taker)
            phases.append(phase_a)
            self.close_market_orders(bar)

        fees = phases[0].fee.sum(1)
        traded = (phases[0].qty * phases[0].price).sum(1)
        filled = phases[0].qty > 0.0
        for ph in phases[1:]:
            fees = fees + ph.fee.sum(1)
            traded = traded + (ph.qty * ph.price).sum(1)
            filled = filled | (ph.qty > 0.0)
        self.mark(u, fees, slip, traded, np.asarray(filled.any(1)))
        return StepOut(eq_before, self.equity, fees, slip, traded, bar.is_buy, tuple(phases), bar.qty, bar.reject,
                       bar.unfilled, bar.cash_short)

    # ------------------------------------------------------------- phases
    def fee_rates(self) -> tuple[np.ndarray, np.ndarray]:
        """(B,) maker and taker rates from the fee model's tier table at each row's 30-day volume."""
        return rates_from_table(self.fee_table, self.volume_30d())

    def size_orders(self, target: np.ndarray, hold: np.ndarray, eq_before: np.ndarray,
                    urgency: np.ndarray | None = None) -> Bar:
        """Phase 1: rows not holding replace their orders by lot-rounded ones towards ``target`` (`orders.size_orders`).

        Refusals get a shortfall record with the wanted quantity. Returns the bar's working set.
        """
        a, t = self.a, self.t
        reject = np.zeros(self.pend.shape, dtype=np.int8)
        unfilled = np.zeros(self.pend.shape)
        if not hold.all():
            new_qty, rej, size = size_orders(
                target, self.units, a.price[t], eq_before, a.tradable[t], self.rules, self.cfg.min_order_fraction
            )
            new_px = limit_prices(a.price[t], new_qty > 0, a.limit_offset[t]) if self.limit else self.pend_px
            if hold.any():
                new = ~hold[:, None]
                self.pend = np.where(new, new_qty, self.pend)
                self.pend_px = np.where(new, new_px, self.pend_px)
                self.age = np.where(new, 0, self.age)
                reject = np.where(new, rej, reject).astype(np.int8)
            else:
                self.pend, self.pend_px, reject = new_qty, new_px, rej
                self.age = np.zeros_like(self.age)
            unfilled = np.where(reject != 0, size, 0.0)  # a refused order leaves all it wanted unfilled
        urgent = None
        if self.limit and urgency is not None:
            urgent = (np.asarray(urgency, dtype=np.float64) > 0.0) & ~hold[:, None]  # NaN compares False
            if not urgent.any():
                urgent = None
        is_buy = self.pend > 0.0
        u = t + 1
        return Bar(t, u, is_buy, np.abs(self.pend), np.where(is_buy, 1.0, -1.0), a.exec_ok[u], a.capacity[u],
                   urgent, reject, unfilled, np.zeros(self.pend.shape))

    def urgent_phase(self, bar: Bar, taker: np.ndarray) -> tuple[Fills, np.ndarray]:
        """Urgent assets: market orders at the open (taker), before the limits trade; they leave the book."""
        assert bar.urgent is not None
        urgent, qty, ok, cap = bar.urgent, bar.qty, bar.ok, bar.cap
        q_m = floor_to_lot(np.minimum(np.where(urgent & ok, qty, 0.0), cap), self.rules.scale)
        phase_m, slip = self._market(q_m, bar.is_buy, bar.sign, self.a.open[bar.u], bar.t, bar.u, taker)
        _shortfall(urgent & (qty > 0.0) & ok, qty, q_m, phase_m.qty, cap, cap, bar.is_buy, *bar.short)
        gone = urgent & ~ok & (qty > 0.0)
        bar.reject[gone] = NO_BAR
        bar.unfilled[gone] = qty[gone]
        return phase_m, slip

    def limit_phase(self, bar: Bar, maker: np.ndarray) -> tuple[Fills, np.ndarray]:
        """Phase A, limit mode: orders the bar trades through fill at their limit (maker); (fills, remaining)."""
        a, u = self.a, bar.u
        bar.hit = bar.ok & traded_through(bar.is_buy, self.pend_px, a.low[u], a.high[u])
        if bar.urgent is not None:
            bar.hit &= ~bar.urgent
        bar.q_a = floor_to_lot(np.minimum(np.where(bar.hit, bar.qty, 0.0), bar.cap), self.rules.scale)
        phase_a = self._fill(bar.q_a, bar.is_buy, self.pend_px, maker, True)
        # orders and fills are lot multiples: snap their difference back onto the lot grid, or float
        # residue (1354.6710504 - 1354.6710502 = 1.9999985e-07) would lose a lot to the next floor
        scale = self.rules.scale
        remaining = np.rint((bar.qty - phase_a.qty) * scale) / scale
        if bar.urgent is not None:
            remaining = np.where(bar.urgent, 0.0, remaining)  # a market order leaves the book after its bar
        return phase_a, remaining

    def market_phase(self, bar: Bar, taker: np.ndarray) -> tuple[Fills, np.ndarray]:
        """Phase A, market mode: every order at the open plus slippage (taker), within the participation cap."""
        qty, ok, cap = bar.qty, bar.ok, bar.cap
        q_a = floor_to_lot(np.minimum(np.where(ok, qty, 0.0), cap), self.rules.scale)
        phase_a, slip = self._market(q_a, bar.is_buy, bar.sign, self.a.open[bar.u], bar.t, bar.u, taker)
        _shortfall((qty > 0.0) & ok, qty, q_a, phase_a.qty, cap, cap, bar.is_buy, *bar.short)
        return phase_a, slip

    def fallback_phase(self, bar: Bar, phase_a: Fills, remaining: np.ndarray,
                       taker: np.ndarray) -> tuple[Fills, np.ndarray, np.ndarray]:
        """Phase B at the close: limits at their time-to-live send what remains as a market order (taker).

        Returns (fills, slippage, what still remains).
        """
        expire = self.age + 1 >= self.cfg.limit_ttl_bars
        go = expire & bar.ok & (remaining > 0.0)
        room = np.maximum(bar.cap - phase_a.qty, 0.0)
        q_b = floor_to_lot(np.minimum(np.where(go, remaining, 0.0), room), self.rules.scale)
        phase_b, slip_b = self._market(q_b, bar.is_buy, bar.sign, self.a.close[bar.u], bar.t, bar.u, taker)
        _shortfall(go, remaining, q_b, phase_b.qty, room, bar.cap, bar.is_buy, *bar.short)
        scale = self.rules.scale
        return phase_b, slip_b, np.rint((remaining - phase_b.qty) * scale) / scale

    def expire_orders(self, bar: Bar, phase_a: Fills, remaining: np.ndarray) -> None:
        """Orders at their time-to-live leave the book (cancelled ones with records); the others rest one bar older."""
        qty, ok = bar.qty, bar.ok
        expire = self.age + 1 >= self.cfg.limit_ttl_bars
        if not self.fallback_market:
            hit, q_a = bar.hit, bar.q_a
            assert hit is not None and q_a is not None, "expire_orders runs after limit_phase"
            dropped = expire & (qty > 0.0) & ok & (remaining > 0.0)
            _shortfall(dropped & hit, qty, q_a, phase_a.qty, bar.cap, bar.cap, bar.is_buy, *bar.short)
            expired = dropped & ~hit  # never traded through: cancelled at its time-to-live
            bar.reject[expired] = LIMIT_EXPIRED
            bar.unfilled[expired] = remaining[expired]
        keep = ~expire & (remaining > 0.0)
        no_bar = expire & ~ok & (qty > 0.0)
        self.pend = np.where(keep, bar.sign * remaining, 0.0)
        self.age = np.where(keep, self.age + 1, 0)
        bar.reject[no_bar] = NO_BAR
        bar.unfilled[no_bar] = qty[no_bar]

    def close_market_orders(self, bar: Bar) -> None:
        """Market mode: every order leaves the book after its bar (no bar: a ``no_bar`` record)."""
        no_bar = ~bar.ok & (bar.qty > 0.0)
        self.pend = np.zeros_like(self.pend)
        bar.reject[no_bar] = NO_BAR
        bar.unfilled[no_bar] = bar.qty[no_bar]

    def mark(self, u: np.ndarray, fees: np.ndarray, slip: np.ndarray, traded: np.ndarray, filled: np.ndarray) -> None:
        """Mark at the close of ``u``: equity = cash + Σ units × mark; totals, the volume window, t + 1."""
        self.equity = self.cash + (self.units * self.a.mark[u]).sum(1)
        self.peak = np.maximum(self.peak, self.equity)
        self.last_trade = np.where(filled, u, self.last_trade)
        self.cum_fees += fees
        self.cum_slippage += slip
        self.cum_traded += traded
        slot = self.steps % FEE_WINDOW
        rows = np.arange(self.n)
        self.vol30 += traded - self.ring[rows, slot]
        self.ring[rows, slot] = traded
        self.t = u
        self.steps = self.steps + 1

    # ------------------------------------------------------------ internals
    def _market(
        self,
        q: np.ndarray,
        is_buy: np.ndarray,
        sign: np.ndarray,
        ref: np.ndarray,
        t: np.ndarray,
        u: np.ndarray,
        taker: np.ndarray,
    ) -> tuple[Fills, np.ndarray]:
        """Market fills of ``q`` at ``ref`` moved against the trader by half-spread + impact."""
        a = self.a
        ref = np.where(q > 0.0, ref, 0.0)
        rate = self.slippage.impact.rate(a.half_spread[t], a.sigma[t], q * ref, a.dollar_volume[u])
        price = ref * (1.0 + sign * rate)
        fills = self._fill(q, is_buy, price, taker, False)
        slip = (fills.qty * ref * rate).sum(1)
        return fills, slip

    def _fill(
        self,
        q: np.ndarray,
        is_buy: np.ndarray,
        price: np.ndarray,
        rate: np.ndarray,
        maker: bool,
    ) -> Fills:
        """Apply fills: sells (capped at units) credit cash first, then buys within cash."""
        rules = self.rules
        r = rate[:, None]
        price = np.where(q > 0.0, price, 0.0)
        sell_q = np.where(is_buy, 0.0, np.minimum(q, self.units))
        buy_q = np.where(is_buy, q, 0.0)
        sell_notional = sell_q * price
        sell_fee = sell_notional * r
        self.cash += (sell_notional - sell_fee).sum(1)
        self.units = self.units - sell_q
        budget = self.cash * (1.0 - CASH_MARGIN)
        total = (buy_q * price * (1.0 + r)).sum(1)
        over = total > budget
        if over.any():
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(over, budget / total, 1.0)
            scaled = floor_to_lot(buy_q * scale[:, None], rules.scale)
            small = (scaled <= 0.0) | (scaled < rules.ordermin) | (scaled * price < rules.costmin)
            drop = over[:, None] & (buy_q > 0.0) & small
            buy_q = np.where(over[:, None], np.where(drop, 0.0, scaled), buy_q)
        buy_notional = buy_q * price
        buy_fee = buy_notional * r
        self.cash -= (buy_notional + buy_fee).sum(1)
        # every fill is a whole number of lots: snap units back onto the lot grid so float
        # residue (0.1 + 0.2 - 0.3) never leaves phantom dust positions
        self.units = np.rint((self.units + buy_q) * rules.scale) / rules.scale
        return Fills(sell_q + buy_q, price, sell_fee + buy_fee, maker)


def _shortfall(
    sent_mask: np.ndarray,
    want: np.ndarray,
    sent: np.ndarray,
    filled: np.ndarray,
    room: np.ndarray,
    capacity: np.ndarray,
    is_buy: np.ndarray,
    reject: np.ndarray,
    unfilled: np.ndarray,
    cash_short: np.ndarray,
) -> None:
    """Causes of the unfilled part of ``want`` where an attempt of ``sent`` filled ``filled`` (in place).

    Capacity left (``room``) below ``want`` cut the order to ``sent``: ``participation_cap``, or
    ``zero_volume`` where the bar's whole ``capacity`` is 0; a buy that filled less than it sent
    was scaled down for cash.
    """
    capped = sent_mask & (room < want)
    reject[capped] = np.where(capacity == 0.0, ZERO_VOLUME, PARTICIPATION_CAP)[capped]
    unfilled[capped] = (want - sent)[capped]
    cut = sent_mask & is_buy & (sent > filled)
    cash_short[cut] = (sent - filled)[cut]


def numpy_action_to_weights(action: np.ndarray, cur: np.ndarray, tradable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, N+1) actions -> (B, N) target weights and the (B,) "keep current weights" mask."""
    n = cur.shape[1]
    a = np.asarray(action, dtype=np.float64).reshape(cur.shape[0], n + 1)
    pos = np.where(a > 0.0, a, 0.0)  # NaN compares False: a NaN entry counts as 0
    held = np.where(tradable, 0.0, cur).sum(1)
    free = np.where(tradable, pos[:, :n], 0.0).sum(1) + pos[:, n]
    hold = ~(free > 0.0)
    w = pos[:, :n] * ((1.0 - held) / np.where(hold, 1.0, free))[:, None]
    w = np.where(tradable & ~hold[:, None], w, cur)
    return w, hold
