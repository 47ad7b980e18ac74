"""One hour of execution for one account outside the env: the env's own kernel, callable by paper trading.

``execute_hour(state, target_weights, market, t, config)`` takes an account (`AccountState`:
cash, units, resting orders, the 30-day traded volume), the target weights decided at the
close of bar ``t`` and the market holding bar ``t + 1``, and returns what the env's step
would do with them (`HourResult`): fills, fees, slippage, shortfall records and the
account at the close of ``t + 1``. It runs `kernels.execute_rows`, the same `execute_row`
phases that `kernels.step_rows` runs for the env (only the action -> weights mapping is
left out), so a paper-trading loop trades exactly as the backtest did: stepping an env N
times and threading its account through N calls give the same money, bit for bit.

`Executor` prepares a market once (cost arrays, lot rules, fee table) and executes hour after
hour; `execute_hour` accepts either an `Executor` or a `MarketData` (prepared on each call).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.config import EnvConfig
from envs.data.market import MarketData
from envs.execution import kernels as K
from envs.execution.arrays import build_exec_arrays
from envs.execution.fees import make_fee_model
from envs.execution.ledger import FEE_WINDOW, BatchLedger
from envs.execution.orders import REASONS, lot_rules
from envs.execution.slippage import make_slippage_model

NO_LENGTH = np.iinfo(np.int64).max  # an executor's account never truncates


@dataclass(frozen=True, eq=False)
class AccountState:
    """One account at the close of a decision bar, everything one hour of execution reads and changes."""

    cash: float  # USD
    units: np.ndarray  # (N,) base units held
    pending: np.ndarray  # (N,) signed resting order quantity (+ buy, - sell; 0 = none)
    pending_price: np.ndarray  # (N,) limit price of each resting order
    age: np.ndarray  # (N,) int: bars each resting order has rested
    equity: float  # cash + units @ close of the decision bar
    peak_equity: float  # high-water mark of equity
    volume_30d: float  # USD traded in the last FEE_WINDOW hours (running sum of ``traded_window``)
    traded_window: np.ndarray  # (FEE_WINDOW,) USD traded in each hour, ring indexed by ``hours % FEE_WINDOW``
    hours: int  # hours executed since the account started (expires ``EnvConfig.fee_volume_30d``)
    last_trade: int  # bar of the last fill

    @classmethod
    def initial(cls, config: EnvConfig, n_assets: int, t: int) -> AccountState:
        """A fresh account of ``config.initial_cash`` deciding at bar ``t`` (as the env's reset makes it)."""
        cash = float(config.initial_cash)
        return cls(cash, np.zeros(n_assets), np.zeros(n_assets), np.zeros(n_assets), np.zeros(n_assets, np.int64),
                   cash, cash, 0.0, np.zeros(FEE_WINDOW), 0, t - int(np.ceil(config.trade_age_scale_hours)))

    @classmethod
    def from_ledger(cls, ledger: BatchLedger, row: int = 0) -> AccountState:
        """Row ``row`` of a `BatchLedger` (an env's ``core.ledger``), copied."""
        return cls(
            float(ledger.cash[row]), ledger.units[row].copy(), ledger.pend[row].copy(), ledger.pend_px[row].copy(),
            ledger.age[row].copy(), float(ledger.equity[row]), float(ledger.peak[row]), float(ledger.vol30[row]),
            ledger.ring[row].copy(), int(ledger.steps[row]), int(ledger.last_trade[row]),
        )

    def validate(self, n_assets: int) -> None:
        """ValueError naming the field that does not fit an account of ``n_assets`` assets."""
        for name in ("units", "pending", "pending_price", "age"):
            value = getattr(self, name)
            if np.shape(value) != (n_assets,):
                raise ValueError(f"AccountState.{name}: expected shape ({n_assets},), got {np.shape(value)}")
        if np.shape(self.traded_window) != (FEE_WINDOW,):
            raise ValueError(f"AccountState.traded_window: expected shape ({FEE_WINDOW},), "
                             f"got {np.shape(self.traded_window)}")
        for name in ("cash", "equity", "peak_equity", "volume_30d"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"AccountState.{name}: expected a finite number, got {getattr(self, name)!r}")
        if self.cash < 0 or np.any(np.asarray(self.units) < 0):
            raise ValueError(f"AccountState: cash and units must be >= 0 (long-only), got cash {self.cash!r}, "
                             f"units {np.asarray(self.units).tolist()}")
        if self.hours < 0:
            raise ValueError(f"AccountState.hours: expected >= 0, got {self.hours!r}")
        for name in ("units", "pending", "pending_price", "traded_window"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if not np.all(np.isfinite(value)):
                raise ValueError(f"AccountState.{name}: expected finite numbers, got {value.tolist()}")
        if np.any(np.asarray(self.age) < 0):
            raise ValueError(f"AccountState.age: expected bars >= 0, got {np.asarray(self.age).tolist()}")
        resting = np.asarray(self.pending) != 0
        if np.any(resting & ~(np.asarray(self.pending_price) > 0)):
            raise ValueError("AccountState.pending_price: a resting order needs a limit price > 0, got "
                             f"{np.asarray(self.pending_price).tolist()} "
                             f"for pending {np.asarray(self.pending).tolist()}")
        window = float(np.sum(self.traded_window))
        if np.any(np.asarray(self.traded_window) < 0) or abs(self.volume_30d - window) > 1e-6 * max(1.0, window):
            raise ValueError(f"AccountState.volume_30d: expected the sum of traded_window ({window!r}), "
                             f"got {self.volume_30d!r}")


@dataclass(frozen=True, eq=False)
class HourResult:
    """What one hour did: the account after it and every fill and shortfall."""

    state: AccountState  # at the close of bar t + 1 (the next decision point)
    t: int  # the bar the next decision is made at (t + 1)
    fills: list[tuple[int, str, float, float, float, str]]  # (asset, side, qty, price, fee, maker|taker)
    shortfalls: list[tuple[int, str, float]]  # (asset, reason, unfilled base qty), `orders.REASONS`
    fees: float  # USD paid
    slippage: float  # USD conceded to spread and impact
    traded: float  # USD notional
    equity_before: float
    equity: float


class Executor:
    """The env's execution model prepared for one market and config: one account, one hour per call."""

    def __init__(self, market: MarketData, config: EnvConfig | Mapping[str, Any] | None = None) -> None:
        cfg = EnvConfig.from_mapping(config)
        self.market, self.config, self.n_assets = market, cfg, market.n_assets
        slippage = make_slippage_model(cfg)
        arrays = build_exec_arrays(market, cfg, slippage)
        fees = make_fee_model(cfg.fee_model, cfg.maker_fee, cfg.taker_fee)
        self.ledger = BatchLedger(arrays, lot_rules(market, cfg), fees, cfg, 1, slippage)
        self.ledger.length[0] = NO_LENGTH
        self._hold = np.zeros(1, dtype=np.int64)
        self._target = np.zeros((1, self.n_assets))
        self._urgency = np.zeros((1, self.n_assets))

    def initial_state(self, t: int) -> AccountState:
        return AccountState.initial(self.config, self.n_assets, t)

    def execute_hour(self, state: AccountState, target_weights: np.ndarray | None, t: int,
                     urgency: np.ndarray | None = None) -> HourResult:
        """Orders towards ``target_weights`` (N,) decided at the close of bar ``t``, executed in bar ``t + 1``.

        ``target_weights`` None keeps the resting orders (the env's "hold"). ``urgency`` (N,)
        (``action_mode="execution"`` only): > 0 sends that asset's new order as a market order.
        """
        n, led = self.n_assets, self.ledger
        if not 0 <= int(t) < self.market.n_bars - 1:
            raise ValueError(f"execute_hour: t={t} leaves no bar t+1 in the market ({self.market.n_bars} bars)")
        state.validate(n)
        hold = target_weights is None
        if not hold:
            w = np.asarray(target_weights, dtype=np.float64)
            if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() > 1.0 + 1e-9:
                raise ValueError(f"execute_hour: target_weights must be ({n},) finite, >= 0, summing to <= 1; "
                                 f"got {np.asarray(target_weights).tolist()}")
            self._target[0] = w
        if urgency is not None:
            if self.config.action_mode != "execution":
                raise ValueError("execute_hour: urgency needs action_mode='execution' in the config")
            if np.shape(urgency) != (n,):
                raise ValueError(f"execute_hour: urgency must have shape ({n},), got {np.shape(urgency)}")
            self._urgency[0] = urgency
        else:
            self._urgency[0] = 0.0
        self._load(state, int(t))
        self._hold[0] = hold
        if hold:
            self._target[0] = led.w[0]
        led.execute(self._target, self._hold, self._urgency)
        return self._result()

    # ------------------------------------------------------------ internals
    def _load(self, s: AccountState, t: int) -> None:
        load_account(self.ledger, s, t)

    def _result(self) -> HourResult:
        led = self.ledger
        of, oi = led.of[0], led.oi[0]
        fills = []
        for code, (q, p, f) in zip(led.fc[0, : oi[K.Q_N_FILLS]].tolist(), led.fv[0, : oi[K.Q_N_FILLS]].tolist(),
                                   strict=True):
            asset, buy, maker = code // 4, (code // 2) % 2, code % 2
            fills.append((asset, "buy" if buy else "sell", q, p, f, "maker" if maker else "taker"))
        shortfalls = [(code // K.REASON_SLOTS, REASONS[code % K.REASON_SLOTS], q) for code, q in
                      zip(led.rc[0, : oi[K.Q_N_REJECTED]].tolist(), led.rq[0, : oi[K.Q_N_REJECTED]].tolist(),
                          strict=True)]
        return HourResult(AccountState.from_ledger(led), int(oi[K.Q_T]), fills, shortfalls, float(of[K.O_FEES]),
                          float(of[K.O_SLIP]), float(of[K.O_TRADED]), float(of[K.O_EQ_BEFORE]), float(of[K.O_EQUITY]))


def load_account(led: BatchLedger, s: AccountState, t: int, row: int = 0) -> None:
    """Put account ``s`` deciding at bar ``t`` into row ``row`` of a ledger (an env's or an `Executor`'s).

    Paper trading also loads its account into the decision env's ledger this way, so the
    policy's view, the risk snapshot and the action -> weights mapping see exactly the account
    the backtest's env would hold at bar ``t``.
    """
    led.cash[row], led.equity[row], led.peak[row], led.vol30[row] = s.cash, s.equity, s.peak_equity, s.volume_30d
    led.cum_fees[row] = led.cum_slippage[row] = led.cum_traded[row] = 0.0
    led.t[row], led.steps[row], led.last_trade[row], led.force_hold[row] = t, s.hours, s.last_trade, 0
    led.units[row], led.pend[row], led.pend_px[row], led.age[row] = s.units, s.pending, s.pending_price, s.age
    led.ring[row] = s.traded_window
    led.refresh(np.array([row], dtype=np.int64))  # weights at bar t (what "hold" keeps)


def execute_hour(state: AccountState, target_weights: np.ndarray | None, market: MarketData | Executor, t: int,
                 config: EnvConfig | Mapping[str, Any] | None = None,
                 urgency: np.ndarray | None = None) -> HourResult:
    """One hour of the env's execution for one account; see the module docstring.

    ``market`` is an `Executor` (prepared once: use this in a loop) or a `MarketData` with
    ``config`` (prepared on every call).
    """
    if isinstance(market, Executor):
        if config is not None and EnvConfig.from_mapping(config) != market.config:
            raise ValueError("execute_hour: config differs from the Executor's; prepare a new Executor")
        executor = market
    elif isinstance(market, MarketData):
        executor = Executor(market, config)
    else:
        raise TypeError(f"execute_hour: market must be a MarketData or an Executor, got {type(market).__name__}")
    return executor.execute_hour(state, target_weights, t, urgency)


__all__ = ["AccountState", "Executor", "HourResult", "execute_hour", "load_account"]
