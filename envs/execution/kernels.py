"""Numba kernels of one env step for B accounts: action mapping, orders, fills, ledger, marks.

This is the hot loop of `BatchLedger` written as explicit loops over rows and assets, so a
step costs one compiled call instead of ~100 numpy calls on 12-element arrays. It does the
same float64 operations in the same order as the numpy formulation kept in
`envs.execution.ledger_numpy` (the equivalence tests compare them bit for bit):

- element-wise arithmetic is written exactly as the numpy expressions (same association);
- every sum over assets uses `_pwsum`, numpy's pairwise summation order (``ndarray.sum``);
- ``np.where(c, x, y)`` becomes ``x if c else y`` and ``np.minimum``/``np.maximum`` keep
  numpy's NaN propagation (`_min`/`_max`), so NaN inputs behave as before;
- the reward's ``log`` stays in numpy (`BatchCore`): numpy's SIMD log can differ from libm
  in the last bit.

One account's step is `execute_row`, a chain of inlined phases with the names of the
`NumpyLedger` methods they mirror: `fee_rates` -> `size_orders` -> [`urgent_phase`] ->
`limit_phase` (or `market_phase`) -> [`fallback_phase`] -> `expire_orders` (or
`close_market_orders`) -> `record_fills` / `record_shortfalls` -> `mark` -> `step_outputs`.
`step_rows` (the env) maps each row's action to target weights first; `execute_rows` (one
hour outside the env, `envs.execution.execute`) starts from given targets. Both run the
same `execute_row`.

The arrays come in four named tuples built once by `BatchLedger` (`Inputs`, `State`,
`Outputs`, `Scratch`); the layout constants below name their rows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from envs.numba_utils import INLINE, JIT, njit
from envs.numba_utils import max_nan as _max
from envs.numba_utils import min_nan as _min
from envs.numba_utils import pwsum as _pwsum

# market pack ``mk`` (M, T, N) float64
M_PRICE, M_MARK, M_OPEN, M_HIGH, M_LOW, M_CLOSE, M_HALF, M_SIGMA, M_DVOL, M_CAP, M_LOFF, M_TRAD, M_OK = range(13)
N_MARKET = 13
# lot rules ``rules`` (3, N)
R_SCALE, R_ORDERMIN, R_COSTMIN = range(3)
# fee table ``fees`` (3, K): 30-day volume thresholds, maker rates, taker rates (a flat schedule: K = 1)
# float parameters ``fp``; P_K and P_MAXSLIP are the impact model's (`slippage.SquareRootImpact.kernel_params`)
P_MOF, P_K, P_MAXSLIP, P_HALT, P_AGE_SCALE, P_PENALTY, P_VOL0 = range(7)
N_FP = 7
# int parameters ``ip``
# I_EXEC: action_mode "execution": actions are (B, 2N+1), entries N+1.. are per-asset urgencies
I_LIMIT, I_FALLBACK_MARKET, I_TTL, I_HALT_ON, I_EXEC = range(5)
N_IP = 5
# float state ``fst`` (S, B); S_VOL30 is the USD traded in the episode's last FEE_WINDOW steps
# (the pre-episode credit ``fp[P_VOL0]`` is added when the rates are looked up, see `fee_rates`)
S_CASH, S_EQUITY, S_PEAK, S_CUM_FEES, S_CUM_SLIP, S_CUM_TRADED, S_VOL30 = range(7)
N_FST = 7
# int state ``ist`` (J, B)
J_T, J_STEPS, J_LAST_TRADE, J_LENGTH, J_FORCE_HOLD = range(5)
N_IST = 5
# per-asset state ``pos`` (3, B, N): units, signed resting quantity, resting limit price
X_UNITS, X_PEND, X_PEND_PX = range(3)
# float step outputs ``of`` (B, O)
O_EQ_BEFORE, O_EQUITY, O_CASH, O_FEES, O_SLIP, O_TRADED, O_TURNOVER, O_DD, O_RATIO, O_PENALTY = range(10)
N_OF = 10
# int step outputs ``oi`` (B, Q)
Q_T, Q_N_FILLS, Q_N_REJECTED, Q_TERMINATED, Q_TRUNCATED, Q_HOLD = range(6)
N_OI = 6
# fill records ``fv`` (B, 2N, 3): qty, price, fee; codes ``fc`` (B, 2N) = (asset * 2 + buy) * 2 + maker
# (at most two per asset and step: an urgent market order fills once; a limit in phase A and/or B)
V_QTY, V_PRICE, V_FEE = range(3)
# shortfall records: codes ``rc`` (B, 2N) = asset * REASON_SLOTS + reason (orders.REASONS), unfilled
# base quantities ``rq`` (B, 2N); at most two per asset and step (a refusal, no bar, expiry or the
# participation cap first, then the part a cash shortage cut off a buy)
N_SCRATCH, N_ISCRATCH = 19, 3  # rows of ``Scratch.sc`` (N,) float64 and ``Scratch.isc`` (N,) int64

LOT_TOLERANCE = 1e-12  # same as orders.LOT_TOLERANCE
CASH_MARGIN = 1e-10  # same as ledger.CASH_MARGIN
FEE_WINDOW = 720
TINY = 1e-300  # same as rewards.TINY
# same codes as orders.REASONS
LOT_SIZE, ORDERMIN, COSTMIN, INSUFFICIENT_CASH, NO_BAR, PARTICIPATION_CAP, ZERO_VOLUME, LIMIT_EXPIRED = range(1, 9)
REASON_SLOTS = 16  # same as orders.REASON_SLOTS


class Inputs(NamedTuple):
    """Read-only inputs of one market and config."""

    mk: np.ndarray  # (M, T, N) float64 market pack, rows M_*
    rules: np.ndarray  # (3, N) lot rules, rows R_*
    fees: np.ndarray  # (3, K) fee tier table
    fp: np.ndarray  # (N_FP,) float parameters P_*
    ip: np.ndarray  # (N_IP,) int64 parameters I_*


class State(NamedTuple):
    """The accounts, updated in place."""

    fst: np.ndarray  # (N_FST, B) float state S_*
    ist: np.ndarray  # (N_IST, B) int64 state J_*
    pos: np.ndarray  # (3, B, N) units, signed resting quantity, resting limit price (X_*)
    age: np.ndarray  # (B, N) int64 bars each resting order has rested
    ring: np.ndarray  # (B, FEE_WINDOW) USD traded in each of the last FEE_WINDOW steps


class Outputs(NamedTuple):
    """Per-step results (and the cached weights / portfolio block), written in place."""

    w: np.ndarray  # (B, N) weights at the decision bar
    target: np.ndarray  # (B, N) target weights of the last step
    of: np.ndarray  # (B, N_OF) float outputs O_*
    oi: np.ndarray  # (B, N_OI) int64 outputs Q_*
    fv: np.ndarray  # (B, 2N, 3) fill values V_*
    fc: np.ndarray  # (B, 2N) int64 fill codes
    rc: np.ndarray  # (B, 2N) int64 shortfall codes
    rq: np.ndarray  # (B, 2N) shortfall quantities
    pf: np.ndarray  # (B, N+3) float32 portfolio block


class Scratch(NamedTuple):
    """Work space: ``sc`` (N_SCRATCH, N) float64, ``isc`` (N_ISCRATCH, N) int64, ``stk`` (4, 64) float64."""

    sc: np.ndarray
    isc: np.ndarray
    stk: np.ndarray


class Work(NamedTuple):
    """Named (N,) rows of `Scratch`, built inside the kernel (views, no copies)."""

    s1: np.ndarray  # sum operands
    s2: np.ndarray
    qty: np.ndarray  # base quantity of each asset's order in this bar
    q: np.ndarray  # quantity sent to the current fill phase
    px: np.ndarray  # remaining quantity of a limit after phase A (and B)
    qa: np.ndarray  # phase A fills: qty, price, fee (limits, or market orders at the open)
    pa: np.ndarray
    fa: np.ndarray
    qb: np.ndarray  # phase B fills (fallback market orders at the close)
    pb: np.ndarray
    fb: np.ndarray
    buy_q: np.ndarray
    ref: np.ndarray
    rate: np.ndarray
    short: np.ndarray  # unfilled qty of the shortfall record in ``rej``
    cash_short: np.ndarray  # qty a cash shortage cut off a buy
    qm: np.ndarray  # fills of urgent market orders at the open (execution mode)
    pm: np.ndarray
    fm: np.ndarray
    buy: np.ndarray  # int64: 1 for a buy order
    rej: np.ndarray  # int64 reason code of each asset's first shortfall record
    urg: np.ndarray  # int64: 1 for an urgent asset (stays all 0 unless execution mode)
    stk: np.ndarray  # (4, 64) pairwise-sum stack


_JIT = JIT
_INLINE = INLINE


@njit(**_INLINE)
def work(scr: Scratch) -> Work:
    sc, isc = scr.sc, scr.isc
    return Work(sc[0], sc[1], sc[2], sc[3], sc[4], sc[5], sc[6], sc[7], sc[8], sc[9], sc[10], sc[11], sc[12],
                sc[13], sc[14], sc[15], sc[16], sc[17], sc[18], isc[0], isc[1], isc[2], scr.stk)


@njit(**_INLINE)
def _any_positive(x: np.ndarray) -> bool:
    for i in range(x.shape[0]):  # noqa: SIM110 - a plain loop compiles to a plain loop
        if x[i] > 0.0:
            return True
    return False


@njit(**_JIT)
def _floor_lot(q: float, scale: float) -> float:
    return np.floor(q * scale * (1.0 + LOT_TOLERANCE)) / scale


@njit(**_INLINE)
def _snap_lot(q: float, scale: float) -> float:
    """A difference of two lot multiples, back on the lot grid (float subtraction leaves residue)."""
    return np.rint(q * scale) / scale


@njit(**_INLINE)
def action_row(act: np.ndarray, trad: np.ndarray, cur: np.ndarray, out: np.ndarray, s1: np.ndarray,
               s2: np.ndarray, stk: np.ndarray) -> bool:
    """Target weights of one (N+1,) action into ``out``; True means "keep current weights"."""
    n = cur.shape[0]
    for i in range(n):
        a = np.float64(act[i])
        p = a if a > 0.0 else 0.0
        tr = trad[i] != 0.0
        s1[i] = 0.0 if tr else cur[i]
        s2[i] = p if tr else 0.0
    held = _pwsum(s1, n, stk)
    c = np.float64(act[n])
    free = _pwsum(s2, n, stk) + (c if c > 0.0 else 0.0)
    hold = not free > 0.0
    f = (1.0 - held) / (1.0 if hold else free)
    for i in range(n):
        a = np.float64(act[i])
        p = a if a > 0.0 else 0.0
        out[i] = p * f if (trad[i] != 0.0 and not hold) else cur[i]
    return hold


@njit(**_JIT)
def actions_to_weights(act: np.ndarray, mk: np.ndarray, t: np.ndarray, cur: np.ndarray, out: np.ndarray,
                       hold: np.ndarray, sc: np.ndarray, stk: np.ndarray) -> None:
    """(B, N+1) actions -> (B, N) targets and (B,) hold flags at each row's decision bar."""
    for b in range(cur.shape[0]):
        hold[b] = action_row(act[b], mk[M_TRAD, t[b]], cur[b], out[b], sc[0], sc[1], stk)


