"""Baseline strategies as named policy objects, and `run_policy` to roll one through the env.

Every baseline trades through the same KrakenSpot env, fees and risk layer as a learned
policy: `run_policy` requires the env to be wrapped in `risk.RiskWrapper` (outermost), so
the risk layer's caps apply to baselines too. Under any risk profile no asset may exceed
``max_asset_weight`` (hard cap 35 %): "buy and hold BTC" holds at most 35 % BTC, and the
projection trims it when a price rise lifts it above the cap.

A policy has ``bind(env) -> self`` (reads the universe, signal names and market of
``env.unwrapped``; `run_policy` calls it), ``reset()`` and ``act(obs, state) -> action``,
where ``state`` is the step's ``info`` dict (or the reset info) or a
`envs.snapshot.PortfolioSnapshot` (paper trading); only its ``weights`` and ``t`` (the
decision bar) are read. Actions follow the env's convention (`KrakenSpotEnv` docstring):
an ``(N+1,)`` float64 vector, positive entries normalised into target weights, the last
entry cash; ``keep_action`` (all zeros) places no new orders, ``weights_action(w)`` targets
``w`` (rest cash). Decisions use bars ``<= t`` only (contract 1): the decision bar's close,
the causal ATR and the observation's signal block.

Schedules (``every_hours``) count decisions since ``reset()``: the first decision
rebalances, then every ``every_hours``-th.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.data.indicators import atr
from envs.data.market import MarketData
from envs.snapshot import PortfolioSnapshot

HELD = 1e-9  # a weight above this counts as a position


def keep_action(n_assets: int) -> np.ndarray:
    """The env's "keep current weights" action: no new orders."""
    return np.zeros(n_assets + 1)


