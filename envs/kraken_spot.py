"""`KrakenSpotEnv` (`KrakenSpot-v0`): long-only Kraken spot portfolio with exact execution."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium import spaces

from envs.arguments import build_config, resolve_market
from envs.config import EnvConfig
from envs.data.market import MarketData
from envs.errors import ConfigError
from envs.execution.core import BatchCore
from envs.recorder import EpisodeRecorder
from envs.snapshot import PortfolioSnapshot
from envs.spec import KrakenSpotSpec
from envs.step_info import StepLabels, end_reason

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

    Fees come from a fee model chosen by ``fee_model`` (`envs.execution.fees`): ``flat``
    (``maker_fee`` / ``taker_fee``, 0.40% / 0.40% by default), ``kraken_tiers`` (Kraken's
    schedule by 30-day USD volume) or ``kraken_legacy_base`` (0.16% / 0.26%); every model is
    a volume-tier table the execution kernel reads, so a new schedule is one class
    registered with `envs.execution.fees.register_fee_model`. Slippage is a half-spread
    source plus an impact model (`envs.execution.slippage`). The same execution runs for one
    account outside the env with `envs.execution.execute_hour` (paper trading).

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

    **Action mode** (`action_mode`, default ``"weights"``: the space above, unchanged).
    ``action_mode="execution"`` adds a per-asset execution choice for a tactical policy:
    `Box(-1, 1, (2N+1,), float32)`, the first N+1 entries exactly as above (including the
    "keep" action), then one urgency ``u_i`` per asset. ``u_i > 0``: the new order for asset
    i placed at this step is a **market order** (taker at the open of t+1 plus half-spread
    and impact, as with `order_type="market"`; it fills before the limits of the bar, what
    it cannot fill is recorded and it never rests). ``u_i <= 0`` or NaN: the order follows
    `order_type` (limit-first by default). Urgency only concerns orders placed at this
    step: a "keep" action places none, and resting limits keep their rules. With
    `order_type="market"` every order is a market order anyway. `action_to_weights`
    accepts the (N+1,) weights part or the whole action; `weights_to_action` returns the
    (N+1,) weights part (append the urgencies).

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
    ``fills`` (dicts: pair, asset, side, qty, price, fee, liquidity maker/taker; in time
    order: urgent market orders at the open, limits inside the bar, fallbacks at the close),
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
    mapping (Hydra `conf/env/*.yaml`); keyword overrides replace config fields (an
    unknown keyword is a ``TypeError``). ``market`` is a `MarketData` (see
    `envs.data.loaders`, `MarketData.from_frame`), ``None`` for the built-in synthetic
    market, or a loader mapping such as ``{"loader": "kraken_csv", "path": DIR, "start":
    ISO, "end": ISO}`` that keeps ``env.spec`` JSON-serialisable (`envs.arguments`).
    `KrakenSpotVectorEnv` takes the same arguments.

    ## Rendering

    ``render_mode="ansi"``: the episode history as text. ``render_mode="rgb_array"``: an
    (H, W, 3) uint8 image of equity, drawdown and weights of the episode so far, drawn
    only when ``render()`` is called (`envs.render`). Both draw the step history, so
    ``render()`` needs ``record_history=True`` (the default).
    `history()` returns the history as a DataFrame.

    ## Registration

    ``KrakenSpot-v0`` after ``import envs``; ``krakenrl/KrakenSpot-v0`` after ``import
    krakenrl``, or with no import as ``gym.make("krakenrl:krakenrl/KrakenSpot-v0")``
    (see `krakenrl`). Gymnasium's ``max_episode_steps`` wraps the env in ``TimeLimit``,
    outside the env: use ``episode_hours`` for episodes that end with a
    ``termination_reason`` (`risk.RiskWrapper` labels an outer time limit ``time_limit``).

    ## Version History

    - v0: initial version (spec fees 0.40% maker/taker, limit-first with market fallback).
    - v0, issue 8: the pre-episode ``fee_volume_30d`` expires over 720 steps; every shortfall
      is in ``rejected`` with ``qty_unfilled``; ``reset(options={"start": ...})`` is honoured
      (other keys raise); the reset info has a step's keys; ``spread_source`` selects quoted
      spreads (spread column, then the per-pair table) before a labelled estimator.
    - v0, issue 10: optional ``action_mode="execution"`` (a (2N+1,) action: weights, then a
      per-asset urgency choosing a market order over the limit-first rule). The default
      ``action_mode="weights"`` is unchanged (same space, same results bit for bit), so the
      id stays v0.
    - v0, issue 15: fee and slippage models as classes (``fee_model="kraken_legacy_base"``
      added); the kernel split into named phases; ``envs.execution.execute_hour``. Results
      are unchanged bit for bit (golden run), so the id stays v0.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}  # noqa: RUF012 - gymnasium API

    def __init__(
        self,
        market: MarketData | Mapping[str, Any] | None = None,
        config: EnvConfig | Mapping[str, Any] | None = None,
        signals: np.ndarray | None = None,
        signal_names: Sequence[str] | None = None,
        render_mode: str | None = None,
        **config_overrides: Any,
    ) -> None:
        cfg = build_config(config, config_overrides, "KrakenSpotEnv")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            modes = self.metadata["render_modes"]
            raise ConfigError(f"render_mode: expected None or one of {modes}, got {render_mode!r}")
        self.config = cfg
        self.market = resolve_market(market)
        self.core = BatchCore(self.market, cfg, 1, signals, signal_names)
        self.n_assets = self.market.n_assets
        self.action_mode = cfg.action_mode
        self.action_space = spaces.Box(-1.0, 1.0, (self.core.action_width,), np.float32)
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
        self._labels = StepLabels(self._pairs, self._assets)
        self._action_shape = (self.core.action_width,)

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
        try:
            reward = float(self.core.step(action)[0])
        except (ValueError, TypeError):
            check_action(action, self._action_shape, "KrakenSpotEnv.step", self.action_mode)
            raise
        _, eq, cash, fees, slip, _, turnover, dd, _, _ = self._of0.tolist()
        t, n_fills, n_rej, term, trunc, _ = self._oi0.tolist()
        terminated, truncated = term != 0, trunc != 0
        info = {
            "equity": eq,
            "cash": cash,
            "weights": self._w0.copy(),
            "target_weights": self._target0.copy(),
            "fills": self._labels.fills(self._fc0, self._fv0, n_fills) if n_fills else [],
            "fees": fees,
            "slippage": slip,
            "turnover": turnover,
            "rejected": self._labels.rejected(self._rc0, self._rq0, n_rej) if n_rej else [],
            "drawdown": dd,
            "t": t,
            "timestamp": self._timestamps[t],
        }
        if terminated or truncated:
            info["termination_reason"] = end_reason(self.core, 0, terminated)
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

    def render(self) -> str | np.ndarray | None:  # type: ignore[override]
        if self.render_mode is not None and not self._record:
            raise ConfigError(f"render(): render_mode={self.render_mode!r} draws the step history: "
                              "make the env with record_history=True")
        if self.render_mode == "rgb_array":
            from envs.render import episode_image

            return episode_image(self.history(), self._assets, self.config.initial_cash)
        if self.render_mode != "ansi":
            return None
        frame = self.history()
        cols = ["time", "equity", "cash", "fees", "slippage", "turnover", "n_fills"]
        return str(frame[cols].to_string(index=False)) if len(frame) else "no steps yet"

    @property  # type: ignore[override]
    def spec(self) -> KrakenSpotSpec | None:
        """The env's `EnvSpec` (set by ``gym.make``); its ``to_json`` explains in-memory markets."""
        return self.__dict__.get("_spec")

    @spec.setter
    def spec(self, value: Any) -> None:
        self.__dict__["_spec"] = KrakenSpotSpec.of(value)

    # ---------------------------------------------------------- helpers
    def action_to_weights(self, action: np.ndarray) -> np.ndarray:
        """(N,) float64 target weights of ``action`` ((N+1,), or the whole (2N+1,) execution-mode action);
        "keep" actions give the current weights."""
        return self.core.action_to_weights(np.asarray(action, dtype=np.float64)[None, :])[0][0]

    def weights_to_action(self, weights: np.ndarray) -> np.ndarray:
        """(N+1,) float64 action whose target weights are ``weights`` (>= 0, sum <= 1)."""
        return BatchCore.weights_to_action(np.asarray(weights, dtype=np.float64))

    def snapshot(self) -> PortfolioSnapshot:
        return snapshot_of(self.core, 0)

    def history(self) -> pd.DataFrame:
        """Step history of the current (or last) episode as a DataFrame."""
        return self.recorder.frame()


ACTION_LAYOUTS = {
    "weights": "one score per asset, then cash",
    "execution": "one score per asset, then cash, then one urgency per asset (action_mode='execution')",
}


def check_action(action: Any, expected: tuple[int, ...], where: str, mode: str = "weights") -> None:
    """Raise a ValueError naming both shapes if ``action`` is not a numeric array of ``expected`` size.

    A wrong shape is a programming error (a policy built for another universe), not a
    market condition: it fails loudly instead of numpy's "cannot reshape". NaN and inf
    values are not checked here (the env reads them as 0; the risk layer holds them).
    """
    try:
        a = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{where}: action: expected a numeric array of shape {expected} ({ACTION_LAYOUTS[mode]}), "
            f"got a non-numeric {type(action).__name__}"
        ) from None
    if a.size != int(np.prod(expected)):
        raise ValueError(
            f"{where}: action: expected shape {expected} ({ACTION_LAYOUTS[mode]}), "
            f"got shape {a.shape} ({type(action).__name__})"
        )


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


__all__ = ["RESET_OPTIONS", "KrakenSpotEnv", "check_action", "reset_options", "snapshot_of"]