@njit(**_INLINE)
def slip_rate(half: float, sigma: float, notional: float, dvol: float, k: float, cap: float) -> float:
    """`slippage.SquareRootImpact`: min(half spread + k·sigma·sqrt(notional / dollar volume), cap); cap if no volume."""
    traded = dvol > 0.0
    impact = k * sigma * np.sqrt(notional / (dvol if traded else 1.0))
    if not traded:
        impact = cap
    return _min(half + impact, cap)


@njit(**_JIT)
def _fill(q: np.ndarray, price: np.ndarray, buy: np.ndarray, r: float, units: np.ndarray, cash: float,
          rules: np.ndarray, qout: np.ndarray, fee: np.ndarray, buy_q: np.ndarray, s1: np.ndarray,
          stk: np.ndarray) -> float:
    """Apply fills of ``q`` at ``price``: sells (capped at units) first, then buys within cash.

    ``price`` becomes 0 where nothing was ordered; ``qout``/``fee`` get the filled quantity
    and fee per asset (a buy scaled down for cash fills less than ``q``; one that the scaling
    takes below the pair minimums fills nothing). Returns the new cash. (Arrays, not the `Work`
    tuple: a non-inlined call passes every field of a tuple argument.)
    """
    n = q.shape[0]
    if not _any_positive(q):
        # nothing to fill: the general path below would add and subtract exact zeros
        for i in range(n):
            price[i] = 0.0
            qout[i] = 0.0
            fee[i] = 0.0
            s = rules[R_SCALE, i]
            units[i] = np.rint(units[i] * s) / s
        return cash
    for i in range(n):
        if not q[i] > 0.0:
            price[i] = 0.0
        sq = 0.0 if buy[i] else _min(q[i], units[i])
        sn = sq * price[i]
        sf = sn * r
        s1[i] = sn - sf
        fee[i] = sf
        qout[i] = sq
        units[i] = units[i] - sq
    cash = cash + _pwsum(s1, n, stk)
    budget = cash * (1.0 - CASH_MARGIN)
    for i in range(n):
        bq = q[i] if buy[i] else 0.0
        buy_q[i] = bq
        s1[i] = bq * price[i] * (1.0 + r)
    total = _pwsum(s1, n, stk)
    if total > budget:
        sc = budget / total
        for i in range(n):
            scaled = _floor_lot(buy_q[i] * sc, rules[R_SCALE, i])
            small = (scaled <= 0.0) or (scaled < rules[R_ORDERMIN, i]) or (scaled * price[i] < rules[R_COSTMIN, i])
            if buy_q[i] > 0.0 and small:
                buy_q[i] = 0.0
            else:
                buy_q[i] = scaled
    for i in range(n):
        bn = buy_q[i] * price[i]
        bf = bn * r
        s1[i] = bn + bf
        fee[i] = fee[i] + bf
    cash = cash - _pwsum(s1, n, stk)
    for i in range(n):
        s = rules[R_SCALE, i]
        units[i] = np.rint((units[i] + buy_q[i]) * s) / s
        qout[i] = qout[i] + buy_q[i]
    return cash


