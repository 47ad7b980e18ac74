"""`EnvConfig`: every knob of the KrakenSpot env, as one frozen, validated dataclass.

`conf/env/default.yaml` maps 1:1 onto these fields (a Hydra-composed config is turned
into an `EnvConfig` with `EnvConfig.from_mapping`). Validation raises `ConfigError`
naming the field and the value ("expected X, got Y").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from envs.config_mapping import MappingConfig
from envs.errors import ConfigError
from envs.execution.fees import fee_model_names

ORDER_TYPES = ("limit", "market")
ACTION_MODES = ("weights", "execution")
OFFSET_UNITS = ("bps", "spread")
FALLBACKS = ("market", "cancel")
REWARDS = ("log_growth", "differential_sharpe", "drawdown_penalised")
START_MODES = ("random", "fixed")
MISSING_PAIR = ("default", "raise")
SPREAD_SOURCES = ("auto", "column", "table", "abdi_ranaldo", "corwin_schultz")  # same as envs.data.spreads


@dataclass(frozen=True)
class EnvConfig(MappingConfig):
    """Configuration of `KrakenSpotEnv`; defaults are the specification's (0.40% fees).

    ``EnvConfig.from_mapping(values)`` (`envs.config_mapping`) builds one from a Hydra node or a
    dict; unknown keys are a ConfigError.
    """

    config_section: ClassVar[str] = "env"

    # --- account and episodes
    initial_cash: float = 10_000.0  # USD
    episode_hours: int = 720  # decisions per episode (30 days)
    start: str | None = None  # ISO date/time (UTC): first bar an episode may start at
    end: str | None = None  # ISO date/time (UTC): last bar an episode may execute in
    start_mode: str = "random"  # random (seeded by reset) | fixed (the first allowed bar)
    halt_drawdown: float | None = None  # terminate when equity drawdown reaches this; None = never
    # --- observation
    window: int = 24  # bars of per-asset features in the observation
    feature_clip: float = 10.0
    signal_clip: float = 10.0
    trade_age_scale_hours: float = 168.0  # "hours since last trade" feature saturates here
    # --- actions and orders
    # weights: Box(N+1) scores -> target weights | execution: Box(2N+1), the same N+1 entries then one
    # urgency per asset (> 0: this step's new order for that asset is a market order; else order_type)
    action_mode: str = "weights"
    order_type: str = "limit"  # limit (limit-first, maker) | market (taker at the next open)
    limit_offset: float = 0.0  # distance of the limit below (buy) / above (sell) the decision close
    limit_offset_unit: str = "bps"  # bps | spread (multiples of the estimated relative spread)
    limit_ttl_bars: int = 1  # bars a limit rests (while the agent holds) before the fallback
    limit_fallback: str = "market"  # market (taker at the close of the last bar) | cancel
    min_order_fraction: float = 1e-6  # weight changes below this fraction of equity are no order
    # --- instrument rules used when the market has no PairInfo for an asset
    missing_pair: str = "default"  # default (the three values below) | raise
    default_lot_decimals: int = 8
    default_ordermin: float = 0.0
    default_costmin: float = 0.5
    # --- fees
    # flat (maker_fee / taker_fee) | kraken_tiers (30-day volume schedule) | kraken_legacy_base (0.16% / 0.26%)
    # | any name registered with `envs.execution.fees.register_fee_model`
    fee_model: str = "flat"
    maker_fee: float = 0.004
    taker_fee: float = 0.004
    # USD volume credited to the account before the episode (tiers). It counts as traded evenly over
    # the 720 hours before the first bar: 1/720 of it leaves the 30-day window each step, none is left
    # after 720 steps (`envs.execution.ledger`)
    fee_volume_30d: float = 0.0
    # --- slippage and liquidity
    # where the bid-ask spread comes from (envs.data.spreads): auto = the market's spread column, else the
    # per-pair quoted table (kraken_spreads.json, >= one tick), else the Abdi-Ranaldo estimate (logged
    # fallback) | column | table | abdi_ranaldo | corwin_schultz. The table's values are recent
    # (2025-2026) quotes applied as constants to all history: spreads of liquid pairs were wider in
    # earlier years, so "table" understates old costs; use an estimator or a column for old periods
    spread_source: str = "auto"
    # minimum relative (full) spread: 1e-6 = 0.01 bp, one 0.10 USD tick of BTC/USD at 100,000 USD. It is
    # below every quoted spread in the table (BTC/USD's measured mean 0.086 bp), so it never hides a
    # quote; it only keeps an estimator's zero (liquid pair, below what hourly bars resolve) above 0
    spread_floor: float = 1e-6
    pair_spread_floor: dict[str, float] = field(default_factory=dict)  # per asset, overrides floor
    spread_window: int = 720  # bars (pairs) per estimate of the abdi_ranaldo / corwin_schultz estimators
    impact_k: float = 0.5  # impact = k * sigma * sqrt(notional / bar dollar volume)
    vol_window: int = 24  # trailing window of the hourly log-return volatility
    participation_cap: float | None = 0.1  # max fill as a fraction of the bar's volume; None = off
    max_slippage: float = 0.05  # cap of half-spread + impact, as a fraction of price
    # --- reward
    reward: str = "log_growth"
    reward_scale: float = 1.0
    dsr_eta: float = 0.01  # EMA rate of the differential Sharpe ratio
    drawdown_penalty: float = 1.0  # weight of the drawdown increase (drawdown_penalised)
    # --- recording
    record_history: bool = True  # keep raw arrays for `env.history()` (cheap; off for benches)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _choice("start_mode", self.start_mode, START_MODES)
        _choice("action_mode", self.action_mode, ACTION_MODES)
        _choice("order_type", self.order_type, ORDER_TYPES)
        _choice("limit_offset_unit", self.limit_offset_unit, OFFSET_UNITS)
        _choice("limit_fallback", self.limit_fallback, FALLBACKS)
        _choice("fee_model", self.fee_model, fee_model_names())
        _choice("reward", self.reward, REWARDS)
        _choice("missing_pair", self.missing_pair, MISSING_PAIR)
        _choice("spread_source", self.spread_source, SPREAD_SOURCES)
        _positive("initial_cash", self.initial_cash)
        _int_at_least("episode_hours", self.episode_hours, 1)
        _int_at_least("window", self.window, 1)
        _int_at_least("limit_ttl_bars", self.limit_ttl_bars, 1)
        _int_at_least("spread_window", self.spread_window, 2)
        _int_at_least("vol_window", self.vol_window, 2)
        _int_at_least("default_lot_decimals", self.default_lot_decimals, 0)
        _positive("feature_clip", self.feature_clip)
        _positive("signal_clip", self.signal_clip)
        _positive("trade_age_scale_hours", self.trade_age_scale_hours)
        _in_range("maker_fee", self.maker_fee, 0.0, 0.1)
        _in_range("taker_fee", self.taker_fee, 0.0, 0.1)
        _in_range("limit_offset", self.limit_offset, 0.0, 1e4)
        _in_range("min_order_fraction", self.min_order_fraction, 0.0, 0.1)
        _in_range("default_ordermin", self.default_ordermin, 0.0, math.inf)
        _in_range("default_costmin", self.default_costmin, 0.0, math.inf)
        _in_range("fee_volume_30d", self.fee_volume_30d, 0.0, math.inf)
        _in_range("spread_floor", self.spread_floor, 0.0, 0.5)
        for asset, floor in self.pair_spread_floor.items():
            _in_range(f"pair_spread_floor[{asset}]", floor, 0.0, 0.5)
        _in_range("impact_k", self.impact_k, 0.0, 100.0)
        _in_range("max_slippage", self.max_slippage, 0.0, 0.5)
        _in_range("reward_scale", self.reward_scale, 0.0, 1e6)
        _in_range("dsr_eta", self.dsr_eta, 1e-6, 1.0)
        _in_range("drawdown_penalty", self.drawdown_penalty, 0.0, 1e6)
        if self.participation_cap is not None:
            _in_range("participation_cap", self.participation_cap, 1e-9, 1.0)
        if self.halt_drawdown is not None:
            _in_range("halt_drawdown", self.halt_drawdown, 1e-9, 1.0)


def _choice(name: str, value: object, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"env.{name}: expected one of {list(options)}, got {value!r}")


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"env.{name}: expected a finite number, got {value!r}")
    return float(value)


def _positive(name: str, value: object) -> None:
    if _number(name, value) <= 0:
        raise ConfigError(f"env.{name}: expected > 0, got {value!r}")


def _in_range(name: str, value: object, lo: float, hi: float) -> None:
    v = _number(name, value)
    if not lo <= v <= hi:
        raise ConfigError(f"env.{name}: expected a value in [{lo}, {hi}], got {value!r}")


def _int_at_least(name: str, value: object, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"env.{name}: expected an integer >= {lo}, got {value!r}")
