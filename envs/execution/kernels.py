"""Numba kernels of one env step for B accounts: action mapping, orders, fills, ledger, marks.

This is the hot loop of `BatchLedger` written as explicit loops over rows and assets, so a
step costs one compiled call instead of ~100 numpy calls on 12-element arrays. It does the
same float64 operations in the same order as the numpy formulation kept in
`envs.execution.ledger_numpy` (the equivalence test compares them bit for bit):

- element-wise arithmetic is written exactly as the numpy expressions (same association);
- every sum over assets uses `_pwsum`, numpy's pairwise summation order (``ndarray.sum``);
- ``np.where(c, x, y)`` becomes ``x if c else y`` and ``np.minimum``/``np.maximum`` keep
  numpy's NaN propagation (`_min`/`_max`), so NaN inputs behave as before;
- the reward's ``log`` stays in numpy (`BatchCore`): numpy's SIMD log can differ from libm
  in the last bit.

All arrays are preallocated by `BatchLedger`; the layout constants below name their rows.
"""

from __future__ import annotations

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
# fee table ``fees`` (3, K): 30-day volume thresholds, maker rates, taker rates
# float parameters ``fp``
P_MOF, P_K, P_MAXSLIP, P_HALT, P_AGE_SCALE, P_PENALTY, P_VOL0 = range(7)
N_FP = 7
# int parameters ``ip``
# I_EXEC: action_mode "execution": actions are (B, 2N+1), entries N+1.. are per-asset urgencies
I_LIMIT, I_FALLBACK_MARKET, I_TTL, I_HALT_ON, I_EXEC = range(5)
N_IP = 5
# float state ``fst`` (S, B); S_VOL30 is the USD traded in the episode's last FEE_WINDOW steps
# (the pre-episode credit ``fp[P_VOL0]`` is added when the rates are looked up, see `step_rows`)
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

LOT_TOLERANCE = 1e-12  # same as orders.LOT_TOLERANCE
CASH_MARGIN = 1e-10  # same as ledger.CASH_MARGIN
FEE_WINDOW = 720
TINY = 1e-300  # same as rewards.TINY
# same codes as orders.REASONS
LOT_SIZE, ORDERMIN, COSTMIN, INSUFFICIENT_CASH, NO_BAR, PARTICIPATION_CAP, ZERO_VOLUME, LIMIT_EXPIRED = range(1, 9)
REASON_SLOTS = 16  # same as orders.REASON_SLOTS


_JIT = JIT
_INLINE = INLINE

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