@njit(**_JIT)
def _market(q: np.ndarray, buy: np.ndarray, ref_row: np.ndarray, half: np.ndarray, sigma: np.ndarray,
            dvol: np.ndarray, k: float, cap: float, r: float, units: np.ndarray, cash: float,
            rules: np.ndarray, qout: np.ndarray, price: np.ndarray, fee: np.ndarray,
            buy_q: np.ndarray, s1: np.ndarray, ref: np.ndarray, rate: np.ndarray,
            stk: np.ndarray) -> tuple[float, float]:
    """Market fills at ``ref_row`` moved against the trader by `slip_rate`: (cash, slippage in USD).

    ``half`` and ``sigma`` are known at the decision bar, ``dvol`` is the execution bar's.
    """
    n = q.shape[0]
    if not _any_positive(q):
        return _fill(q, price, buy, r, units, cash, rules, qout, fee, buy_q, s1, stk), 0.0
    for i in range(n):
        rf = ref_row[i] if q[i] > 0.0 else 0.0
        rt = slip_rate(half[i], sigma[i], q[i] * rf, dvol[i], k, cap)
        sign = 1.0 if buy[i] else -1.0
        price[i] = rf * (1.0 + sign * rt)
        ref[i] = rf
        rate[i] = rt
    cash = _fill(q, price, buy, r, units, cash, rules, qout, fee, buy_q, s1, stk)
    for i in range(n):
        s1[i] = qout[i] * ref[i] * rate[i]
    return cash, _pwsum(s1, n, stk)


