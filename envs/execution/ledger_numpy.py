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
from envs.execution.fees import FeeModel
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
from envs.execution.slippage import slippage_rate


@dataclass(frozen=True, eq=False)
class Fills:
    """Fills of one phase as (B, N) arrays; qty 0 means no fill."""

    qty: np.ndarray
    price: np.ndarray
    fee: np.ndarray
    maker: bool


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
        self, arrays: ExecArrays, rules: LotRules, fees: FeeModel, config: EnvConfig, n: int
    ) -> None:
        self.a, self.rules, self.fee_model, self.cfg, self.n = arrays, rules, fees, config, n
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
        """
        a, cfg = self.a, self.cfg
        self._w = None
        t = self.t
        u = t + 1
        eq_before = self.equity.copy()
        maker, taker = self.fee_model.rates(self.volume_30d())
        reject = np.zeros(self.pend.shape, dtype=np.int8)
        unfilled = np.zeros(self.pend.shape)
        if not hold.all():
            new_qty, rej, size = size_orders(
                target, self.units, a.price[t], eq_before, a.tradable[t], self.rules, cfg.min_order_fraction
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
        qty = np.abs(self.pend)
        ok = a.exec_ok[u]
        cap = a.capacity[u]
        sign = np.where(is_buy, 1.0, -1.0)
        slip = np.zeros(self.n)
        cash_short = np.zeros(self.pend.shape)
        short = (reject, unfilled, cash_short)  # updated in place by _shortfall
        phases = []
        if self.limit:
            if urgent is not None:  # urgent assets: market orders at the open, before the limits trade
                q_m = floor_to_lot(np.minimum(np.where(urgent & ok, qty, 0.0), cap), self.rules.scale)
                phase_m, slip = self._market(q_m, is_buy, sign, a.open[u], t, u, taker)
                _shortfall(urgent & (qty > 0.0) & ok, qty, q_m, phase_m.qty, cap, cap, is_buy, *short)
                gone = urgent & ~ok & (qty > 0.0)
                reject[gone] = NO_BAR
                unfilled[gone] = qty[gone]
                phases.append(phase_m)
            hit = ok & traded_through(is_buy, self.pend_px, a.low[u], a.high[u])
            if urgent is not None:
                hit &= ~urgent
            q_a = floor_to_lot(np.minimum(np.where(hit, qty, 0.0), cap), self.rules.scale)
            phase_a = self._fill(q_a, is_buy, self.pend_px, maker, True)
        else:
            q_a = floor_to_lot(np.minimum(np.where(ok, qty, 0.0), cap), self.rules.scale)
            phase_a, slip = self._market(q_a, is_buy, sign, a.open[u], t, u, taker)
            _shortfall((qty > 0.0) & ok, qty, q_a, phase_a.qty, cap, cap, is_buy, *short)
        # orders and fills are lot multiples: snap their difference back onto the lot grid, or float
        # residue (1354.6710504 - 1354.6710502 = 1.9999985e-07) would lose a lot to the next floor
        scale = self.rules.scale
        remaining = np.rint((qty - phase_a.qty) * scale) / scale
        if urgent is not None:
            remaining = np.where(urgent, 0.0, remaining)  # a market order leaves the book after its bar
        phases.append(phase_a)
        if self.limit:
            expire = self.age + 1 >= cfg.limit_ttl_bars
            if self.fallback_market:
                go = expire & ok & (remaining > 0.0)
                room = np.maximum(cap - phase_a.qty, 0.0)
                q_b = floor_to_lot(np.minimum(np.where(go, remaining, 0.0), room), self.rules.scale)
                phase_b, slip_b = self._market(q_b, is_buy, sign, a.close[u], t, u, taker)
                slip = slip + slip_b
                _shortfall(go, remaining, q_b, phase_b.qty, room, cap, is_buy, *short)
                remaining = np.rint((remaining - phase_b.qty) * scale) / scale
                phases.append(phase_b)
            else:
                dropped = expire & (qty > 0.0) & ok & (remaining > 0.0)
                _shortfall(dropped & hit, qty, q_a, phase_a.qty, cap, cap, is_buy, *short)
                expired = dropped & ~hit  # never traded through: cancelled at its time-to-live
                reject[expired] = LIMIT_EXPIRED
                unfilled[expired] = remaining[expired]
            keep = ~expire & (remaining > 0.0)
            no_bar = expire & ~ok & (qty > 0.0)
            self.pend = np.where(keep, sign * remaining, 0.0)
            self.age = np.where(keep, self.age + 1, 0)
        else:
            no_bar = ~ok & (qty > 0.0)
            self.pend = np.zeros_like(self.pend)
        reject[no_bar] = NO_BAR
        unfilled[no_bar] = qty[no_bar]

        fees = phases[0].fee.sum(1)
        traded = (phases[0].qty * phases[0].price).sum(1)
        filled = phases[0].qty > 0.0
        for ph in phases[1:]:
            fees = fees + ph.fee.sum(1)
            traded = traded + (ph.qty * ph.price).sum(1)
            filled = filled | (ph.qty > 0.0)
        self.equity = self.cash + (self.units * a.mark[u]).sum(1)
        self.peak = np.maximum(self.peak, self.equity)
        self.last_trade = np.where(filled.any(1), u, self.last_trade)
        self.cum_fees += fees
        self.cum_slippage += slip
        self.cum_traded += traded
        slot = self.steps % FEE_WINDOW
        rows = np.arange(self.n)
        self.vol30 += traded - self.ring[rows, slot]
        self.ring[rows, slot] = traded
        self.t = u
        self.steps = self.steps + 1
        return StepOut(eq_before, self.equity, fees, slip, traded, is_buy, tuple(phases), qty, reject, unfilled,
                       cash_short)

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
        a, cfg = self.a, self.cfg
        ref = np.where(q > 0.0, ref, 0.0)
        rate = slippage_rate(a.half_spread[t], a.sigma[t], q * ref, a.dollar_volume[u], cfg.impact_k, cfg.max_slippage)
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