@njit(**_JIT)
def _fill(q: np.ndarray, price: np.ndarray, buy: np.ndarray, r: float, units: np.ndarray, cash: float,
          rules: np.ndarray, qout: np.ndarray, fee: np.ndarray, buy_q: np.ndarray,
          s1: np.ndarray, stk: np.ndarray) -> float:
    """Apply fills of ``q`` at ``price``: sells (capped at units) first, then buys within cash.

    ``price`` becomes 0 where nothing was ordered; ``qout``/``fee`` get the filled quantity
    and fee per asset (a buy scaled down for cash fills less than ``q``; one that the scaling
    takes below the pair minimums fills nothing). Returns the new cash.
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
    """Market fills at ``ref_row`` moved against the trader by half-spread + impact: (cash, slippage)."""
    n = q.shape[0]
    if not _any_positive(q):
        return _fill(q, price, buy, r, units, cash, rules, qout, fee, buy_q, s1, stk), 0.0
    for i in range(n):
        rf = ref_row[i] if q[i] > 0.0 else 0.0
        notional = q[i] * rf
        dv = dvol[i]
        traded = dv > 0.0
        impact = k * sigma[i] * np.sqrt(notional / (dv if traded else 1.0))
        if not traded:
            impact = cap
        rt = _min(half[i] + impact, cap)
        sign = 1.0 if buy[i] else -1.0
        price[i] = rf * (1.0 + sign * rt)
        ref[i] = rf
        rate[i] = rt
    cash = _fill(q, price, buy, r, units, cash, rules, qout, fee, buy_q, s1, stk)
    for i in range(n):
        s1[i] = qout[i] * ref[i] * rate[i]
    return cash, _pwsum(s1, n, stk)


@njit(**_INLINE)
def _record_fills(b: int, q: np.ndarray, price: np.ndarray, fee: np.ndarray, buy: np.ndarray, maker: int,
                  nf: int, fc: np.ndarray, fv: np.ndarray, s1: np.ndarray, stk: np.ndarray
                  ) -> tuple[float, float, int, bool]:
    """One fill phase's fees and traded notional (pairwise sums), its fill records appended at ``nf``.

    Returns ``(fees, traded, nf, filled)``; the caller adds the phases in their order
    (urgent market fills at the open, limits, fallbacks at the close).
    """
    n = q.shape[0]
    fees = _pwsum(fee, n, stk)
    for i in range(n):
        s1[i] = q[i] * price[i]
    traded = _pwsum(s1, n, stk)
    filled = False
    for i in range(n):
        filled = filled or q[i] > 0.0
        if q[i] != 0.0:
            fc[b, nf] = (i * 2 + (1 if buy[i] else 0)) * 2 + maker
            fv[b, nf, V_QTY], fv[b, nf, V_PRICE], fv[b, nf, V_FEE] = q[i], price[i], fee[i]
            nf += 1
    return fees, traded, nf, filled


@njit(**_INLINE)
def fee_rates(b: int, fees: np.ndarray, fp: np.ndarray, fst: np.ndarray, ist: np.ndarray) -> tuple[float, float]:
    """Row ``b``'s (maker, taker) rates: the last tier of ``fees`` whose threshold is <= its 30-day volume.

    The volume is the episode's trades of the last FEE_WINDOW steps plus the part of the
    pre-episode credit still inside the window. A flat schedule is a one-row table: tier 0
    at any volume, its rates exactly.
    """
    vol = fst[S_VOL30, b]
    before = FEE_WINDOW - ist[J_STEPS, b]  # hours of the window that lie before the episode
    if before > 0:
        vol = vol + fp[P_VOL0] * before / FEE_WINDOW
    tier = 0
    while tier < fees.shape[1] and not vol < fees[0, tier]:
        tier += 1
    tier = max(tier - 1, 0)
    return fees[1, tier], fees[2, tier]


@njit(**_INLINE)
def _shortfall(i: int, want: float, sent: float, filled: float, room: float, capacity: float, is_buy: bool,
               rej: np.ndarray, short: np.ndarray, cash_short: np.ndarray) -> None:
    """Causes of the unfilled part of ``want`` after a fill attempt of ``sent`` that filled ``filled``.

    ``room`` (the participation capacity left in the bar) below ``want`` cut the order to
    ``sent``: that part is ``participation_cap``, or ``zero_volume`` when the bar's whole
    ``capacity`` is 0 (it traded nothing); a buy that filled less than it sent was scaled
    down for cash (``insufficient_cash``).
    """
    if room < want:
        rej[i] = ZERO_VOLUME if capacity == 0.0 else PARTICIPATION_CAP
        short[i] = want - sent
    if is_buy and sent > filled:
        cash_short[i] = sent - filled


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


@njit(**_JIT)
def step_rows(act: np.ndarray, mk: np.ndarray, rules: np.ndarray, fees: np.ndarray, fp: np.ndarray,
              ip: np.ndarray, fst: np.ndarray, ist: np.ndarray, pos: np.ndarray, age: np.ndarray,
              ring: np.ndarray, w: np.ndarray, target: np.ndarray, of: np.ndarray, oi: np.ndarray,
              fv: np.ndarray, fc: np.ndarray, rc: np.ndarray, rq: np.ndarray, pf: np.ndarray, sc: np.ndarray,
              isc: np.ndarray, stk: np.ndarray) -> None:
    """One bar for every row: actions ``act`` (B, N+1) -> orders, fills, marks and the step outputs.

    ``sc`` (19, N) float64, ``isc`` (3, N) int64 and ``stk`` (4, 64) float64 are scratch space.

    Execution mode (``ip[I_EXEC]``, limit orders only): ``act`` is (B, 2N+1) and an urgency
    ``act[b, N+1+i] > 0`` makes asset i's new order of this step a market order at the open
    of t+1 (taker, filled before the limits of the other assets, then gone from the book);
    without a new decision (hold) there are no urgent orders.

    Shortfalls: an order refused at sizing records its wanted quantity; an order that leaves
    the book this step (market orders, expiring limits) records what did not fill, split by
    cause: no bar, limit not traded through (cancel fallback), the participation cap (zero
    volume when the bar traded nothing) and, for buys, the cash scaling of its last fill.
    """
    n_rows, n = w.shape
    limit = ip[I_LIMIT] != 0
    urgency_on = limit and ip[I_EXEC] != 0  # with market orders every order is urgent anyway
    fallback = limit and ip[I_FALLBACK_MARKET] != 0
    ttl = ip[I_TTL]
    k, cap_slip = fp[P_K], fp[P_MAXSLIP]
    s1, s2, qty, q, px = sc[0], sc[1], sc[2], sc[3], sc[4]
    qa, pa, fa, qb, pb, fb = sc[5], sc[6], sc[7], sc[8], sc[9], sc[10]
    buy_q, ref, rate = sc[11], sc[12], sc[13]
    short, cash_short = sc[14], sc[15]  # unfilled qty of the record in ``rej``; cash-cut qty of a buy
    qm, pm, fm = sc[16], sc[17], sc[18]  # fills of urgent market orders at the open (execution mode)
    buy, rej, urg = isc[0], isc[1], isc[2]  # ``urg`` stays all 0 unless ``urgency_on``
    for b in range(n_rows):
        if ist[J_T, b] + 1 >= mk.shape[1] or ist[J_T, b] < 0:
            raise IndexError("step past the last bar of the market: reset the env after truncation")
    for b in range(n_rows):
        t = ist[J_T, b]
        u = t + 1
        units, pend, ppx, ag = pos[X_UNITS, b], pos[X_PEND, b], pos[X_PEND_PX, b], age[b]
        hold = action_row(act[b], mk[M_TRAD, t], w[b], target[b], s1, s2, stk)
        if ist[J_FORCE_HOLD, b] != 0:
            hold = True
            ist[J_FORCE_HOLD, b] = 0
        eq_before = fst[S_EQUITY, b]
        dd_before = 1.0 - eq_before / fst[S_PEAK, b]
        maker, taker = fee_rates(b, fees, fp, fst, ist)
        cash = fst[S_CASH, b]
        # --- 1. new orders at the decision price (orders.size_orders)
        for i in range(n):
            rej[i] = 0
            short[i] = 0.0
            cash_short[i] = 0.0
        n_urg = 0
        if urgency_on:
            for i in range(n):
                urg[i] = 1 if (not hold) and act[b, n + 1 + i] > 0.0 else 0  # NaN compares False: limit
                n_urg += urg[i]
        if not hold:
            mof_eq = fp[P_MOF] * eq_before
            for i in range(n):
                price = mk[M_PRICE, t, i]
                tg = target[b, i]
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
        # --- 2. phase A inside bar t+1: limits traded through (maker) or market at the open (taker)
        for i in range(n):
            buy[i] = 1 if pend[i] > 0.0 else 0
            qty[i] = abs(pend[i])
        slip = 0.0
        if limit:
            if n_urg > 0:  # urgent assets: market orders at the open (taker), before the limits trade
                for i in range(n):
                    q[i] = _floor_lot(_min(qty[i] if (urg[i] != 0 and mk[M_OK, u, i] != 0.0) else 0.0,
                                           mk[M_CAP, u, i]), rules[R_SCALE, i])
                cash, slip = _market(q, buy, mk[M_OPEN, u], mk[M_HALF, t], mk[M_SIGMA, t], mk[M_DVOL, u], k,
                                     cap_slip, taker, units, cash, rules, qm, pm, fm, buy_q, s1, ref, rate, stk)
                for i in range(n):
                    if urg[i] != 0 and qty[i] > 0.0:
                        if mk[M_OK, u, i] != 0.0:
                            c = mk[M_CAP, u, i]
                            _shortfall(i, qty[i], q[i], qm[i], c, c, buy[i] != 0, rej, short, cash_short)
                        else:
                            rej[i] = NO_BAR
                            short[i] = qty[i]
            for i in range(n):
                hit = False
                if mk[M_OK, u, i] != 0.0 and urg[i] == 0:
                    hit = mk[M_LOW, u, i] < ppx[i] if buy[i] else mk[M_HIGH, u, i] > ppx[i]
                q[i] = _floor_lot(_min(qty[i] if hit else 0.0, mk[M_CAP, u, i]), rules[R_SCALE, i])
                pa[i] = ppx[i]
            cash = _fill(q, pa, buy, maker, units, cash, rules, qa, fa, buy_q, s1, stk)
        else:
            for i in range(n):
                q[i] = _floor_lot(_min(qty[i] if mk[M_OK, u, i] != 0.0 else 0.0, mk[M_CAP, u, i]),
                                  rules[R_SCALE, i])
            cash, slip = _market(q, buy, mk[M_OPEN, u], mk[M_HALF, t], mk[M_SIGMA, t], mk[M_DVOL, u], k, cap_slip,
                                 taker, units, cash, rules, qa, pa, fa, buy_q, s1, ref, rate, stk)
            for i in range(n):
                if qty[i] > 0.0 and mk[M_OK, u, i] != 0.0:
                    c = mk[M_CAP, u, i]
                    _shortfall(i, qty[i], q[i], qa[i], c, c, buy[i] != 0, rej, short, cash_short)
        # --- 3. phase B at the close of t+1: expired limits fall back to market (or are cancelled)
        if limit:
            for i in range(n):
                px[i] = 0.0 if urg[i] != 0 else _snap_lot(qty[i] - qa[i], rules[R_SCALE, i])  # remaining
            if fallback:
                for i in range(n):
                    ok = mk[M_OK, u, i] != 0.0
                    go = (ag[i] + 1 >= ttl) and ok and px[i] > 0.0
                    room = _max(mk[M_CAP, u, i] - qa[i], 0.0)
                    q[i] = _floor_lot(_min(px[i] if go else 0.0, room), rules[R_SCALE, i])
                cash, slip_b = _market(q, buy, mk[M_CLOSE, u], mk[M_HALF, t], mk[M_SIGMA, t], mk[M_DVOL, u], k,
                                       cap_slip, taker, units, cash, rules, qb, pb, fb, buy_q, s1, ref, rate, stk)
                slip = slip + slip_b
                for i in range(n):
                    if (ag[i] + 1 >= ttl) and mk[M_OK, u, i] != 0.0 and px[i] > 0.0:  # the fallback was sent
                        room = _max(mk[M_CAP, u, i] - qa[i], 0.0)
                        _shortfall(i, px[i], q[i], qb[i], room, mk[M_CAP, u, i], buy[i] != 0, rej, short,
                                   cash_short)
                    px[i] = _snap_lot(px[i] - qb[i], rules[R_SCALE, i])
            for i in range(n):
                expire = ag[i] + 1 >= ttl
                keep = (not expire) and px[i] > 0.0
                if expire and qty[i] > 0.0 and mk[M_OK, u, i] != 0.0 and px[i] > 0.0 and not fallback:
                    hit = mk[M_LOW, u, i] < ppx[i] if buy[i] else mk[M_HIGH, u, i] > ppx[i]
                    if hit:
                        c = mk[M_CAP, u, i]
                        _shortfall(i, qty[i], q[i], qa[i], c, c, buy[i] != 0, rej, short, cash_short)
                    else:
                        rej[i] = LIMIT_EXPIRED
                        short[i] = px[i]
                if expire and mk[M_OK, u, i] == 0.0 and qty[i] > 0.0:
                    rej[i] = NO_BAR
                    short[i] = qty[i]
                pend[i] = (1.0 if buy[i] else -1.0) * px[i] if keep else 0.0
                ag[i] = ag[i] + 1 if keep else 0
        else:
            for i in range(n):
                if mk[M_OK, u, i] == 0.0 and qty[i] > 0.0:
                    rej[i] = NO_BAR
                    short[i] = qty[i]
                pend[i] = 0.0
        # --- 4. totals, records and the mark at the close of t+1
        maker_a = 1 if limit else 0
        if n_urg > 0:  # the urgent market fills come first (they traded at the open)
            fees_paid, traded, nf, filled = _record_fills(b, qm, pm, fm, buy, 0, 0, fc, fv, s1, stk)
            fees_a, traded_a, nf, filled_a = _record_fills(b, qa, pa, fa, buy, maker_a, nf, fc, fv, s1, stk)
            fees_paid, traded, filled = fees_paid + fees_a, traded + traded_a, filled or filled_a
        else:
            fees_paid, traded, nf, filled = _record_fills(b, qa, pa, fa, buy, maker_a, 0, fc, fv, s1, stk)
        if fallback:
            fees_b, traded_b, nf, filled_b = _record_fills(b, qb, pb, fb, buy, 0, nf, fc, fv, s1, stk)
            fees_paid, traded, filled = fees_paid + fees_b, traded + traded_b, filled or filled_b
        nr = 0
        for i in range(n):
            if rej[i] != 0:
                rc[b, nr] = i * REASON_SLOTS + rej[i]
                rq[b, nr] = short[i]
                nr += 1
            if cash_short[i] > 0.0:
                rc[b, nr] = i * REASON_SLOTS + INSUFFICIENT_CASH
                rq[b, nr] = cash_short[i]
                nr += 1
        for i in range(n):
            s1[i] = units[i] * mk[M_MARK, u, i]
        equity = cash + _pwsum(s1, n, stk)
        peak = _max(fst[S_PEAK, b], equity)
        fst[S_CASH, b] = cash
        fst[S_EQUITY, b] = equity
        fst[S_PEAK, b] = peak
        if filled:
            ist[J_LAST_TRADE, b] = u
        fst[S_CUM_FEES, b] += fees_paid
        fst[S_CUM_SLIP, b] += slip
        fst[S_CUM_TRADED, b] += traded
        slot = ist[J_STEPS, b] % FEE_WINDOW
        fst[S_VOL30, b] += traded - ring[b, slot]
        ring[b, slot] = traded
        ist[J_T, b] = u
        steps = ist[J_STEPS, b] + 1
        ist[J_STEPS, b] = steps
        # --- 5. step outputs (the reward's log is taken by the caller, in numpy)
        dd = 1.0 - equity / peak
        terminated = equity <= 0.0 or (ip[I_HALT_ON] != 0 and dd >= fp[P_HALT])
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
        oi[b, Q_T] = u
        oi[b, Q_N_FILLS] = nf
        oi[b, Q_N_REJECTED] = nr
        oi[b, Q_TERMINATED] = terminated
        oi[b, Q_TRUNCATED] = steps >= ist[J_LENGTH, b] and not terminated
        oi[b, Q_HOLD] = hold
        refresh_row(b, mk, fp, fst, ist, pos, w, pf)