@njit(**_INLINE)
def _market_at(q: np.ndarray, ref_row: np.ndarray, t: int, u: int, r: float, units: np.ndarray, cash: float,
               inp: Inputs, wk: Work, qout: np.ndarray, price: np.ndarray, fee: np.ndarray) -> tuple[float, float]:
    """`_market` with the spread and volatility of bar ``t`` and the dollar volume of bar ``u``."""
    mk = inp.mk
    return _market(q, wk.buy, ref_row, mk[M_HALF, t], mk[M_SIGMA, t], mk[M_DVOL, u], inp.fp[P_K], inp.fp[P_MAXSLIP],
                   r, units, cash, inp.rules, qout, price, fee, wk.buy_q, wk.s1, wk.ref, wk.rate, wk.stk)


@njit(**_INLINE)
def _shortfall(i: int, want: float, sent: float, filled: float, room: float, capacity: float, wk: Work) -> None:
    """Causes of the unfilled part of ``want`` after a fill attempt of ``sent`` that filled ``filled``.

    ``room`` (the participation capacity left in the bar) below ``want`` cut the order to
    ``sent``: that part is ``participation_cap``, or ``zero_volume`` when the bar's whole
    ``capacity`` is 0 (it traded nothing); a buy that filled less than it sent was scaled
    down for cash (``insufficient_cash``).
    """
    if room < want:
        wk.rej[i] = ZERO_VOLUME if capacity == 0.0 else PARTICIPATION_CAP
        wk.short[i] = want - sent
    if wk.buy[i] != 0 and sent > filled:
        wk.cash_short[i] = sent - filled


@njit(**_INLINE)
def refresh_row(b: int, mk: np.ndarray, fp: np.ndarray, fst: np.ndarray, ist: np.ndarray, pos: np.ndarray,
                w: np.ndarray, pf: np.ndarray) -> None:
    """Weights (B, N) and the float32 portfolio block (B, N+3) of row ``b`` at its decision bar."""
    n = w.shape[1]
    t = ist[J_T, b]
    equity = fst[S_EQUITY, b]
    eq = equity if equity > 0.0 else np.inf
    for i in range(n):
        wi = pos[X_UNITS, b, i] * mk[M_MARK, t, i] / eq
        w[b, i] = wi
        pf[b, i] = _clip01(wi)
    pf[b, n] = _clip01(fst[S_CASH, b] / eq if equity > 0.0 else 1.0)
    pf[b, n + 1] = _clip01(1.0 - equity / fst[S_PEAK, b])
    scale = fp[P_AGE_SCALE]
    pf[b, n + 2] = _clip01(_min(np.float64(t - ist[J_LAST_TRADE, b]), scale) / scale)


@njit(**_JIT)
def _clip01(x: float) -> np.float32:
    return np.float32(_min(_max(x, 0.0), 1.0))


@njit(**_JIT)
def refresh_rows(rows: np.ndarray, mk: np.ndarray, fp: np.ndarray, fst: np.ndarray, ist: np.ndarray,
                 pos: np.ndarray, w: np.ndarray, pf: np.ndarray) -> None:
    for b in rows:
        refresh_row(b, mk, fp, fst, ist, pos, w, pf)


# ---------------------------------------------------------------------------------- the phases
@njit(**_INLINE)
def fee_rates(b: int, inp: Inputs, st: State) -> tuple[float, float]:
    """Row ``b``'s (maker, taker) rates: the last tier of ``fees`` whose threshold is <= its 30-day volume.

    The volume is the episode's trades of the last FEE_WINDOW steps plus the part of the
    pre-episode credit still inside the window. A flat schedule is a one-row table: tier 0
    at any volume, its rates exactly.
    """
    fees = inp.fees
    if fees.shape[1] == 1:  # one tier: its rates at any volume (the lookup below would find tier 0)
        return fees[1, 0], fees[2, 0]
    vol = st.fst[S_VOL30, b]
    before = FEE_WINDOW - st.ist[J_STEPS, b]  # hours of the window that lie before the episode
    if before > 0:
        vol = vol + inp.fp[P_VOL0] * before / FEE_WINDOW
    tier = 0
    while tier < fees.shape[1] and not vol < fees[0, tier]:
        tier += 1
    tier = max(tier - 1, 0)
    return fees[1, tier], fees[2, tier]


