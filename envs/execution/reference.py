"""An exact `Decimal` re-implementation of one account's step, for differential tests (ACC-9).

It reads the same precomputed inputs as `BatchLedger` (prices, spread and volatility
estimates, lot rules, fee schedule) but does every piece of money arithmetic in exact
decimal, one asset at a time, with plain Python loops: a second, independent
implementation of sizing, lot rounding, minimum checks, limit/market fills, the
participation cap, cash scaling, fees and marking. It is slow and never used in training.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, localcontext

import numpy as np

from envs.config import EnvConfig
from envs.execution.arrays import ExecArrays
from envs.execution.fees import FeeModel
from envs.execution.ledger import CASH_MARGIN, FEE_WINDOW
from envs.execution.orders import LotRules
from envs.execution.slippage import SlippageModel, make_slippage_model

ZERO = Decimal(0)
ONE = Decimal(1)
PRECISION = 60


def dec(x: float) -> Decimal:
    """Exact decimal value of a float64 (no rounding)."""
    return Decimal(float(x))


@dataclass(frozen=True)
class RefFill:
    asset: int
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    liquidity: str


class ReferenceLedger:
    """One account, stepped exactly; mirrors `envs.execution.ledger.BatchLedger` rules."""

    def __init__(
        self, arrays: ExecArrays, rules: LotRules, fees: FeeModel, config: EnvConfig, start: int,
        slippage: SlippageModel | None = None,
    ) -> None:
        self.a, self.cfg, self.fees = arrays, config, fees
        self.impact = (make_slippage_model(config) if slippage is None else slippage).impact  # its k and cap
        n = arrays.price.shape[1]
        self.n = n
        self.scale = [10 ** int(d) for d in rules.lot_decimals]
        self.ordermin = [dec(x) for x in rules.ordermin]
        self.costmin = [dec(x) for x in rules.costmin]
        self.t = start
        self.cash = dec(config.initial_cash)
        self.units = [ZERO] * n
        self.pend = [ZERO] * n
        self.pend_px = [ZERO] * n
        self.age = [0] * n
        self.equity = self.cash
        self.peak = self.cash
        self.fees_paid = ZERO
        self.history: deque[Decimal] = deque([ZERO] * FEE_WINDOW, maxlen=FEE_WINDOW)
        self.steps = 0
        self.shortfalls: list[tuple[int, str, Decimal]] = []  # last step's (asset, reason, unfilled qty)

    def _floor(self, x: Decimal, i: int) -> Decimal:
        s = self.scale[i]
        return (x * s).to_integral_value(rounding=ROUND_FLOOR) / s

    def _rates(self) -> tuple[Decimal, Decimal]:
        # the pre-episode credit counts as traded evenly over the 720 hours before the start
        before = max(FEE_WINDOW - self.steps, 0)
        volume = sum(self.history, ZERO) + dec(self.cfg.fee_volume_30d) * before / FEE_WINDOW
        thresholds, maker, taker = self.fees.tier_table()
        tier = 0
        for k, threshold in enumerate(thresholds):
            if volume >= dec(threshold):
                tier = k
        return dec(maker[tier]), dec(taker[tier])

    def step(self, target: np.ndarray | None, urgency: np.ndarray | None = None) -> list[RefFill]:
        """One bar; ``target`` is the (N,) weight vector, or None to keep current weights.

        ``urgency`` (N,) (execution mode): > 0 sends that asset's new order as a market order.
        """
        with localcontext() as ctx:
            ctx.prec = PRECISION
            return self._step(target, urgency)

    def _step(self, target: np.ndarray | None, urgency: np.ndarray | None) -> list[RefFill]:
        a, cfg = self.a, self.cfg
        t, u = self.t, self.t + 1
        maker, taker = self._rates()
        limit = cfg.order_type == "limit"
        # an urgent asset's new order is a market order at the open (limit mode; market mode: all are)
        urgent = [limit and target is not None and urgency is not None and bool(urgency[i] > 0)
                  for i in range(self.n)]
        short: dict[int, tuple[str, Decimal]] = {}  # each asset's first shortfall record
        cash_short: dict[int, Decimal] = {}  # what a cash shortage cut off a buy
        if target is not None:
            for i in range(self.n):
                refused = self._new_order(i, dec(target[i]), t)
                if refused is not None:
                    short[i] = refused
        fills: list[RefFill] = []
        buy = [p > 0 for p in self.pend]
        qty = [abs(p) for p in self.pend]
        ok = [bool(a.exec_ok[u, i]) for i in range(self.n)]
        cap = [dec(a.capacity[u, i]) if np.isfinite(a.capacity[u, i]) else None for i in range(self.n)]

        def cut(i: int, want: Decimal, sent: Decimal, done: Decimal, room: Decimal | None) -> None:
            """Record why ``want`` filled only ``done`` from an attempt of ``sent`` (room None: no cap)."""
            if room is not None and room < want:
                short[i] = ("zero_volume" if cap[i] == 0 else "participation_cap", want - sent)
            if buy[i] and sent > done:
                cash_short[i] = sent - done
        if any(urgent):  # market orders at the open, before any limit trades
            q_m = [ZERO] * self.n
            px_m = [ZERO] * self.n
            for i in range(self.n):
                if urgent[i] and qty[i] > 0 and ok[i]:
                    px_m[i] = dec(a.open[u, i])
                    c = cap[i]
                    q_m[i] = self._floor(qty[i] if c is None else min(qty[i], c), i)
            fills_m, done_m = self._fill(q_m, px_m, buy, taker, True, t, u, "taker")
            fills += fills_m
            for i in range(self.n):
                if urgent[i] and qty[i] > 0:
                    if ok[i]:
                        cut(i, qty[i], q_m[i], done_m[i], cap[i])
                    else:
                        short[i] = ("no_bar", qty[i])
        q_a = [ZERO] * self.n
        px_a = [ZERO] * self.n
        for i in range(self.n):
            if qty[i] <= 0 or not ok[i] or urgent[i]:
                continue
            if limit:
                hit = dec(a.low[u, i]) < self.pend_px[i] if buy[i] else dec(a.high[u, i]) > self.pend_px[i]
                if not hit:
                    continue
                px_a[i] = self.pend_px[i]
            else:
                px_a[i] = dec(a.open[u, i])
            c = cap[i]
            q_a[i] = self._floor(qty[i] if c is None else min(qty[i], c), i)
        done_a = self._fill(q_a, px_a, buy, maker if limit else taker, not limit, t, u, "maker" if limit else "taker")
        fills += done_a[0]
        filled = done_a[1]
        remaining = [ZERO if urgent[i] else qty[i] - filled[i] for i in range(self.n)]
        if limit:
            expire = [self.age[i] + 1 >= cfg.limit_ttl_bars for i in range(self.n)]
            if cfg.limit_fallback == "market":
                q_b = [ZERO] * self.n
                px_b = [dec(a.close[u, i]) if ok[i] else ZERO for i in range(self.n)]
                for i in range(self.n):
                    if expire[i] and ok[i] and remaining[i] > 0:
                        c = cap[i]
                        room = remaining[i] if c is None else min(remaining[i], max(c - filled[i], ZERO))
                        q_b[i] = self._floor(room, i)
                done_b = self._fill(q_b, px_b, buy, taker, True, t, u, "taker")
                fills += done_b[0]
                for i in range(self.n):
                    if expire[i] and ok[i] and remaining[i] > 0:
                        c = cap[i]
                        cut(i, remaining[i], q_b[i], done_b[1][i], None if c is None else max(c - filled[i], ZERO))
                remaining = [remaining[i] - done_b[1][i] for i in range(self.n)]
            else:
                for i in range(self.n):
                    if expire[i] and ok[i] and qty[i] > 0 and remaining[i] > 0:
                        if px_a[i] > 0:  # traded through (px_a is set only then)
                            cut(i, qty[i], q_a[i], filled[i], cap[i])
                        else:
                            short[i] = ("limit_expired", remaining[i])
            for i in range(self.n):
                if expire[i] and not ok[i] and qty[i] > 0:
                    short[i] = ("no_bar", qty[i])
                if not expire[i] and remaining[i] > 0:
                    self.pend[i] = remaining[i] if buy[i] else -remaining[i]
                    self.age[i] += 1
                else:
                    self.pend[i] = ZERO
                    self.age[i] = 0
        else:
            for i in range(self.n):
                if qty[i] > 0:
                    if ok[i]:
                        cut(i, qty[i], q_a[i], filled[i], cap[i])
                    else:
                        short[i] = ("no_bar", qty[i])
            self.pend = [ZERO] * self.n
        self.shortfalls = []
        for i in range(self.n):
            if i in short:
                self.shortfalls.append((i, *short[i]))
            if cash_short.get(i, ZERO) > 0:
                self.shortfalls.append((i, "insufficient_cash", cash_short[i]))
        traded = sum((f.qty * f.price for f in fills), ZERO)
        self.history.append(traded)
        self.equity = self.cash + sum((self.units[i] * dec(a.mark[u, i]) for i in range(self.n)), ZERO)
        self.peak = max(self.peak, self.equity)
        self.t = u
        self.steps += 1
        return fills

    def _new_order(self, i: int, w: Decimal, t: int) -> tuple[str, Decimal] | None:
        """Replace asset i's order by one towards weight ``w``; a refusal returns (reason, wanted qty)."""
        a, cfg = self.a, self.cfg
        self.pend[i], self.age[i] = ZERO, 0
        if not a.tradable[t, i]:
            return None
        price = dec(a.price[t, i])
        delta = w * self.equity / price - self.units[i]
        if abs(delta) * price <= dec(cfg.min_order_fraction) * self.equity:
            return None
        if delta < 0:
            q = self.units[i] if w <= 0 else min(self._floor(-delta, i), self.units[i])
        else:
            q = self._floor(delta, i)
        if q <= 0:
            return "lot_size", abs(delta)
        if q < self.ordermin[i]:
            return "ordermin", abs(delta)
        if q * price < self.costmin[i]:
            return "costmin", abs(delta)
        self.pend[i] = q if delta > 0 else -q
        off = dec(a.limit_offset[t, i])
        self.pend_px[i] = price * (ONE - off) if delta > 0 else price * (ONE + off)
        return None

    def _fill(
        self,
        q: list[Decimal],
        px: list[Decimal],
        buy: list[bool],
        rate: Decimal,
        market: bool,
        t: int,
        u: int,
        liquidity: str,
    ) -> tuple[list[RefFill], list[Decimal]]:
        a = self.a
        price = list(px)
        if market:
            for i in range(self.n):
                if q[i] > 0:
                    ref = px[i]
                    dv = dec(a.dollar_volume[u, i])
                    cap = dec(self.impact.cap)
                    if dv > 0:
                        impact = dec(self.impact.k) * dec(a.sigma[t, i]) * (q[i] * ref / dv).sqrt()
                    else:
                        impact = cap
                    rate_s = min(dec(a.half_spread[t, i]) + impact, cap)
                    price[i] = ref * (ONE + rate_s) if buy[i] else ref * (ONE - rate_s)
        fills: list[RefFill] = []
        done = [ZERO] * self.n
        for i in range(self.n):
            if not buy[i] and q[i] > 0:
                s = min(q[i], self.units[i])
                if s > 0:
                    notional = s * price[i]
                    fee = notional * rate
                    self.cash += notional - fee
                    self.units[i] -= s
                    self.fees_paid += fee
                    done[i] = s
                    fills.append(RefFill(i, "sell", s, price[i], fee, liquidity))
        budget = self.cash * (ONE - dec(CASH_MARGIN))
        total = sum((q[i] * price[i] * (ONE + rate) for i in range(self.n) if buy[i]), ZERO)
        scale = budget / total if total > budget else None
        for i in range(self.n):
            if not buy[i] or q[i] <= 0:
                continue
            b = q[i] if scale is None else self._floor(q[i] * scale, i)
            if scale is not None and (b <= 0 or b < self.ordermin[i] or b * price[i] < self.costmin[i]):
                continue
            notional = b * price[i]
            fee = notional * rate
            self.cash -= notional + fee
            self.units[i] += b
            self.fees_paid += fee
            done[i] = b
            fills.append(RefFill(i, "buy", b, price[i], fee, liquidity))
        return fills, done
