"""`BatchLedger`: cash, units and resting orders of B accounts, stepped by one compiled call.

This is the one implementation of the step arithmetic: the single env is B = 1, the
vector env is B = num_envs, so both give bit-identical numbers. The loops live in
`envs.execution.kernels` (numba); `envs.execution.ledger_numpy` is the same arithmetic as
whole-array numpy (the readable specification, compared bit for bit in the tests) and
`envs.execution.reference` re-does it in exact `Decimal`.

One step (decision at the close of bar t, orders inside bar t+1, mark at its close):

1. New target weights (rows not holding) are turned into lot-rounded orders at the
   decision price (`orders.size_orders`); they replace any resting orders.
2. Phase A inside bar t+1: limit orders that the bar trades through fill at their limit
   (maker); in market mode every order fills at the open plus slippage (taker). In
   ``action_mode="execution"`` an urgent asset's new order (urgency > 0) is a market order
   at the open (taker, filled before the limits, never resting); the others follow
   ``order_type``.
3. Phase B at the close of t+1: limit orders that reached their time-to-live fall back
   to a market order at the close plus slippage (taker), or are cancelled.
4. Every fill: sells first (capped at units held), then buys (scaled down together so
   that notional + fee fits the cash; a scaled buy that breaks the pair minimums is
   dropped). Fee = rate × notional, in USD.
5. Mark at the close of t+1: equity = cash + Σ units × close.

Every shortfall between an order and its fills is recorded with a reason
(`orders.REASONS`) and the unfilled base quantity: an order refused at sizing
(``lot_size``, ``ordermin``, ``costmin``: its wanted quantity); and, when an order leaves
the book (a market order after its bar, a limit at its time-to-live), what did not fill,
split by cause: ``no_bar`` (the pair had no bar), ``limit_expired`` (never traded through,
cancel fallback), ``participation_cap`` (the bar's capacity ran out; ``zero_volume`` when
the bar traded nothing) and ``insufficient_cash`` (a buy scaled down for cash). So for every
order: ordered = filled + recorded shortfalls + what still rests. Orders replaced by a new
decision are not shortfalls. Sells never exceed the units held (sized from them).

Fee tiers (``fee_model="kraken_tiers"``) look up the 30-day USD volume before each step's
fills: the notional traded in the episode's last 720 steps (``vol30``, a ring of hourly
amounts) plus what is left of the pre-episode credit ``fee_volume_30d``. That credit is
taken as traded evenly over the 720 hours before the episode's first bar, so at step s
``fee_volume_30d × max(720 − s, 0) / 720`` of it is still inside the window: 1/720 of it
expires each hour and none is left from step 720 on, like any trade.

All state lives in a few preallocated arrays that the kernel updates in place; the
attributes (``cash``, ``units``, ``equity`` ...) are views into them, never rebound.
"""

from __future__ import annotations

import numpy as np

from envs.config import EnvConfig
from envs.execution import kernels as K
from envs.execution.arrays import ExecArrays
from envs.execution.fees import FeeModel, fee_table
from envs.execution.orders import LotRules
from envs.execution.slippage import SlippageModel, make_slippage_model

CASH_MARGIN = K.CASH_MARGIN  # buys may spend at most cash * (1 - CASH_MARGIN): float rounding never overdraws
FEE_WINDOW = K.FEE_WINDOW  # hours in the 30-day fee-volume window


def market_pack(a: ExecArrays) -> np.ndarray:
    """(M, T, N) float64 stack of the execution arrays in the kernels' ``M_*`` row order."""
    rows = [a.price, a.mark, a.open, a.high, a.low, a.close, a.half_spread, a.sigma, a.dollar_volume,
            a.capacity, a.limit_offset, a.tradable, a.exec_ok]
    pack = np.stack([np.asarray(r, dtype=np.float64) for r in rows])
    pack.flags.writeable = False
    return pack