@njit(**_INLINE)
def size_orders(b: int, hold: bool, usrc: np.ndarray, uoff: int, eq_before: float, inp: Inputs, st: State,
                target: np.ndarray, wk: Work) -> int:
    """Phase 1 (`orders.size_orders`): new orders towards ``target`` at the decision price replace the book.

    Unless ``hold``: each asset's lot-rounded order (refusals get a shortfall record with the
    wanted quantity), its limit price and age 0. ``usrc[uoff + i] > 0`` marks asset i urgent
    (execution mode). Returns the number of urgent assets.
    """
    n = target.shape[0]
    mk, rules, fp, ip = inp.mk, inp.rules, inp.fp, inp.ip
    t = st.ist[J_T, b]
    units, pend, ppx, ag = st.pos[X_UNITS, b], st.pos[X_PEND, b], st.pos[X_PEND_PX, b], st.age[b]
    rej, short, urg = wk.rej, wk.short, wk.urg
    limit = ip[I_LIMIT] != 0
    for i in range(n):
        rej[i] = 0
        short[i] = 0.0
        wk.cash_short[i] = 0.0
    n_urg = 0
    if limit and ip[I_EXEC] != 0:  # with market orders every order is urgent anyway
        for i in range(n):
            urg[i] = 1 if (not hold) and usrc[uoff + i] > 0.0 else 0  # NaN compares False: limit
            n_urg += urg[i]
    if not hold:
        mof_eq = fp[P_MOF] * eq_before
        for i in range(n):
            price = mk[M_PRICE, t, i]
            tg = target[i]
            delta = tg * eq_before / price - units[i] if mk[M_TRAD, t, i] != 0.0 else 0.0
            is_sell = delta < 0.0
            size = abs(delta)
            lots = _floor_lot(size, rules[R_SCALE, i])
            if is_sell:
                oq = units[i] if tg <= 0.0 else _min(lots, units[i])
            else:
                oq = lots
            reason = 0
            if size * price > mof_eq:
                if oq <= 0.0:
                    reason = LOT_SIZE
                elif oq < rules[R_ORDERMIN, i]:
                    reason = ORDERMIN
                elif oq * price < rules[R_COSTMIN, i]:
                    reason = COSTMIN
                signed = (-oq if is_sell else oq) if reason == 0 else 0.0
            else:
                signed = 0.0
            rej[i] = reason
            short[i] = size if reason != 0 else 0.0
            pend[i] = signed
            if limit:
                off = mk[M_LOFF, t, i]
                ppx[i] = price * ((1.0 - off) if signed > 0.0 else (1.0 + off))
            ag[i] = 0
    for i in range(n):
        wk.buy[i] = 1 if pend[i] > 0.0 else 0
        wk.qty[i] = abs(pend[i])
    return n_urg


@njit(**_INLINE)
def urgent_phase(b: int, t: int, u: int, taker: float, cash: float, inp: Inputs, st: State,
                 wk: Work) -> tuple[float, float]:
    """Urgent assets (execution mode): market orders at the open of ``u`` (taker), before any limit trades.

    Returns (cash, slippage); fills in ``qm``/``pm``/``fm``. An urgent order leaves the book after its bar.
    """
    mk, scale = inp.mk, inp.rules[R_SCALE]
    qty, q, urg = wk.qty, wk.q, wk.urg
    for i in range(q.shape[0]):
        q[i] = _floor_lot(_min(qty[i] if (urg[i] != 0 and mk[M_OK, u, i] != 0.0) else 0.0, mk[M_CAP, u, i]),
                          scale[i])
    cash, slip = _market_at(q, mk[M_OPEN, u], t, u, taker, st.pos[X_UNITS, b], cash, inp, wk, wk.qm, wk.pm, wk.fm)
    for i in range(q.shape[0]):
        if urg[i] != 0 and qty[i] > 0.0:
            if mk[M_OK, u, i] != 0.0:
                c = mk[M_CAP, u, i]
                _shortfall(i, qty[i], q[i], wk.qm[i], c, c, wk)
            else:
                wk.rej[i] = NO_BAR
                wk.short[i] = qty[i]
    return cash, slip


@njit(**_INLINE)
def limit_phase(b: int, u: int, maker: float, cash: float, inp: Inputs, st: State, wk: Work) -> float:
    """Phase A, limit orders: those bar ``u`` trades through fill at their limit (maker), within the cap.

    Fills in ``qa``/``pa``/``fa``; ``px`` gets what remains of each order (0 for urgent ones). Returns cash.
    """
    mk, scale = inp.mk, inp.rules[R_SCALE]
    ppx = st.pos[X_PEND_PX, b]
    qty, q, urg, buy = wk.qty, wk.q, wk.urg, wk.buy
    for i in range(q.shape[0]):
        hit = False
        if mk[M_OK, u, i] != 0.0 and urg[i] == 0:
            hit = mk[M_LOW, u, i] < ppx[i] if buy[i] else mk[M_HIGH, u, i] > ppx[i]
        q[i] = _floor_lot(_min(qty[i] if hit else 0.0, mk[M_CAP, u, i]), scale[i])
        wk.pa[i] = ppx[i]
    cash = _fill(q, wk.pa, wk.buy, maker, st.pos[X_UNITS, b], cash, inp.rules, wk.qa, wk.fa, wk.buy_q, wk.s1, wk.stk)
    for i in range(q.shape[0]):
        wk.px[i] = 0.0 if urg[i] != 0 else _snap_lot(qty[i] - wk.qa[i], scale[i])  # remaining
    return cash