def weights_action(weights: np.ndarray) -> np.ndarray:
    """Action targeting ``weights`` (>= 0, sum <= 1), the rest in cash: ``[w, 1 - Σw]``."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    total = float(w.sum())
    if total > 1.0:
        w = w / total
    return np.concatenate([w, [max(0.0, 1.0 - float(w.sum()))]])


def decision_state(state: Mapping[str, Any] | PortfolioSnapshot) -> tuple[np.ndarray, int]:
    """``(weights, t)`` at the decision bar from an env ``info`` dict or a `PortfolioSnapshot`."""
    if isinstance(state, PortfolioSnapshot):
        return np.asarray(state.weights, dtype=np.float64), int(state.t)
    if isinstance(state, Mapping) and "weights" in state and "t" in state:
        return np.asarray(state["weights"], dtype=np.float64), int(state["t"])
    raise TypeError(
        "act(obs, state): expected the env's info dict (with 'weights' and 't') or a PortfolioSnapshot, "
        f"got {type(state).__name__}"
    )


class BaselinePolicy:
    """Common plumbing: binding to an env's universe, the decision counter, the schedule."""

    name = "baseline"

    def __init__(self) -> None:
        self._bound = False
        self.n_assets = 0
        self.assets: tuple[str, ...] = ()
        self.signal_names: tuple[str, ...] = ()
        self.market: MarketData | None = None
        self.taker_fee = 0.0
        self.decisions = 0  # act() calls since reset()

    def bind(self, env: Any) -> BaselinePolicy:
        """Read the universe, signal names, market and fee of ``env.unwrapped``; returns self."""
        base = env.unwrapped
        for attr in ("market", "n_assets", "config", "core"):
            if not hasattr(base, attr):
                raise TypeError(f"{self.name}.bind: expected a KrakenSpot env (missing {attr!r}), got {type(base)}")
        self.market = base.market
        self.n_assets = int(base.n_assets)
        self.assets = tuple(base.market.assets)
        self.signal_names = tuple(base.core.signal_names)
        self.taker_fee = float(base.core.ledger.fee_table[2, 0])  # the fee model's base-tier taker rate
        self._bound = True
        self._on_bind()
        return self

    def _on_bind(self) -> None:
        """Subclasses resolve names to indices here."""

    def reset(self) -> None:
        self.decisions = 0

    def act(self, obs: Mapping[str, np.ndarray], state: Mapping[str, Any] | PortfolioSnapshot) -> np.ndarray:
        if not self._bound:
            raise RuntimeError(f"{self.name}: call bind(env) before act() (run_policy does it)")
        weights, t = decision_state(state)
        if weights.shape != (self.n_assets,):
            raise ValueError(f"{self.name}.act: expected {self.n_assets} weights, got shape {weights.shape}")
        action = self._act(obs, weights, t)
        self.decisions += 1
        return action

    def _act(self, obs: Mapping[str, np.ndarray], weights: np.ndarray, t: int) -> np.ndarray:
        raise NotImplementedError

    # ---------------------------------------------------------------- helpers
    def _tradable(self, t: int) -> np.ndarray:
        assert self.market is not None
        return np.asarray(self.market.tradable[t], dtype=bool)

    def _signal_index(self, name: str) -> int:
        if name not in self.signal_names:
            have = [n for n in self.signal_names if n != "signals_available"]
            raise ValueError(
                f"{self.name}: signal {name!r} is not among the env's signal_names {have}; build the env with "
                "signals=... and signal_names=... (predictors.store.load_signals)"
            )
        return self.signal_names.index(name)

    def _signals(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        if "signals" not in obs:
            raise ValueError(f"{self.name}: the observation has no 'signals' block; build the env with signals")
        return np.asarray(obs["signals"], dtype=np.float64)

    def _due(self, every_hours: int) -> bool:
        return self.decisions % every_hours == 0


def _check_every(name: str, every_hours: int) -> int:
    if isinstance(every_hours, bool) or int(every_hours) != every_hours or every_hours < 1:
        raise ValueError(f"{name}: every_hours: expected an integer >= 1, got {every_hours!r}")
    return int(every_hours)


class AllCash(BaselinePolicy):
    """Holds cash only: targets all cash every step (pays no fees, equity stays constant)."""

    name = "all_cash"

    def _act(self, obs: Mapping[str, np.ndarray], weights: np.ndarray, t: int) -> np.ndarray:
        return weights_action(np.zeros(self.n_assets))


class BuyAndHold(BaselinePolicy):
    """Buys ``asset`` with everything the risk layer allows at the first decision, then holds.

    It proposes 100 % ``asset`` until it holds a position (the asset may not be tradable
    at the first bar), then sends "keep" actions; the risk layer caps the position (35 %
    at most) and trims it if a rise lifts it above the cap.
    """

    def __init__(self, asset: str = "BTC") -> None:
        super().__init__()
        self.asset = asset
        self.name = f"buy_and_hold_{asset.lower()}"
        self._index = -1

    def _on_bind(self) -> None:
        if self.asset not in self.assets:
            raise ValueError(f"{self.name}: asset {self.asset!r} is not in the env's universe {list(self.assets)}")
        self._index = self.assets.index(self.asset)

    def _act(self, obs: Mapping[str, np.ndarray], weights: np.ndarray, t: int) -> np.ndarray:
        if weights[self._index] > HELD:
            return keep_action(self.n_assets)
        target = np.zeros(self.n_assets)
        target[self._index] = 1.0
        return weights_action(target)


class EqualWeightBuyAndHold(BaselinePolicy):
    """Equal weights over the assets tradable at the first decision, bought once, then held."""

    name = "equal_weight_buy_and_hold"

    def _act(self, obs: Mapping[str, np.ndarray], weights: np.ndarray, t: int) -> np.ndarray:
        if np.any(weights > HELD):
            return keep_action(self.n_assets)
        return weights_action(equal_weights(self._tradable(t)))


class EqualWeightRebalanced(BaselinePolicy):
    """Equal weights over the tradable assets, re-targeted every ``every_hours`` decisions.

    Between rebalances it sends "keep" actions, so it trades only at rebalances (unless
    the risk layer forces a reduction).
    """

    def __init__(self, every_hours: int = 24) -> None:
        super().__init__()
        self.every_hours = _check_every("EqualWeightRebalanced", every_hours)
        self.name = "equal_weight_daily" if self.every_hours == 24 else f"equal_weight_every_{self.every_hours}h"

    def _act(self, obs: Mapping[str, np.ndarray], weights: np.ndarray, t: int) -> np.ndarray:
        if not self._due(self.every_hours):
            return keep_action(self.n_assets)
        return weights_action(equal_weights(self._tradable(t)))


def equal_weights(mask: np.ndarray) -> np.ndarray:
    """1/k on the k True entries of ``mask`` (all zeros if none)."""
    m = np.asarray(mask, dtype=bool)
    k = int(m.sum())
    return np.where(m, 1.0 / k, 0.0) if k else np.zeros(m.size)


class TopKPredictor(BaselinePolicy):
    """Holds the ``k`` assets with the highest expected-return signal, equal weight 1/k each.

    Every ``every_hours`` decisions it ranks the tradable assets whose signals are
    available (ties: lower index first) by ``signal_name`` from the observation's signal
    block (the meta-learner's ``meta_h24_exp_return`` by default), optionally only those
    above ``min_signal``; fewer than k candidates leave their slots in cash. Target changes
    smaller than ``no_trade_band`` (fraction of equity) are not made: the asset keeps its
    current weight. Between rebalances it sends "keep" actions.

    Args:
        k: number of assets held.
        signal_name: the env signal channel ranked (higher = better).
        every_hours: decisions between rebalances (24 = daily).
        no_trade_band: smallest weight change worth a trade (default 0.01, the risk
            layer's own band without a signal).
        min_signal: if set, only assets whose signal exceeds it are held (None = pure top-k).
    """

    def __init__(
        self,
        k: int = 3,
        signal_name: str = "meta_h24_exp_return",
        every_hours: int = 24,
        no_trade_band: float = 0.01,
        min_signal: float | None = None,
    ) -> None:
        super().__init__()
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"TopKPredictor: k: expected an integer >= 1, got {k!r}")
        if not (math.isfinite(no_trade_band) and 0.0 <= no_trade_band < 1.0):
            raise ValueError(f"TopKPredictor: no_trade_band: expected 0 <= band < 1, got {no_trade_band!r}")
        self.k = int(k)
        self.signal_name = signal_name
        self.every_hours = _check_every("TopKPredictor", every_hours)
        self.no_trade_band = float(no_trade_band)
        self.min_signal = min_signal
        self.name = f"top{self.k}_predictor"
        self._channel = -1
        self._available = -1

    def _on_bind(self) -> None:
        self._channel = self._signal_index(self.signal_name)
        self._available = self._signal_index("signals_available")

    def select(self, signal: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Indices of the top ``k`` candidates by ``signal`` (stable: lower index wins ties)."""
        idx = np.flatnonzero(candidates)
        order = idx[np.argsort(-signal[idx], kind="stable")]
        return order[: self.k]

    def _act(self, obs: Mapping[str, np.ndarray], weights: np.ndarray, t: int) -> np.ndarray:
        if not self._due(self.every_hours):
            return keep_action(self.n_assets)
        sig = self._signals(obs)
        signal = sig[:, self._channel]
        candidates = self._tradable(t) & (sig[:, self._available] > 0.5)
        if self.min_signal is not None:
            candidates &= signal > self.min_signal
        target = np.zeros(self.n_assets)
        target[self.select(signal, candidates)] = 1.0 / self.k
        small = np.abs(target - weights) < self.no_trade_band
        target[small] = weights[small]
        return weights_action(target)


@dataclass
class _Position:
    """RuleStrategy's book-keeping for one asset it entered."""

    entry_t: int  # decision bar of the entry
    entry_price: float  # close of the decision bar
    stop: float
    take: float
    filled: bool = False
    exit_reason: str | None = None


@dataclass(frozen=True)
class RuleEvent:
    """One entry or exit decision of `RuleStrategy` (``t`` is the decision bar)."""

    t: int
    asset: str
    kind: str  # "entry" | "stop_loss" | "take_profit" | "time_limit" | "signal_reversal"
    price: float
    weight: float  # proposed target weight


class RuleStrategy(BaselinePolicy):
    """The specification's rule strategy on the meta-learner's signals.

    **Entry** (asset not held, tradable, signals available at t): ``p_up > p_up_threshold``
    *and* ``exp_return > 2 x taker fee + min_edge`` (the expected return at ``horizon``
    hours must beat the round-trip fee). **Size**: ATR-scaled, ``base_risk_fraction /
    (stop_loss_atr x ATR_t / close_t)``, so hitting the stop loses ``base_risk_fraction``
    of equity (new entries are scaled down together to fit the cash left).
    **Exit** (checked on the decision bar's close, first reason wins): ``stop_loss`` at
    ``close <= entry - stop_loss_atr x ATR_entry``; ``take_profit`` at ``close >= entry +
    take_profit_atr x ATR_entry``; ``time_limit`` after ``max_hold_hours``; ``signal_reversal``
    when the signals are available and ``p_up < exit_p_up`` or ``exp_return < 0``. After an
    exit the asset is not re-entered for ``cooldown_hours``. Held positions are otherwise
    left alone (no re-sizing), and an entry the risk layer did not fill is dropped and
    re-evaluated at the next decision.

    The env has no resting stop orders: a stop is seen at a bar's close and sold inside the
    next bar. The risk layer's cost gate may hold an exit: with an expected return above
    minus the round-trip cost it judges the sale not worth its cost, and an exit stays
    requested until it executes. ``events`` lists every entry and exit decision.

    Defaults: ``p_up_threshold=0.55``; ``min_edge=0`` (the fee alone); ``stop_loss_atr=2``
    (the risk layer's ``atr_stop_multiple``); ``take_profit_atr=4`` (2:1 reward to risk);
    ``max_hold_hours=48`` (twice the 24 h horizon); ``exit_p_up=0.5``;
    ``base_risk_fraction=0.02`` (the specification's 2 %); ``atr_window=14``;
    ``cooldown_hours=24``; ``model="meta"``, ``horizon=24``.
    """

    name = "rule_strategy"

    def __init__(
        self,
        p_up_threshold: float = 0.55,
        min_edge: float = 0.0,
        stop_loss_atr: float = 2.0,
        take_profit_atr: float = 4.0,
        max_hold_hours: int = 48,
        exit_p_up: float = 0.5,
        base_risk_fraction: float = 0.02,
        atr_window: int = 14,
        cooldown_hours: int = 24,
        model: str = "meta",
        horizon: int = 24,
        fee: float | None = None,
    ) -> None:
        super().__init__()
        checks = {
            "p_up_threshold": 0.0 <= p_up_threshold <= 1.0,
            "exit_p_up": 0.0 <= exit_p_up <= 1.0,
            "stop_loss_atr": stop_loss_atr > 0,
            "take_profit_atr": take_profit_atr > 0,
            "max_hold_hours": max_hold_hours >= 1,
            "base_risk_fraction": 0.0 < base_risk_fraction <= 1.0,
            "atr_window": atr_window >= 1,
            "cooldown_hours": cooldown_hours >= 0,
            "min_edge": math.isfinite(min_edge),
            "fee": fee is None or 0.0 <= fee < 1.0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"RuleStrategy: out-of-range parameter(s) {bad}")
        self.p_up_threshold = float(p_up_threshold)
        self.min_edge = float(min_edge)
        self.stop_loss_atr = float(stop_loss_atr)
        self.take_profit_atr = float(take_profit_atr)
        self.max_hold_hours = int(max_hold_hours)
        self.exit_p_up = float(exit_p_up)
        self.base_risk_fraction = float(base_risk_fraction)
        self.atr_window = int(atr_window)
        self.cooldown_hours = int(cooldown_hours)
        self.p_up_name = f"{model}_h{int(horizon)}_p_up"
        self.exp_return_name = f"{model}_h{int(horizon)}_exp_return"
        self.fee = fee
        self.events: list[RuleEvent] = []
        self._positions: dict[int, _Position] = {}
        self._last_exit: dict[int, int] = {}
        self._atr = np.zeros((0, 0))
        self._p, self._r, self._available = -1, -1, -1

    @property
    def entry_threshold(self) -> float:
        """Expected return an entry needs: the round-trip fee plus ``min_edge``."""
        fee = self.taker_fee if self.fee is None else self.fee
        return 2.0 * fee + self.min_edge

    def _on_bind(self) -> None:
        assert self.market is not None
        self._p = self._signal_index(self.p_up_name)
        self._r = self._signal_index(self.exp_return_name)
        self._available = self._signal_index("signals_available")
        self._atr = atr(self.market, self.atr_window)  # causal: row t uses bars <= t

    def reset(self) -> None:
        super().reset()
        self.events = []
        self._positions = {}
        self._last_exit = {}

    def _act(self, obs: Mapping[str, np.ndarray], weights: np.ndarray, t: int) -> np.ndarray:
        assert self.market is not None
        sig = self._signals(obs)
        close, tradable = self.market.close[t], self._tradable(t)
        available = sig[:, self._available] > 0.5
        p_up, exp_ret = sig[:, self._p], sig[:, self._r]
        target = weights.copy()
        changed = False
        for i in list(self._positions):  # existing positions: filled? exit?
            pos = self._positions[i]
            if weights[i] <= HELD:
                if pos.filled or pos.exit_reason is not None or t > pos.entry_t:
                    del self._positions[i]  # sold (by us or the risk layer), or the entry never filled
                    if pos.exit_reason is not None:
                        self._last_exit[i] = t
                continue
            pos.filled = True
            if pos.exit_reason is None and tradable[i]:
                pos.exit_reason = self._exit_reason(pos, t, close[i], available[i], p_up[i], exp_ret[i])
                if pos.exit_reason is not None:
                    self.events.append(RuleEvent(t, self.assets[i], pos.exit_reason, float(close[i]), 0.0))
            if pos.exit_reason is not None:
                target[i] = 0.0  # requested until the sale executes
                changed = True
        entries = self._entries(t, close, tradable, available, p_up, exp_ret, weights)
        if entries:
            room = max(0.0, 1.0 - float(target.sum()))
            total = sum(entries.values())
            scale = min(1.0, room / total) if total > 0 else 0.0
            for i, w in entries.items():
                target[i] = w * scale
                a = float(self._atr[t, i])
                self._positions[i] = _Position(t, float(close[i]), float(close[i] - self.stop_loss_atr * a),
                                               float(close[i] + self.take_profit_atr * a))
                self.events.append(RuleEvent(t, self.assets[i], "entry", float(close[i]), float(target[i])))
            changed = True
        return weights_action(target) if changed else keep_action(self.n_assets)

    def _exit_reason(
        self, pos: _Position, t: int, price: float, available: bool, p_up: float, exp_ret: float
    ) -> str | None:
        if price <= pos.stop:
            return "stop_loss"
        if price >= pos.take:
            return "take_profit"
        if t - pos.entry_t >= self.max_hold_hours:
            return "time_limit"
        if available and (p_up < self.exit_p_up or exp_ret < 0.0):
            return "signal_reversal"
        return None

    def _entries(
        self,
        t: int,
        close: np.ndarray,
        tradable: np.ndarray,
        available: np.ndarray,
        p_up: np.ndarray,
        exp_ret: np.ndarray,
        weights: np.ndarray,
    ) -> dict[int, float]:
        """Sizes of the new entries at t (asset index -> ATR-scaled weight)."""
        out: dict[int, float] = {}
        threshold = self.entry_threshold
        for i in range(self.n_assets):
            if i in self._positions or weights[i] > HELD or not (tradable[i] and available[i]):
                continue
            if t - self._last_exit.get(i, -(10**12)) < self.cooldown_hours:
                continue
            if not (p_up[i] > self.p_up_threshold and exp_ret[i] > threshold):
                continue
            rel_atr = float(self._atr[t, i]) / float(close[i])
            if not (math.isfinite(rel_atr) and rel_atr > 0):
                continue  # no ATR yet (warm-up): no size
            out[i] = self.base_risk_fraction / (self.stop_loss_atr * rel_atr)
        return out


# ---------------------------------------------------------------------- rollouts
@dataclass(frozen=True, eq=False)
class EpisodeResult:
    """One episode of a policy: per-step arrays (step k = the k-th env step) and risk counts.

    ``equity`` and ``timestamps`` have one more entry than the per-step arrays: index 0 is
    the reset (decision bar and starting equity); ``timestamps[k + 1]`` (Unix seconds, bar
    start) dates ``returns[k]``, marked at that bar's close.
    """

    name: str
    seed: int
    returns: np.ndarray  # (n,) simple returns E_k / E_{k-1} - 1
    equity: np.ndarray  # (n + 1,)
    timestamps: np.ndarray  # (n + 1,) int64
    fees: np.ndarray  # (n,) quote currency
    slippage: np.ndarray  # (n,) quote currency
    turnover: np.ndarray  # (n,) traded notional / equity
    n_fills: np.ndarray  # (n,) int
    weights: np.ndarray  # (n, N) after each step
    target_weights: np.ndarray  # (n, N) executed targets (after the risk layer)
    actions: np.ndarray  # (n, N + 1) what the policy proposed ((n, 2N + 1) in the env's execution mode)
    fills: list[list[dict[str, Any]]]  # per step, the env's fill records (pair, asset, side, qty, price, fee, ...)
    interventions: dict[str, int]  # risk.intervention_counts: steps each rule changed the target
    intervention_rules: list[tuple[str, ...]] = field(default_factory=list)  # per step, rules that bound
    termination_reason: str | None = None
    assets: tuple[str, ...] = ()

    @property
    def n_steps(self) -> int:
        return int(self.returns.size)

    @property
    def n_trades(self) -> int:
        """Fills over the episode (a partial limit fill and its market fallback are two)."""
        return int(self.n_fills.sum())

    @property
    def trade_steps(self) -> np.ndarray:
        """Indices of the steps with at least one fill."""
        return np.flatnonzero(self.n_fills > 0)

    def summary(self, **kwargs: Any) -> dict[str, Any]:
        """`agents.metrics.summary` of this episode (keyword arguments pass through)."""
        from agents.metrics import summary

        return summary(
            self.returns, self.timestamps[1:], step_turnover=self.turnover, fees=self.fees, slippage=self.slippage,
            n_trades=self.n_trades, weights=self.weights, interventions=self.interventions, **kwargs,
        )


def run_policy(
    env: Any, policy: Any, seed: int = 0, options: dict[str, Any] | None = None, max_steps: int | None = None,
    operator: Any = None,
) -> EpisodeResult:
    """Run one deterministic episode of ``policy`` through ``env`` (a `risk.RiskWrapper`).

    Resets with ``seed`` (and reset ``options``, e.g. ``{"start": ISO}``), binds and resets
    the policy, and steps until the episode ends (or ``max_steps``). Same env, policy and
    seed -> the same result, bit for bit. ``operator(env, info)``, if given, is called after
    every step (`agents.operator.SimulatedOperator`). Raises ValueError if the env is not wrapped in
    `risk.RiskWrapper` as the outermost wrapper: baselines face the same risk layer as
    every policy (contract 4).
    """
    from risk import RiskWrapper, intervention_counts

    if not isinstance(env, RiskWrapper):
        raise ValueError(
            f"run_policy: expected an env wrapped in risk.RiskWrapper (outermost), got {type(env).__name__}"
        )
    obs, info = env.reset(seed=seed, options=options)
    if hasattr(policy, "bind"):
        policy.bind(env)
    policy.reset()
    equity, stamps = [float(info["equity"])], [int(info["timestamp"])]
    fees: list[float] = []
    slip: list[float] = []
    turn: list[float] = []
    fills: list[list[dict[str, Any]]] = []
    w: list[np.ndarray] = []
    tw: list[np.ndarray] = []
    acts: list[np.ndarray] = []
    risk_log: list[dict[str, Any]] = []
    rules: list[tuple[str, ...]] = []
    reason: str | None = None
    steps = 0
    while max_steps is None or steps < max_steps:
        action = np.asarray(policy.act(obs, info), dtype=np.float64)
        acts.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        if operator is not None:
            operator(env, info)
        steps += 1
        equity.append(float(info["equity"]))
        stamps.append(int(info["timestamp"]))
        fees.append(float(info["fees"]))
        slip.append(float(info["slippage"]))
        turn.append(float(info["turnover"]))
        fills.append(list(info["fills"]))
        w.append(np.asarray(info["weights"], dtype=np.float64))
        tw.append(np.asarray(info["target_weights"], dtype=np.float64))
        risk = info.get("risk", {})
        risk_log.append(risk)
        rules.append(tuple(sorted({iv["rule"] for iv in risk.get("interventions", [])})))
        if terminated or truncated:
            reason = info.get("termination_reason")
            break
    eq = np.asarray(equity)
    n = int(getattr(env.unwrapped, "n_assets", 0))
    return EpisodeResult(
        name=str(getattr(policy, "name", type(policy).__name__)),
        seed=int(seed),
        returns=eq[1:] / eq[:-1] - 1.0,
        equity=eq,
        timestamps=np.asarray(stamps, dtype=np.int64),
        fees=np.asarray(fees),
        slippage=np.asarray(slip),
        turnover=np.asarray(turn),
        n_fills=np.asarray([len(f) for f in fills], dtype=np.int64),
        weights=np.asarray(w).reshape(-1, n),
        target_weights=np.asarray(tw).reshape(-1, n),
        actions=np.asarray(acts).reshape(len(acts), -1) if acts else np.zeros((0, n + 1)),
        fills=fills,
        interventions=intervention_counts(risk_log),
        intervention_rules=rules,
        termination_reason=reason,
        assets=tuple(env.unwrapped.market.assets),  # type: ignore[attr-defined]
    )


def default_baselines(
    k: int = 3, every_hours: int = 24, buy_and_hold: str = "BTC", rule: Mapping[str, Any] | None = None
) -> list[BaselinePolicy]:
    """The issue's baseline set; the predictor-based two need an env with meta signals.

    ``rule`` holds `RuleStrategy` keyword overrides (its thresholds are config, conf/evaluate.yaml).
    """
    return [
        AllCash(),
        BuyAndHold(buy_and_hold),
        EqualWeightBuyAndHold(),
        EqualWeightRebalanced(every_hours),
        RuleStrategy(**dict(rule or {})),
        TopKPredictor(k=k, every_hours=every_hours),
    ]


__all__ = [
    "AllCash",
    "BaselinePolicy",
    "BuyAndHold",
    "EpisodeResult",
    "EqualWeightBuyAndHold",
    "EqualWeightRebalanced",
    "RuleEvent",
    "RuleStrategy",
    "TopKPredictor",
    "decision_state",
    "default_baselines",
    "equal_weights",
    "keep_action",
    "run_policy",
    "weights_action",
]