class BatchLedger:
    """State of B independent accounts over one shared market; see the module docstring."""

    def __init__(
        self, arrays: ExecArrays, rules: LotRules, fees: FeeModel, config: EnvConfig, n: int,
        slippage: SlippageModel | None = None,
    ) -> None:
        self.a, self.rules, self.fee_model, self.cfg, self.n = arrays, rules, fees, config, n
        self.slippage = make_slippage_model(config) if slippage is None else slippage
        n_assets = arrays.price.shape[1]
        self.limit = config.order_type == "limit"
        self.fallback_market = config.limit_fallback == "market"
        self.mk = market_pack(arrays)
        self.rule_pack = np.stack([rules.scale, rules.ordermin, rules.costmin]).astype(np.float64)
        self.fee_table = fee_table(fees)  # (3, K) tier table; a flat schedule is one row
        fp = np.zeros(K.N_FP)
        fp[K.P_MOF] = config.min_order_fraction
        fp[K.P_K], fp[K.P_MAXSLIP] = self.slippage.impact.kernel_params()
        fp[K.P_HALT] = np.nan if config.halt_drawdown is None else config.halt_drawdown
        fp[K.P_AGE_SCALE] = config.trade_age_scale_hours
        fp[K.P_PENALTY] = config.drawdown_penalty
        fp[K.P_VOL0] = config.fee_volume_30d
        ip = np.zeros(K.N_IP, dtype=np.int64)
        ip[K.I_LIMIT] = self.limit
        ip[K.I_FALLBACK_MARKET] = self.fallback_market
        ip[K.I_TTL] = config.limit_ttl_bars
        ip[K.I_HALT_ON] = config.halt_drawdown is not None
        ip[K.I_EXEC] = config.action_mode == "execution"
        self.action_width = 2 * n_assets + 1 if ip[K.I_EXEC] else n_assets + 1
        self.fp, self.ip = fp, ip
        # state (views below) and step outputs, all written in place by the kernels
        self.fst = np.zeros((K.N_FST, n))
        self.ist = np.zeros((K.N_IST, n), dtype=np.int64)
        self.pos = np.zeros((3, n, n_assets))
        self.age = np.zeros((n, n_assets), dtype=np.int64)
        self.ring = np.zeros((n, FEE_WINDOW))  # USD traded in each of the last FEE_WINDOW steps
        self.w = np.zeros((n, n_assets))  # weights at the current decision bar
        self.target = np.zeros((n, n_assets))
        self.of = np.zeros((n, K.N_OF))
        self.oi = np.zeros((n, K.N_OI), dtype=np.int64)
        self.fv = np.zeros((n, 2 * n_assets, 3))
        self.fc = np.zeros((n, 2 * n_assets), dtype=np.int64)
        self.rc = np.zeros((n, 2 * n_assets), dtype=np.int64)  # shortfall records: asset * REASON_SLOTS + reason
        self.rq = np.zeros((n, 2 * n_assets))  # their unfilled base quantities
        self.pf = np.zeros((n, n_assets + 3), dtype=np.float32)
        self.scratch = K.Scratch(np.zeros((K.N_SCRATCH, n_assets)), np.zeros((K.N_ISCRATCH, n_assets), dtype=np.int64),
                                 np.zeros((4, 64)))
        self.cash, self.equity, self.peak = self.fst[K.S_CASH], self.fst[K.S_EQUITY], self.fst[K.S_PEAK]
        self.cum_fees, self.cum_slippage = self.fst[K.S_CUM_FEES], self.fst[K.S_CUM_SLIP]
        self.cum_traded, self.vol30 = self.fst[K.S_CUM_TRADED], self.fst[K.S_VOL30]
        self.t, self.steps, self.last_trade = self.ist[K.J_T], self.ist[K.J_STEPS], self.ist[K.J_LAST_TRADE]
        self.length, self.force_hold = self.ist[K.J_LENGTH], self.ist[K.J_FORCE_HOLD]
        self.units, self.pend, self.pend_px = self.pos[K.X_UNITS], self.pos[K.X_PEND], self.pos[K.X_PEND_PX]
        self.cash[:] = self.equity[:] = self.peak[:] = config.initial_cash
        # what `kernels.step_rows` / `kernels.execute_rows` take after the actions (targets): four named packs
        self.kernel_args = (
            K.Inputs(self.mk, self.rule_pack, self.fee_table, fp, ip),
            K.State(self.fst, self.ist, self.pos, self.age, self.ring),
            K.Outputs(self.w, self.target, self.of, self.oi, self.fv, self.fc, self.rc, self.rq, self.pf),
            self.scratch,
        )
        self._no_urgency = np.zeros((n, n_assets))

    # ------------------------------------------------------------------ state
    def reset_rows(self, rows: np.ndarray, starts: np.ndarray) -> None:
        """Fresh accounts at decision bars ``starts`` for the selected rows (mask or indices)."""
        c = self.cfg
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
        self.force_hold[rows] = 0
        self.refresh(np.arange(self.n)[rows])

    def refresh(self, rows: np.ndarray) -> None:
        """Recompute the cached weights and portfolio block of ``rows`` (after a state change)."""
        K.refresh_rows(np.asarray(rows, dtype=np.int64), self.mk, self.fp, self.fst, self.ist, self.pos, self.w,
                       self.pf)

    def weights(self) -> np.ndarray:
        """(B, N) asset weights at the current decision bar (a copy; ``w`` is the live buffer)."""
        return self.w.copy()

    def action_to_weights(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, N+1) float64 actions -> new (B, N) target weights and (B,) "keep" flags.

        Wider rows (execution mode's (B, 2N+1)) work too: only their first N+1 entries are read.
        """
        target = np.empty_like(self.w)
        hold = np.empty(self.n, dtype=np.bool_)
        K.actions_to_weights(actions, self.mk, self.t, self.w, target, hold, self.scratch.sc, self.scratch.stk)
        return target, hold

    # ------------------------------------------------------------------- step
    def step(self, actions: np.ndarray) -> None:
        """Advance every row one bar on (B, N+1) float64 C-contiguous ``actions``; (B, 2N+1) in execution mode.

        Rows with ``force_hold`` set send no new orders (the vector env's autoreset step).
        Results are in ``of``/``oi`` (per-row scalars), ``target``, ``fv``/``fc`` (fills),
        ``rc``/``rq`` (shortfall records), ``w`` and ``pf``; see `envs.execution.kernels` for the layout.
        """
        K.step_rows(actions, *self.kernel_args)

    def execute(self, target: np.ndarray, hold: np.ndarray, urgency: np.ndarray | None = None) -> None:
        """Advance every row one bar from (B, N) target weights (rows with ``hold`` keep their resting orders).

        The same phases as `step` (`kernels.execute_row`) without the action mapping; ``urgency``
        (B, N) is read in execution mode only. Results are where `step` leaves them.
        """
        np.copyto(self.target, target)
        urg = self._no_urgency if urgency is None else np.ascontiguousarray(urgency, dtype=np.float64)
        K.execute_rows(np.ascontiguousarray(hold, dtype=np.int64), urg, *self.kernel_args)