@njit(**_INLINE)
def market_phase(b: int, t: int, u: int, taker: float, cash: float, inp: Inputs, st: State,
                 wk: Work) -> tuple[float, float]:
    """Phase A, market orders: every order at the open of ``u`` plus slippage (taker), within the cap.

    Fills in ``qa``/``pa``/``fa``. Returns (cash, slippage).
    """
    mk, scale = inp.mk, inp.rules[R_SCALE]
    qty, q = wk.qty, wk.q
    for i in range(q.shape[0]):
        q[i] = _floor_lot(_min(qty[i] if mk[M_OK, u, i] != 0.0 else 0.0, mk[M_CAP, u, i]), scale[i])
    cash, slip = _market_at(q, mk[M_OPEN, u], t, u, taker, st.pos[X_UNITS, b], cash, inp, wk, wk.qa, wk.pa, wk.fa)
    for i in range(q.shape[0]):
        if qty[i] > 0.0 and mk[M_OK, u, i] != 0.0:
            c = mk[M_CAP, u, i]
            _shortfall(i, qty[i], q[i], wk.qa[i], c, c, wk)
    return cash, slip


@njit(**_INLINE)
def fallback_phase(b: int, t: int, u: int, taker: float, cash: float, inp: Inputs, st: State,
                   wk: Work) -> tuple[float, float]:
    """Phase B at the close of ``u``: limits at their time-to-live send what remains as a market order (taker).

    Within the capacity phase A left; fills in ``qb``/``pb``/``fb``; ``px`` is reduced by them.
    Returns (cash, slippage).
    """
    mk, scale, ttl = inp.mk, inp.rules[R_SCALE], inp.ip[I_TTL]
    ag = st.age[b]
    px, q, qa, qb = wk.px, wk.q, wk.qa, wk.qb
    for i in range(q.shape[0]):
        ok = mk[M_OK, u, i] != 0.0
        go = (ag[i] + 1 >= ttl) and ok and px[i] > 0.0
        room = _max(mk[M_CAP, u, i] - qa[i], 0.0)
        q[i] = _floor_lot(_min(px[i] if go else 0.0, room), scale[i])
    cash, slip = _market_at(q, mk[M_CLOSE, u], t, u, taker, st.pos[X_UNITS, b], cash, inp, wk, qb, wk.pb, wk.fb)
    for i in range(q.shape[0]):
        if (ag[i] + 1 >= ttl) and mk[M_OK, u, i] != 0.0 and px[i] > 0.0:  # the fallback was sent
            room = _max(mk[M_CAP, u, i] - qa[i], 0.0)
            _shortfall(i, px[i], q[i], qb[i], room, mk[M_CAP, u, i], wk)
        px[i] = _snap_lot(px[i] - qb[i], scale[i])
    return cash, slip


@njit(**_INLINE)
def expire_orders(b: int, u: int, inp: Inputs, st: State, wk: Work) -> None:
    """After the limit phases: orders at their time-to-live leave the book (with shortfall records), the rest age."""
    mk, ttl, fallback = inp.mk, inp.ip[I_TTL], inp.ip[I_FALLBACK_MARKET] != 0
    pend, ppx, ag = st.pos[X_PEND, b], st.pos[X_PEND_PX, b], st.age[b]
    qty, px, buy, rej, short = wk.qty, wk.px, wk.buy, wk.rej, wk.short
    for i in range(qty.shape[0]):
        expire = ag[i] + 1 >= ttl
        keep = (not expire) and px[i] > 0.0
        if expire and qty[i] > 0.0 and mk[M_OK, u, i] != 0.0 and px[i] > 0.0 and not fallback:
            hit = mk[M_LOW, u, i] < ppx[i] if buy[i] else mk[M_HIGH, u, i] > ppx[i]
            if hit:
                c = mk[M_CAP, u, i]
                _shortfall(i, qty[i], wk.q[i], wk.qa[i], c, c, wk)
            else:
                rej[i] = LIMIT_EXPIRED
                short[i] = px[i]
        if expire and mk[M_OK, u, i] == 0.0 and qty[i] > 0.0:
            rej[i] = NO_BAR
            short[i] = qty[i]
        pend[i] = (1.0 if buy[i] else -1.0) * px[i] if keep else 0.0
        ag[i] = ag[i] + 1 if keep else 0


@njit(**_INLINE)
def close_market_orders(b: int, u: int, inp: Inputs, st: State, wk: Work) -> None:
    """Market mode: every order leaves the book after its bar (no bar: a ``no_bar`` record)."""
    mk, pend, qty = inp.mk, st.pos[X_PEND, b], wk.qty
    for i in range(qty.shape[0]):
        if mk[M_OK, u, i] == 0.0 and qty[i] > 0.0:
            wk.rej[i] = NO_BAR
            wk.short[i] = qty[i]
        pend[i] = 0.0


