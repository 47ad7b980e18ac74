"""Several hours of the risk-wrapped vector env in one compiled call, for callers that read no hourly infos.

Why: after `risk.batch`, one hour of ``RiskVectorWrapper(KrakenSpotVectorEnv)`` costs ~20 us
of compiled work and ~100-200 us of Python/numpy glue (gathering account arrays,
`BatchProjector.project`, the vector env's info). The strategic policy level sends one
action and then K-1 "keep" hours, and reads only the summed reward and the last hour's
scalar infos, so it paid that glue 24 times per agent step. `run_hours_kernel` runs the
same hours in one call: for every hour and account, the action's clip
(`risk.kernels.clip_rows`), its mapping to proposals (`envs.execution.kernels.actions_to_weights`),
the snapshot arrays (`risk.batch.AccountArrays`), the drawdown ladder (`risk.kernels.ladder_rows`),
the projection (`risk.kernels.project_rows`), the executed action
(`BatchCore.weights_to_action`) and the env step (`envs.execution.kernels.step_rows`).
No rule is restated: the loop only calls the existing kernels, in the order the Python
path calls them, on the same buffers; the small glue it restates (the snapshot's
``units * prices / equity``, the cash entry ``max(1 - sum(w), 0)`` with numpy's pairwise
sum) is the same floating-point expression.

Exactness: the kernel stops *before* an hour that the Python path would treat specially,
and the caller runs that hour through `RiskVectorWrapper.step` as before, so audits and
episode ends come from the same code. It stops when an account has non-positive equity,
when `ladder_rows` marks a row slow (halt starting, misaligned snapshot, market-wide
kill-switch condition, exchange reported down, non-finite values), at ladder level 3 (a
halt ends the episode), when `project_rows` asks for the per-row path (triggers, kernel
fallback), and when the env step ends an account's episode (terminated or truncated):
that step is undone (the ledger state it changed is restored from a copy taken before
it) and left to the Python path. The reward's log is taken in numpy afterwards
(`HourRunner.run`), as `BatchCore.step` does (numpy's log can differ from libm in the
last bit), and added in hour order. tests/agents/test_level_vec_hours.py compares whole
runs bit for bit with the hour-by-hour path.

What it skips: ``infos["risk"]`` and the vector env's per-hour info of the hours it runs
(nobody reads them: see `RiskVectorWrapper.run_hours`); the interventions are still
applied, only not described.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.execution import kernels as E
from envs.numba_utils import JIT, compiled_entry, njit
from envs.numba_utils import max_nan as _max
from envs.numba_utils import pwsum as _pwsum
from risk import kernels as K
from risk.batch import BatchProjector


@njit(**JIT)
def run_hours_kernel(first: np.ndarray, keep: np.ndarray, hours: int, env: tuple, market: tuple, risk: tuple,
                     buf: tuple, save: tuple, ratios: np.ndarray) -> int:
    """Up to ``hours`` hours of every account; returns how many ran (see the module docstring).

    ``first`` (B, W): hour 0's env actions (W = N+1, or 2N+1 in execution mode: the
    urgencies pass through); ``keep`` (B, W) zeros: the later hours' actions. ``env``: the
    ledger's (Inputs, State, Outputs, Scratch); ``market``: (mark, tradable, timestamps) of
    `BatchCore.arrays`; ``risk``: the `BatchProjector`'s inputs, its ``held_peak`` (B,) is
    updated per hour run (the ladders' high-water marks); ``buf``: per-hour work arrays;
    ``save``: the copy of the ledger state taken before each env step; ``ratios``
    (hours * B, N_OF): column O_RATIO receives each hour's ``of[:, O_RATIO]``.
    """
    inp, st, out, scr = env
    mark, tradable, timestamps = market
    held_peak, halted, engaged, down, thresholds, market_ts, engage, rebalance, labels, tables, rscr, clip_tmp = risk
    (acts, exe, props, hold, clip_amt, tt, ts, eq, env_peak, units, prices, weights, trad, lab, peak, dd, level,
     sched, slow, pout, codes, amounts, changed) = buf
    fst_s, ist_s, pos_s, age_s, slot_s, w_s, pf_s = save
    fst, ist, pos, ring = st.fst, st.ist, st.pos, st.ring
    n_rows, width = exe.shape
    n = acts.shape[1] - 1
    stk = rscr[4]
    for h in range(hours):
        src = first if h == 0 else keep
        # RiskVectorWrapper.step / _decide_batched: the weights part, clipped; NaN/inf rows held
        for b in range(n_rows):
            for i in range(n + 1):
                acts[b, i] = src[b, i]
        if K.clip_rows(acts, clip_tmp, stk, clip_amt):
            for b in range(n_rows):
                if clip_amt[b] < 0.0:
                    for i in range(n + 1):
                        acts[b, i] = 0.0
        # AccountArrays.of (every equity > 0, or the Python path decides)
        for b in range(n_rows):
            tt[b] = ist[E.J_T, b]
            eq[b] = fst[E.S_EQUITY, b]
            if not eq[b] > 0.0:
                return h
        E.actions_to_weights(acts, inp.mk, tt, out.w, props, hold, scr.sc, scr.stk)
        for b in range(n_rows):
            t = tt[b]
            ts[b] = timestamps[t]
            env_peak[b] = fst[E.S_PEAK, b]
            for i in range(n):
                p = mark[t, i]
                u = pos[E.X_UNITS, b, i]
                prices[b, i] = p
                units[b, i] = u
                weights[b, i] = u * p / eq[b]
                trad[b, i] = tradable[t, i]
            if clip_amt[b] < 0.0:
                for i in range(n):
                    props[b, i] = weights[b, i]
        # BatchProjector.project
        if K.ladder_rows(held_peak, env_peak, eq, halted, down, thresholds, tt, ts, market_ts, engage, rebalance,
                         peak, dd, level, sched, slow):
            return h
        for b in range(n_rows):
            if level[b] == 3:  # a halt ends the episode: the wrapper reports it
                return h
            for i in range(n):
                lab[b, i] = labels[tt[b], i]
        if K.project_rows(props, weights, units, trad, prices, lab, pout, tt, level, engaged, sched, eq, tables, rscr,
                          amounts, changed, codes):
            return h
        # BatchCore.weights_to_action (+ the urgencies, unchanged)
        for b in range(n_rows):
            target = pout[b, 1]
            for i in range(n):
                exe[b, i] = target[i]
            exe[b, n] = _max(1.0 - _pwsum(target, n, stk), 0.0)
            for i in range(n + 1, width):
                exe[b, i] = src[b, i]
        # the step's undo copy: the state, and of the fee ring the one slot per row the step writes
        _copy_state(fst, ist, pos, st.age, out.w, out.pf, fst_s, ist_s, pos_s, age_s, w_s, pf_s)
        for b in range(n_rows):
            slot_s[b] = ring[b, ist[E.J_STEPS, b] % E.FEE_WINDOW]
        E.step_rows(exe, inp, st, out, scr)
        for b in range(n_rows):
            if out.oi[b, E.Q_TERMINATED] != 0 or out.oi[b, E.Q_TRUNCATED] != 0:
                _copy_state(fst_s, ist_s, pos_s, age_s, w_s, pf_s, fst, ist, pos, st.age, out.w, out.pf)
                for r in range(n_rows):  # ist is the step's again: the same slots
                    ring[r, ist[E.J_STEPS, r] % E.FEE_WINDOW] = slot_s[r]
                return h
        for b in range(n_rows):
            held_peak[b] = peak[b]
            ratios[h * n_rows + b, E.O_RATIO] = out.of[b, E.O_RATIO]
    return hours


@njit(**JIT)
def _copy2(src: np.ndarray, dst: np.ndarray) -> None:
    """``dst[:] = src`` for 2-D arrays of one shape, as a loop (no temporary: these kernels run without
    numba's runtime)."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[i, j] = src[i, j]


@njit(**JIT)
def _copy_state(fst: np.ndarray, ist: np.ndarray, pos: np.ndarray, age: np.ndarray, w: np.ndarray, pf: np.ndarray,
                fst_d: np.ndarray, ist_d: np.ndarray, pos_d: np.ndarray, age_d: np.ndarray, w_d: np.ndarray,
                pf_d: np.ndarray) -> None:
    """Copy the ledger state one env step changes (all but the fee ring) into the second set of arrays:
    called one way to save it before a step, the other way to undo the step."""
    _copy2(fst, fst_d)
    _copy2(ist, ist_d)
    for k in range(pos.shape[0]):
        _copy2(pos[k], pos_d[k])
    _copy2(age, age_d)
    _copy2(w, w_d)
    _copy2(pf, pf_d)


@njit(**JIT)
def add_hours(logs: np.ndarray, n_rows: int, live: np.ndarray, total: np.ndarray) -> None:
    """``total[live] += reward`` hour after hour (``logs``: the hours' rewards, hour-major), as the
    caller's hourly loop adds them."""
    for h in range(logs.shape[0] // n_rows):
        for b in range(n_rows):
            if live[b]:
                total[b] = total[b] + logs[h * n_rows + b]


class HourRunner:
    """The buffers of `run_hours_kernel` for one wrapper, its call, and the state it hands back to Python objects."""

    def __init__(self, batch: BatchProjector, core: Any) -> None:
        led = core.ledger
        b, n = led.n, core.n_assets
        width = int(core.action_width)
        self.batch, self.core, self.n_rows = batch, core, b
        self.keep = np.zeros((b, width))
        self.first = np.zeros((b, width))
        self.held_peak = np.zeros(b)
        self.flags = np.zeros((3, b), dtype=bool)  # halted, engaged, exchange down
        self._ratios = np.zeros((0, E.N_OF))
        self.env = led.kernel_args
        arrays = core.arrays
        self.market = (np.ascontiguousarray(arrays.mark, dtype=np.float64),
                       np.ascontiguousarray(arrays.tradable, dtype=np.bool_),
                       np.ascontiguousarray(core.market.timestamps, dtype=np.int64))
        self.risk = (self.held_peak, self.flags[0], self.flags[1], self.flags[2], batch.thresholds, batch.market_ts,
                     batch.engage, batch.rebalance_hours, batch.labels, batch.tables, batch.scratch, batch.clip_tmp)
        f8, i8, bl = np.float64, np.int64, np.bool_
        self.buf = (
            np.zeros((b, n + 1)), np.zeros((b, width)), np.zeros((b, n)), np.zeros(b, dtype=bl), np.zeros(b),
            np.zeros(b, dtype=i8), np.zeros(b, dtype=i8), np.zeros(b), np.zeros(b), np.zeros((b, n)),
            np.zeros((b, n)), np.zeros((b, n)), np.zeros((b, n), dtype=bl), np.zeros((b, n), dtype=i8),
            np.zeros(b), np.zeros(b), np.zeros(b, dtype=i8), np.zeros(b, dtype=bl), np.zeros(b, dtype=bl),
            np.zeros((b, 2, n)), np.zeros(b, dtype=i8), np.zeros((b, K.N_RULES), dtype=f8),
            np.zeros((b, K.N_RULES, n), dtype=bl),
        )
        self.save = (np.zeros_like(led.fst), np.zeros_like(led.ist), np.zeros_like(led.pos), np.zeros_like(led.age),
                     np.zeros(b), np.zeros_like(led.w), np.zeros_like(led.pf))
        self._entry: Any = None
        self._no_rewards = np.zeros((0, b))
        self.rewards = self._no_rewards  # (hours, B) log-growth rewards of the last `run`

    def run(self, first: np.ndarray | None, hours: int, live: np.ndarray | None, total: np.ndarray | None) -> int:
        """Run up to ``hours`` hours (hour 0 sends ``first``, (B, W) env actions, or "keep" if None);
        returns the hours run. Their log-growth rewards are ``rewards`` (hours run, B), and are
        added to ``total`` where ``live`` when both are given."""
        batch = self.batch
        self.held_peak[:], self.flags[:] = batch.account_state()  # in place: the kernel's ``risk`` holds them
        if first is None:
            src = self.keep
        else:
            src = self.first
            src[...] = first
        b = self.n_rows
        if self._ratios.shape[0] < hours * b:
            self._ratios = np.zeros((hours * b, E.N_OF))
        args = (src, self.keep, hours, self.env, self.market, self.risk, self.buf, self.save, self._ratios)
        entry = self._entry
        if entry is None:
            entry = self._entry = compiled_entry(run_hours_kernel, args)
        ran = int(entry(*args))
        self.rewards = self._no_rewards
        if ran == 0:
            return 0
        batch.commit(range(b), self.held_peak.tolist())  # every row was decided without a trigger
        # BatchCore.step's log, in numpy, on a strided column like its ``of[:, O_RATIO]``
        logs = np.log(self._ratios[: ran * b, E.O_RATIO])
        self.rewards = logs.reshape(ran, b)
        if total is not None and live is not None:
            add_hours(logs, b, np.asarray(live, dtype=np.bool_), total)
        return ran


__all__ = ["HourRunner", "add_hours", "run_hours_kernel"]
