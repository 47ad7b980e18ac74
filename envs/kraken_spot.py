"""`KrakenSpotEnv` (`KrakenSpot-v0`): long-only Kraken spot portfolio with exact execution."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium import spaces

from envs.config import EnvConfig
from envs.data.market import MarketData
from envs.execution.core import BatchCore
from envs.execution.ledger import StepOut
from envs.execution.orders import REASONS
from envs.recorder import EpisodeRecorder
from envs.snapshot import PortfolioSnapshot


def default_market() -> MarketData:
    """The built-in synthetic market (12 assets, one year), used when no market is given."""
    from envs.data.synthetic import generate_synthetic_market  # type: ignore[attr-defined]

    return generate_synthetic_market()  # type: ignore[no-any-return]


class KrakenSpotEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """
    ## Description

    A long-only, unleveraged portfolio of N Kraken USD spot pairs plus cash, traded hourly
    with Kraken's instrument rules, maker/taker fees, spread + impact slippage and exact
    cash/units accounting (`envs.execution`).

    ## Timing (contract 1)

    The decision at step t sees bars <= t. Its orders execute inside bar t+1: limit
    orders fill at their limit only if bar t+1 trades through it (maker); market orders
    fill at the open of t+1 plus half-spread and impact (taker); unfilled limits fall back
    to a market order at the close of t+1 (`limit_fallback`, `limit_ttl_bars`). The
    portfolio is marked at the close of t+1, which is the next decision point.

    ## Action Space

    `Box(-1, 1, (N+1,), float32)`: one score per asset, the last entry is cash. Mapping
    (`action_to_weights`), with ``p = max(a, 0)``:

    - if no entry is > 0 (e.g. all zeros): **keep current weights**: no new orders
      (resting limit orders keep working);
    - else target weights ``w_i = p_i / (Σ_tradable p + p_cash) · (1 − h)`` for tradable
      assets, where ``h`` is the current weight of non-tradable assets, which is kept;
      ``(0, …, 0, 1)`` is **all cash**. Non-finite entries count as 0.

    `weights_to_action(w)` inverts it: ``[w, 1 − Σ w]``; `step` accepts float64 actions
    of any value and never casts them to float32.

    ## Observation Space

    `Dict` with ``features`` (window × N × F), ``portfolio`` (N + 3) and, when external
    signals are given, ``signals`` (N × K); see `envs.observation`. All float32, bounded.

    ## Rewards

    ``log(E_{t+1} / E_t)`` of equity net of all costs (default); ``differential_sharpe``
    and ``drawdown_penalised`` by config (`envs.rewards`).

    ## Starting State

    All cash (`initial_cash`), no orders, at a bar drawn uniformly (``self.np_random``)
    among those leaving a full episode inside [`start`, `end`] and after the first full
    feature window; `start_mode="fixed"` starts at the first such bar.

    ## Episode End

    - Termination: equity <= 0 (``ruin``) or drawdown >= `halt_drawdown` (``halt_drawdown``).
    - Truncation: `episode_hours` steps (``episode_length``) or the range end (``data_end``).
    ``info["termination_reason"]`` names the cause.

    ## Info

    Every step: ``equity``, ``cash``, ``weights`` (N, after the step), ``target_weights``,
    ``fills`` (dicts: pair, asset, side, qty, price, fee, liquidity maker/taker),
    ``fees``, ``slippage`` (USD), ``turnover`` (traded notional / equity), ``rejected``
    (dicts: pair, asset, reason), ``drawdown``, ``t`` and ``timestamp`` of the new bar.

    ## Arguments

    ``KrakenSpotEnv(market=None, config=None, signals=None, signal_names=None,
    render_mode=None, **config_overrides)``; ``config`` may be an `EnvConfig` or a
    mapping (Hydra `conf/env/*.yaml`); keyword overrides replace config fields.
    ``render_mode="ansi"`` renders the episode history as text; `history()` returns it
    as a DataFrame.

    ## Version History

    - v0: initial version (spec fees 0.40% maker/taker, limit-first with market fallback).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}  # noqa: RUF012 - gymnasium API

    def __init__(
        self,
        market: MarketData | None = None,
        config: EnvConfig | Mapping[str, Any] | None = None,
        signals: np.ndarray | None = None,
        signal_names: Sequence[str] | None = None,
        render_mode: str | None = None,
        **config_overrides: Any,
    ) -> None:
        cfg = EnvConfig.from_mapping(config)
        if config_overrides:
            cfg = EnvConfig.from_mapping({**_as_dict(cfg), **config_overrides})
        self.config = cfg
        self.market = default_market() if market is None else market
        self.core = BatchCore(self.market, cfg, 1, signals, signal_names)
        self.n_assets = self.market.n_assets
        self.action_space = spaces.Box(-1.0, 1.0, (self.n_assets + 1,), np.float32)
        self.observation_space = self.core.observation_space  # type: ignore[assignment]
        self.render_mode = render_mode
        self.recorder = EpisodeRecorder(self.market.assets)
        self._done = False
        self._started = False
        self._assets = self.market.assets
        self._pairs = self.core.pair_names

    @classmethod
    def from_config(
        cls, config: EnvConfig | Mapping[str, Any], market: MarketData | None = None, **kwargs: Any
    ) -> KrakenSpotEnv:
        return cls(market=market, config=config, **kwargs)

    # ---------------------------------------------------------------- API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        start = self.core.draw_start(self.np_random)
        self.core.reset_rows(np.array([0]), np.array([start]))
        self.recorder.clear()
        self._done = False
        self._started = True
        led = self.core.ledger
        info = {
            "equity": float(led.equity[0]),
            "cash": float(led.cash[0]),
            "weights": np.zeros(self.n_assets),
            "t": start,
            "timestamp": int(self.market.timestamps[start]),
        }
        return self.core.observation_single(), info

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("KrakenSpotEnv: call reset() before step()")
        core = self.core
        target, hold = core.action_to_weights(action)
        out, reward, term, trunc = core.step(target, hold)
        terminated, truncated = bool(term[0]), bool(trunc[0])
        info = self._info(out, target[0])
        if terminated or truncated:
            info["termination_reason"] = self._reason(terminated)
        if self.config.record_history:
            self.recorder.record(
                info["t"], info["timestamp"], info["equity"], info["cash"], info["weights"], info["target_weights"],
                info["fees"], info["slippage"], info["turnover"], float(reward[0]), info["fills"], info["rejected"],
            )
        return core.observation_single(), float(reward[0]), terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        frame = self.history()
        cols = ["time", "equity", "cash", "fees", "slippage", "turnover", "n_fills"]
        return str(frame[cols].to_string(index=False)) if len(frame) else "no steps yet"

    # ---------------------------------------------------------- helpers
    def action_to_weights(self, action: np.ndarray) -> np.ndarray:
        """(N,) float64 target weights of ``action``; "keep" actions give the current weights."""
        return self.core.action_to_weights(np.asarray(action, dtype=np.float64)[None, :])[0][0]

    def weights_to_action(self, weights: np.ndarray) -> np.ndarray:
        """(N+1,) float64 action whose target weights are ``weights`` (>= 0, sum <= 1)."""
        return BatchCore.weights_to_action(np.asarray(weights, dtype=np.float64))

    def snapshot(self) -> PortfolioSnapshot:
        return snapshot_of(self.core, 0)

    def history(self) -> pd.DataFrame:
        """Step history of the current (or last) episode as a DataFrame."""
        return self.recorder.frame()

    def _reason(self, terminated: bool) -> str:
        led = self.core.ledger
        if terminated:
            return "ruin" if led.equity[0] <= 0 else "halt_drawdown"
        return "data_end" if int(led.t[0]) >= self.core.last_bar else "episode_length"

    def _info(self, out: StepOut, target: np.ndarray) -> dict[str, Any]:
        led = self.core.ledger
        eq = float(out.equity[0])
        t = int(led.t[0])
        fills: list[dict[str, Any]] = []
        for ph in out.phases:
            q = ph.qty[0]
            if q.any():
                liq = "maker" if ph.maker else "taker"
                buy, price, fee = out.is_buy[0], ph.price[0], ph.fee[0]
                for i in np.flatnonzero(q):
                    fills.append(
                        {
                            "pair": self._pairs[i],
                            "asset": self._assets[i],
                            "side": "buy" if buy[i] else "sell",
                            "qty": float(q[i]),
                            "price": float(price[i]),
                            "fee": float(fee[i]),
                            "liquidity": liq,
                        }
                    )
        rej = out.reject[0]
        rejected = (
            [{"pair": self._pairs[i], "asset": self._assets[i], "reason": REASONS[rej[i]]} for i in np.flatnonzero(rej)]
            if rej.any()
            else []
        )
        weights = led.weights()[0].copy()
        eb = float(out.equity_before[0])
        return {
            "equity": eq,
            "cash": float(led.cash[0]),
            "weights": weights,
            "target_weights": target,
            "fills": fills,
            "fees": float(out.fees[0]),
            "slippage": float(out.slippage[0]),
            "turnover": float(out.traded[0]) / eb if eb > 0 else 0.0,
            "rejected": rejected,
            "drawdown": 1.0 - eq / float(led.peak[0]),
            "t": t,
            "timestamp": int(self.market.timestamps[t]),
        }


def snapshot_of(core: BatchCore, row: int) -> PortfolioSnapshot:
    """`PortfolioSnapshot` of one row of a `BatchCore` at its current decision bar."""
    led = core.ledger
    t = int(led.t[row])
    eq = float(led.equity[row])
    prices = core.arrays.mark[t].copy()
    units = led.units[row].copy()
    weights = units * prices / eq if eq > 0 else np.zeros_like(units)
    return PortfolioSnapshot(
        t=t,
        timestamp=int(core.market.timestamps[t]),
        cash=float(led.cash[row]),
        units=units,
        prices=prices,
        equity=eq,
        weights=weights,
        peak_equity=float(led.peak[row]),
        tradable=core.arrays.tradable[t].copy(),
    )


def _as_dict(cfg: EnvConfig) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(cfg)


__all__ = ["KrakenSpotEnv", "snapshot_of"]