@njit(**_INLINE)
def record_fills(b: int, q: np.ndarray, price: np.ndarray, fee: np.ndarray, maker: int, nf: int, out: Outputs,
                 wk: Work) -> tuple[float, float, int, bool]:
    """One fill phase's fees and traded notional (pairwise sums), its fill records appended at ``nf``.

    Returns ``(fees, traded, nf, filled)``; the caller adds the phases in their order
    (urgent market fills at the open, limits, fallbacks at the close).
    """
    n, s1, buy = q.shape[0], wk.s1, wk.buy
    fees = _pwsum(fee, n, wk.stk)
    for i in range(n):
        s1[i] = q[i] * price[i]
    traded = _pwsum(s1, n, wk.stk)
    filled = False
    for i in range(n):
        filled = filled or q[i] > 0.0
        if q[i] != 0.0:
            out.fc[b, nf] = (i * 2 + (1 if buy[i] else 0)) * 2 + maker
            out.fv[b, nf, V_QTY], out.fv[b, nf, V_PRICE], out.fv[b, nf, V_FEE] = q[i], price[i], fee[i]
            nf += 1
    return fees, traded, nf, filled


@njit(**_INLINE)
def record_shortfalls(b: int, out: Outputs, wk: Work) -> int:
    """Row ``b``'s shortfall records (each asset's first reason, then a cash cut); returns their count."""
    nr = 0
    for i in range(wk.rej.shape[0]):
        if wk.rej[i] != 0:
            out.rc[b, nr] = i * REASON_SLOTS + wk.rej[i]
            out.rq[b, nr] = wk.short[i]
            nr += 1
        if wk.cash_short[i] > 0.0:
            out.rc[b, nr] = i * REASON_SLOTS + INSUFFICIENT_CASH
            out.rq[b, nr] = wk.cash_short[i]
            nr += 1
    return nr


@njit(**_INLINE)
def mark(b: int, u: int, cash: float, fees_paid: float, slip: float, traded: float, filled: bool, inp: Inputs,
         st: State, wk: Work) -> float:
    """Mark at the close of ``u``: equity = cash + Σ units × mark; totals, the volume window, t + 1. Returns equity."""
    fst, ist, units, s1 = st.fst, st.ist, st.pos[X_UNITS, b], wk.s1
    n = units.shape[0]
    for i in range(n):
        s1[i] = units[i] * inp.mk[M_MARK, u, i]
    equity = cash + _pwsum(s1, n, wk.stk)
    fst[S_CASH, b] = cash
    fst[S_EQUITY, b] = equity
    fst[S_PEAK, b] = _max(fst[S_PEAK, b], equity)
    if filled:
        ist[J_LAST_TRADE, b] = u
    fst[S_CUM_FEES, b] += fees_paid
    fst[S_CUM_SLIP, b] += slip
    fst[S_CUM_TRADED, b] += traded
    slot = ist[J_STEPS, b] % FEE_WINDOW
    fst[S_VOL30, b] += traded - st.ring[b, slot]
    st.ring[b, slot] = traded
    ist[J_T, b] = u
    ist[J_STEPS, b] = ist[J_STEPS, b] + 1
    return equity


@njit(**_INLINE)
def step_outputs(b: int, eq_before: float, dd_before: float, fees_paid: float, slip: float, traded: float,
                 hold: bool, nf: int, nr: int, inp: Inputs, st: State, out: Outputs) -> None:
    """Row ``b``'s step outputs (the reward's log is taken by the caller, in numpy) and its refreshed weights."""
    fp, of, oi = inp.fp, out.of, out.oi
    equity, peak, cash = st.fst[S_EQUITY, b], st.fst[S_PEAK, b], st.fst[S_CASH, b]
    dd = 1.0 - equity / peak
    terminated = equity <= 0.0 or (inp.ip[I_HALT_ON] != 0 and dd >= fp[P_HALT])
    of[b, O_EQ_BEFORE] = eq_before
    of[b, O_EQUITY] = equity
    of[b, O_CASH] = cash
    of[b, O_FEES] = fees_paid
    of[b, O_SLIP] = slip
    of[b, O_TRADED] = traded
    of[b, O_TURNOVER] = traded / eq_before if eq_before > 0.0 else 0.0
    of[b, O_DD] = dd
    of[b, O_RATIO] = _max(equity, TINY) / eq_before
    of[b, O_PENALTY] = fp[P_PENALTY] * _max(dd - dd_before, 0.0)
    oi[b, Q_T] = st.ist[J_T, b]
    oi[b, Q_N_FILLS] = nf
    oi[b, Q_N_REJECTED] = nr
    oi[b, Q_TERMINATED] = terminated
    oi[b, Q_TRUNCATED] = st.ist[J_STEPS, b] >= st.ist[J_LENGTH, b] and not terminated
    oi[b, Q_HOLD] = hold
    refresh_row(b, inp.mk, fp, st.fst, st.ist, st.pos, out.w, out.pf)


