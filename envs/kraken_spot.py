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
from envs.execution.orders import REASON_SLOTS, REASONS
from envs.recorder import EpisodeRecorder
from envs.snapshot import PortfolioSnapshot

_ROW0 = np.array([0])


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
    signals are given, ``signals`` (N × (K+1): the K inputs, NaN as 0, then a 0/1
    ``signals_available`` flag); see `envs.observation`. All float32, bounded.

    ## Rewards

    ``log(E_{t+1} / E_t)`` of equity net of all costs (default); ``differential_sharpe``
    and ``drawdown_penalised`` by config (`envs.rewards`).

    ## Starting State

    All cash (`initial_cash`), no orders, at a bar drawn uniformly (``self.np_random``)
    among those leaving a full episode inside [`start`, `end`] and after the first full
    feature window; `start_mode="fixed"` starts at the first such bar.

    ``reset(options={"start": x})`` starts at decision bar ``x`` instead: a bar index or an
    ISO date/time (the first bar starting at or after it), after the first feature window,
    inside [`start`, `end`] and before the last bar (else ``ValueError``); the episode is
    cut at the range end if fewer than `episode_hours` bars remain. Any other option key
    raises ``ValueError`` naming it. The reset ``info`` has the keys of a step's info (no
    fills or rejections, zero fees, slippage, turnover and drawdown, ``target_weights`` =
    ``weights``), without ``termination_reason``.

    ## Episode End

    - Termination: equity <= 0 (``ruin``) or drawdown >= `halt_drawdown` (``halt_drawdown``).
    - Truncation: `episode_hours` steps (``episode_length``) or the range end (``data_end``).
    ``info["termination_reason"]`` names the cause.

    ## Info

    Every step: ``equity``, ``cash``, ``weights`` (N, after the step), ``target_weights``,
    ``fills`` (dicts: pair, asset, side, qty, price, fee, liquidity maker/taker),
    ``fees``, ``slippage`` (USD), ``turnover`` (traded notional / equity), ``rejected``
    (dicts: pair, asset, reason, qty_unfilled), ``drawdown``, ``t`` and ``timestamp`` of the new bar.

    ``rejected`` records every shortfall between an order and its fills, with the unfilled
    base quantity: orders refused at sizing (``lot_size``, ``ordermin``, ``costmin``, with the
    quantity wanted) and the unfilled part of an order leaving the book, by cause (``no_bar``,
    ``limit_expired``, ``participation_cap``, ``zero_volume``, ``insufficient_cash``; an asset
    can have two records). For every order, ordered = filled + recorded + still resting
    (`envs.execution.ledger`).

    ## Arguments

    ``KrakenSpotEnv(market=None, config=None, signals=None, signal_names=None,
    render_mode=None, **config_overrides)``; ``config`` may be an `EnvConfig` or a
    mapping (Hydra `conf/env/*.yaml`); keyword overrides replace config fields.
    ``render_mode="ansi"`` renders the episode history as text; `history()` returns it
    as a DataFrame.

    ## Version History

    - v0: initial version (spec fees 0.40% maker/taker, limit-first with market fallback).
    - v0, issue 8: the pre-episode ``fee_volume_30d`` expires over 720 steps; every shortfall
      is in ``rejected`` with ``qty_unfilled``; ``reset(options={"start": ...})`` is honoured
      (other keys raise); the reset info has a step's keys; ``spread_source`` selects quoted
      spreads (spread column, then the per-pair table) before a labelled estimator.
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
        # hot-path constants: step() reads these instead of walking attribute chains
        self._ledger = led = self.core.ledger
        self._of0, self._oi0, self._pf0 = led.of[0], led.oi[0], led.pf[0]
        self._w0, self._target0 = led.w[0], led.target[0]
        self._fc0, self._fv0, self._rc0, self._rq0 = led.fc[0], led.fv[0], led.rc[0], led.rq[0]
        self._record = cfg.record_history
        self._window = cfg.window
        self._features = self.core.features
        self._signals = self.core.signals
        self._timestamps = self.market.timestamps.tolist()
        self._fill_labels = {
            (i * 2 + buy) * 2 + maker: (p, a, "buy" if buy else "sell", "maker" if maker else "taker")
            for i, (p, a) in enumerate(zip(self._pairs, self._assets, strict=True))
            for buy in (0, 1)
            for maker in (0, 1)
        }
        self._reject_labels = {
            i * REASON_SLOTS + code: (p, a, REASONS[code])
            for i, (p, a) in enumerate(zip(self._pairs, self._assets, strict=True))
            for code in range(1, len(REASONS))
        }

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
        opts = reset_options(options)
        start = self.core.start_bar(opts["start"]) if "start" in opts else self.core.draw_start(self.np_random)
        self.core.reset_rows(_ROW0, np.array([start]))
        self.recorder.clear()
        self._done = False
        self._started = True
        led = self.core.ledger
        weights = self._w0.copy()  # all cash: zeros
        info = {
            "equity": float(led.equity[0]),
            "cash": float(led.cash[0]),
            "weights": weights,
            "target_weights": weights.copy(),
            "fills": [],
            "fees": 0.0,
            "slippage": 0.0,
            "turnover": 0.0,
            "rejected": [],
            "drawdown": 0.0,
            "t": start,
            "timestamp": self._timestamps[start],
        }
        return self.core.observation_single(), info

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("KrakenSpotEnv: call reset() before step()")
        reward = float(self.core.step(action)[0])
        _, eq, cash, fees, slip, _, turnover, dd, _, _ = self._of0.tolist()
        t, n_fills, n_rej, term, trunc, _ = self._oi0.tolist()
        terminated, truncated = term != 0, trunc != 0
        info = {
            "equity": eq,
            "cash": cash,
            "weights": self._w0.copy(),
            "target_weights": self._target0.copy(),
            "fills": self._fills(n_fills) if n_fills else [],
            "fees": fees,
            "slippage": slip,
            "turnover": turnover,
            "rejected": self._rejected(n_rej) if n_rej else [],
            "drawdown": dd,
            "t": t,
            "timestamp": self._timestamps[t],
        }
        if terminated or truncated:
            info["termination_reason"] = self._reason(terminated)
        if self._record:
            self.recorder.record(
                t, info["timestamp"], eq, cash, info["weights"], info["target_weights"],
                fees, slip, turnover, reward, info["fills"], info["rejected"],
            )
        t0 = t + 1 - self._window
        obs = {"features": self._features[t0 : t + 1].copy(), "portfolio": self._pf0.copy()}
        if self._signals is not None:
            obs["signals"] = self._signals[t].copy()
        return obs, reward, terminated, truncated, info

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

    def _fills(self, count: int) -> list[dict[str, Any]]:
        """Fill dicts of row 0 from the kernel's compact records (codes + qty/price/fee)."""
        labels = self._fill_labels
        return [
            {"pair": pair, "asset": asset, "side": side, "qty": q, "price": p, "fee": f, "liquidity": liq}
            for (pair, asset, side, liq), (q, p, f) in zip(
                [labels[c] for c in self._fc0[:count].tolist()], self._fv0[:count].tolist(), strict=True
            )
        ]

    def _rejected(self, count: int) -> list[dict[str, Any]]:
        """Shortfall dicts of row 0 from the kernel's records (codes + unfilled quantities)."""
        labels = self._reject_labels
        return [
            {"pair": pair, "asset": asset, "reason": reason, "qty_unfilled": q}
            for (pair, asset, reason), q in zip(
                [labels[c] for c in self._rc0[:count].tolist()], self._rq0[:count].tolist(), strict=True
            )
        ]


RESET_OPTIONS = ("start",)


def reset_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``reset(options=...)`` mapping, checked: ValueError naming any key but `RESET_OPTIONS`."""
    opts = dict(options or {})
    unknown = sorted(set(opts) - set(RESET_OPTIONS), key=str)
    if unknown:
        raise ValueError(f"reset: unknown reset options {unknown}; expected a subset of {list(RESET_OPTIONS)}")
    return opts


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


__all__ = ["RESET_OPTIONS", "KrakenSpotEnv", "reset_options", "snapshot_of"]