@njit(**_INLINE)
def execute_row(b: int, hold: bool, usrc: np.ndarray, uoff: int, inp: Inputs, st: State, out: Outputs,
                wk: Work) -> None:
    """One bar of row ``b`` from its target weights ``out.target[b]`` (ignored when ``hold``): all phases.

    Urgencies (execution mode) are ``usrc[uoff:uoff + N]``; see `step_rows` for the rules.
    """
    t = st.ist[J_T, b]
    u = t + 1
    limit = inp.ip[I_LIMIT] != 0
    eq_before = st.fst[S_EQUITY, b]
    dd_before = 1.0 - eq_before / st.fst[S_PEAK, b]
    maker, taker = fee_rates(b, inp, st)
    cash = st.fst[S_CASH, b]
    # --- 1. new orders at the decision price
    n_urg = size_orders(b, hold, usrc, uoff, eq_before, inp, st, out.target[b], wk)
    # --- 2. phase A inside bar t+1: limits traded through (maker) or market at the open (taker)
    slip = 0.0
    if limit:
        if n_urg > 0:
            cash, slip = urgent_phase(b, t, u, taker, cash, inp, st, wk)
        cash = limit_phase(b, u, maker, cash, inp, st, wk)
    else:
        cash, slip = market_phase(b, t, u, taker, cash, inp, st, wk)
    # --- 3. phase B at the close of t+1: expired limits fall back to market (or are cancelled)
    fallback = limit and inp.ip[I_FALLBACK_MARKET] != 0
    if limit:
        if fallback:
            cash, slip_b = fallback_phase(b, t, u, taker, cash, inp, st, wk)
            slip = slip + slip_b
        expire_orders(b, u, inp, st, wk)
    else:
        close_market_orders(b, u, inp, st, wk)
    # --- 4. totals, records and the mark at the close of t+1
    maker_a = 1 if limit else 0
    if n_urg > 0:  # the urgent market fills come first (they traded at the open)
        fees_paid, traded, nf, filled = record_fills(b, wk.qm, wk.pm, wk.fm, 0, 0, out, wk)
        fees_a, traded_a, nf, filled_a = record_fills(b, wk.qa, wk.pa, wk.fa, maker_a, nf, out, wk)
        fees_paid, traded, filled = fees_paid + fees_a, traded + traded_a, filled or filled_a
    else:
        fees_paid, traded, nf, filled = record_fills(b, wk.qa, wk.pa, wk.fa, maker_a, 0, out, wk)
    if fallback:
        fees_b, traded_b, nf, filled_b = record_fills(b, wk.qb, wk.pb, wk.fb, 0, nf, out, wk)
        fees_paid, traded, filled = fees_paid + fees_b, traded + traded_b, filled or filled_b
    nr = record_shortfalls(b, out, wk)
    mark(b, u, cash, fees_paid, slip, traded, filled, inp, st, wk)
    # --- 5. step outputs
    step_outputs(b, eq_before, dd_before, fees_paid, slip, traded, hold, nf, nr, inp, st, out)


@njit(**_INLINE)
def _check_rows(mk: np.ndarray, ist: np.ndarray) -> None:
    for b in range(ist.shape[1]):
        if ist[J_T, b] + 1 >= mk.shape[1] or ist[J_T, b] < 0:
            raise IndexError("step past the last bar of the market: reset the env after truncation")


@njit(**_JIT)
def step_rows(act: np.ndarray, inp: Inputs, st: State, out: Outputs, scr: Scratch) -> None:
    """One bar for every row: actions ``act`` (B, N+1) -> target weights, orders, fills, marks, outputs.

    Execution mode (``ip[I_EXEC]``, limit orders only): ``act`` is (B, 2N+1) and an urgency
    ``act[b, N+1+i] > 0`` makes asset i's new order of this step a market order at the open
    of t+1 (taker, filled before the limits of the other assets, then gone from the book);
    without a new decision (hold) there are no urgent orders. A row with ``J_FORCE_HOLD``
    set holds (the vector env's autoreset step).

    Shortfalls: an order refused at sizing records its wanted quantity; an order that leaves
    the book this step (market orders, expiring limits) records what did not fill, split by
    cause: no bar, limit not traded through (cancel fallback), the participation cap (zero
    volume when the bar traded nothing) and, for buys, the cash scaling of its last fill.
    """
    n = out.w.shape[1]
    wk = work(scr)
    _check_rows(inp.mk, st.ist)
    for b in range(out.w.shape[0]):
        t = st.ist[J_T, b]
        hold = action_row(act[b], inp.mk[M_TRAD, t], out.w[b], out.target[b], wk.s1, wk.s2, wk.stk)
        if st.ist[J_FORCE_HOLD, b] != 0:
            hold = True
            st.ist[J_FORCE_HOLD, b] = 0
        execute_row(b, hold, act[b], n + 1, inp, st, out, wk)


@njit(**_JIT)
def execute_rows(hold: np.ndarray, urgency: np.ndarray, inp: Inputs, st: State, out: Outputs, scr: Scratch) -> None:
    """One bar for every row from target weights already in ``out.target`` (B, N): `execute_row` as in `step_rows`.

    ``hold`` (B,) int64: 1 keeps the resting orders (no new decision); ``urgency`` (B, N) is read
    in execution mode only.
    """
    wk = work(scr)
    _check_rows(inp.mk, st.ist)
    for b in range(out.w.shape[0]):
        execute_row(b, hold[b] != 0, urgency[b], 0, inp, st, out, wk)
