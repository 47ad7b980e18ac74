"""Kill switch: market-stress and data-integrity triggers, latched until a person reactivates.

Triggers (reason codes), evaluated at each decision over the whole listed universe (market
conditions do not depend on what the account holds):

- ``spread_anomaly``: relative spread of bar t > ``spread_multiple`` x the median of the
  previous ``spread_window`` bars (floored at ``spread_floor``). The market's spread
  column is used when present, else a Corwin-Schultz estimate (trailing
  ``spread_estimate_window`` bars; zero-range bars count as missing). The trigger needs a
  spread that moves bar by bar, so it does not use the env's constant quoted table; its
  firing rate on hourly estimates was measured before zero-range bars became missing
  (about 4 days a year on 2019-2022 Kraken data) and is not re-measured.
- ``volatility_spike``: |log return of bar t| > ``vol_multiple`` x the standard deviation
  of the previous ``vol_window`` returns.
- ``data_integrity``: the asset has a NaN close at t while tradable (blocks it) or held
  (engages the switch), the snapshot
  is not finite or not aligned with the market, a held asset has had no real bar for more
  than ``max_stale_hours`` hours, or |log return| > ``max_price_jump``; or the market's
  ``integrity_ok`` mask (`envs.data.integrity`: cross-exchange discrepancy runs, stale
  runs, unconfirmed spikes) is False at t: that blocks entries in the asset and, when held,
  engages the switch.
- ``exchange_down``: at least ``exchange_down_share`` of the listed pairs (two or more) have
  no bar in the same hour (the backtest's sign of an outage; Kraken 2021-07-22 22:00 ->
  2021-07-23 01:00 had none for all five USD pairs), or reported by paper trading through
  `KillSwitch.report_exchange_down`: backtest and paper trading share the data rule.

Breadth: the spike, spread and bad-price triggers of ONE pair block entries in that pair
(the projection's ``asset_block`` rule); when they fire on at least ``kill_switch_breadth``
of the listed pairs, the switch engages for the account, all cash or invested. A held
pair's NaN close or staleness engages it too (the position cannot be valued).

While engaged no position may grow (exits allowed). The switch never resets itself: only
`KillSwitch.reactivate` (operator and reason, audited) clears it, and it refuses while any
trigger is still active. State round-trips through `to_dict` / `from_dict`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from envs.data.indicators import corwin_schultz_spread, log_returns
from envs.data.market import MarketData
from envs.errors import KrakenRLError
from risk.kernels import F_HELD, F_MARKET
from risk.limits import RiskLimits

log = logging.getLogger(__name__)

TRIGGERS = ("spread_anomaly", "volatility_spike", "data_integrity", "exchange_down")


class ReactivationRefused(KrakenRLError):
    """A reactivation was asked for while a trigger is active, or without operator/reason."""


@dataclass(frozen=True)
class TriggerHit:
    """One trigger firing on one asset (or the whole account when ``asset`` is None)."""

    reason: str  # one of TRIGGERS
    asset: str | None
    value: float  # the measured value (spread, |return| / sigma, hours stale, ...)
    threshold: float
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "asset": self.asset,
            "value": self.value,
            "threshold": self.threshold,
            "detail": self.detail,
        }


class MarketSignals:
    """Per-bar trigger inputs precomputed once per market (causal: row t uses bars <= t)."""

    def __init__(self, market: MarketData, limits: RiskLimits) -> None:
        self.market = market
        close = market.close
        if market.spread is not None:
            spread = market.spread.astype(np.float64)
        else:
            spread = corwin_schultz_spread(market, window=limits.spread_estimate_window)
        prev_median = pd.DataFrame(spread).rolling(limits.spread_window, min_periods=24).median().shift(1)
        self.spread = spread
        self.spread_ref = np.fmax(prev_median.to_numpy(), limits.spread_floor)
        rets = log_returns(close)
        self.abs_ret = np.abs(rets)
        sigma = pd.DataFrame(rets).rolling(limits.vol_window, min_periods=24).std().shift(1)
        self.sigma = sigma.to_numpy()
        # hours since the last real (tradable, not gap-filled) bar, counting bar t itself
        real = market.tradable & ~market.filled & np.isfinite(close)
        self.stale_hours = _hours_since_real(real)
        self.listed = np.isfinite(close)
        fin_r = np.isfinite(self.abs_ret)
        with np.errstate(invalid="ignore"):
            market_hit = (
                (fin_r & (self.abs_ret > limits.max_price_jump))
                | (
                    fin_r
                    & np.isfinite(self.sigma)
                    & (self.sigma > 0)
                    & (self.abs_ret > limits.vol_multiple * self.sigma)
                )
                | (
                    np.isfinite(self.spread)
                    & np.isfinite(self.spread_ref)
                    & (self.spread > limits.spread_multiple * self.spread_ref)
                )
            )
        # the step loop's (T, N) trigger table: F_MARKET where the asset's market trigger
        # fires at t (blocks entries in it), F_HELD where holding it is a data-integrity failure
        # the data-integrity mask of envs.data.integrity (None = not checked): False blocks and, held, engages
        self.integrity_bad = (
            np.zeros(close.shape, dtype=bool) if market.integrity_ok is None else ~market.integrity_ok & self.listed
        )
        # breadth counts the market triggers only: one asset's failed integrity check blocks that
        # asset (and engages the switch when held), it is not evidence of a market-wide event
        n_market_firing = (market_hit & self.listed).sum(axis=1)
        market_hit = market_hit | self.integrity_bad
        self._asset_flag = np.where(self.listed, market_hit, market.tradable)
        self._held_flag = ~self.listed | (self.stale_hours > limits.max_stale_hours) | self.integrity_bad
        self.flags = (self._asset_flag * F_MARKET + self._held_flag * F_HELD).astype(np.int8)
        # market-wide conditions (T,): a share of the listed universe firing, or missing the hour
        n_listed = self.listed.sum(axis=1)
        denom = np.maximum(n_listed, 1)
        self.n_listed = n_listed
        self.n_firing = n_market_firing
        self.n_missing = (self.listed & ~real).sum(axis=1)
        self.market_wide = (self.n_firing > 0) & (self.n_firing / denom >= limits.kill_switch_breadth)
        self.exchange_down = (n_listed >= 2) & (self.n_missing / denom >= limits.exchange_down_share)
        self.engage = self.market_wide | self.exchange_down

    def asset_hits(self, t: int, i: int, limits: RiskLimits) -> list[TriggerHit]:
        """The market triggers of asset ``i`` at bar t (spike, spread, bad price, NaN close)."""
        name = self.market.assets[i]
        if not self.listed[t, i]:
            nan_close = TriggerHit("data_integrity", name, float("nan"), 0.0, "NaN close")
            return [nan_close] if self._asset_flag[t, i] else []
        out: list[TriggerHit] = []
        if self.integrity_bad[t, i]:
            out.append(TriggerHit("data_integrity", name, 0.0, 1.0, "integrity check failed (integrity_ok False)"))
        r = self.abs_ret[t, i]
        if np.isfinite(r) and r > limits.max_price_jump:
            out.append(TriggerHit("data_integrity", name, float(r), limits.max_price_jump, "price jump"))
        sig = self.sigma[t, i]
        if np.isfinite(r) and np.isfinite(sig) and sig > 0 and r > limits.vol_multiple * sig:
            out.append(TriggerHit("volatility_spike", name, float(r / sig), limits.vol_multiple, "|return|/sigma"))
        s, ref = self.spread[t, i], self.spread_ref[t, i]
        if np.isfinite(s) and np.isfinite(ref) and s > limits.spread_multiple * ref:
            out.append(TriggerHit("spread_anomaly", name, float(s / ref), limits.spread_multiple, "spread/median"))
        return out

    def blocked(self, t: int) -> np.ndarray:
        """(N,) bool: assets whose market trigger fires at bar t (no entry into them)."""
        return self._asset_flag[t].copy()

    def hits(self, t: int, held: np.ndarray, limits: RiskLimits) -> list[TriggerHit]:
        """The triggers at bar t that engage the switch for an account holding ``held`` (bool (N,)).

        - a held asset that is not listed (NaN close) or stale for more than ``max_stale_hours``;
        - market-wide stress: market triggers on at least ``kill_switch_breadth`` of the listed
          pairs (every firing pair is reported), whatever the account holds;
        - exchange down: at least ``exchange_down_share`` of the listed pairs (two or more
          listed) have no bar in hour t, the backtest's sign of an outage.
        A single pair's trigger does not engage the switch: it blocks entries in that pair.
        """
        out: list[TriggerHit] = []
        names = self.market.assets
        for i in np.flatnonzero(self._held_flag[t] & held):
            if not self.listed[t, i]:
                out.append(TriggerHit("data_integrity", names[i], float("nan"), 0.0, "held asset has a NaN close"))
            elif self.integrity_bad[t, i]:
                out.append(
                    TriggerHit("data_integrity", names[i], 0.0, 1.0, "held asset fails the integrity check")
                )
            else:
                out.append(
                    TriggerHit(
                        "data_integrity",
                        names[i],
                        float(self.stale_hours[t, i]),
                        float(limits.max_stale_hours),
                        "stale: hours without a real bar",
                    )
                )
        if self.market_wide[t]:
            for i in np.flatnonzero(self._asset_flag[t] & self.listed[t]):
                out += self.asset_hits(t, int(i), limits)
        if self.exchange_down[t]:
            out.append(
                TriggerHit(
                    "exchange_down",
                    None,
                    float(self.n_missing[t] / max(self.n_listed[t], 1)),
                    limits.exchange_down_share,
                    f"{self.n_missing[t]} of {self.n_listed[t]} listed pairs have no bar this hour",
                )
            )
        return out


def _hours_since_real(real: np.ndarray) -> np.ndarray:
    """(T, N) count of consecutive bars up to t without a real bar (0 if bar t is real)."""
    out = np.zeros(real.shape, dtype=np.int64)
    run = np.zeros(real.shape[1], dtype=np.int64)
    for t in range(real.shape[0]):
        run = np.where(real[t], 0, run + 1)
        out[t] = run
    return out


@dataclass
class KillSwitch:
    """Latched kill-switch state for one account (serialisable for paper trading)."""

    engaged: bool = False
    active: list[TriggerHit] = field(default_factory=list)  # triggers at the last evaluation
    engaged_by: list[TriggerHit] = field(default_factory=list)  # triggers of the engagement
    engaged_at: int | None = None  # timestamp of the engagement
    exchange_down: str | None = None  # reason while the exchange is reported down
    audit: list[dict[str, Any]] = field(default_factory=list)

    def update(self, hits: list[TriggerHit], timestamp: int) -> bool:
        """Record this evaluation's triggers; engage (one event) if any. True if newly engaged."""
        if self.exchange_down is not None:
            hits = [*hits, TriggerHit("exchange_down", None, 1.0, 0.0, self.exchange_down)]
        self.active = hits
        if hits and not self.engaged:
            self.engaged = True
            self.engaged_by = list(hits)
            self.engaged_at = int(timestamp)
            reasons = sorted({h.reason for h in hits})
            self.audit.append(
                {
                    "event": "engaged",
                    "timestamp": int(timestamp),
                    "reasons": reasons,
                    "triggers": [h.to_dict() for h in hits],
                }
            )
            log.warning("kill switch engaged at %s: %s", timestamp, reasons)
            return True
        return False

    def report_exchange_down(self, reason: str, timestamp: int | None = None) -> None:
        """Paper trading: the exchange is unreachable or in maintenance; engages now."""
        self.exchange_down = reason or "exchange down"
        self.update(list(self.active), int(timestamp or 0))

    def report_exchange_up(self) -> None:
        """The exchange is back; this clears the condition, not the switch."""
        self.exchange_down = None
        self.active = [h for h in self.active if h.reason != "exchange_down"]

    def reactivate(self, operator: str, reason: str, timestamp: int | None = None) -> None:
        """Manual, audited reactivation; refused while any trigger is still active."""
        if not operator or not reason:
            self.audit.append(
                {
                    "event": "reactivation_refused",
                    "operator": operator,
                    "reason": reason,
                    "timestamp": timestamp,
                    "active": ["missing operator or reason"],
                }
            )
            raise ReactivationRefused(
                f"reactivate: expected a non-empty operator and reason, got {operator!r}, {reason!r}"
            )
        if self.exchange_down is not None or self.active:
            still = sorted({h.reason for h in self.active} | ({"exchange_down"} if self.exchange_down else set()))
            self.audit.append(
                {
                    "event": "reactivation_refused",
                    "operator": operator,
                    "reason": reason,
                    "timestamp": timestamp,
                    "active": still,
                }
            )
            raise ReactivationRefused(f"reactivate: refused, trigger(s) still active: {still}")
        self.audit.append(
            {
                "event": "reactivated",
                "operator": operator,
                "reason": reason,
                "timestamp": timestamp,
                "was_engaged": self.engaged,
            }
        )
        self.engaged = False
        self.engaged_by = []
        self.engaged_at = None

    @property
    def reasons(self) -> list[str]:
        return sorted({h.reason for h in self.engaged_by})

    def to_dict(self) -> dict[str, Any]:
        return {
            "engaged": self.engaged,
            "active": [h.to_dict() for h in self.active],
            "engaged_by": [h.to_dict() for h in self.engaged_by],
            "engaged_at": self.engaged_at,
            "exchange_down": self.exchange_down,
            "audit": [dict(a) for a in self.audit],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KillSwitch:
        return cls(
            engaged=bool(d["engaged"]),
            active=[TriggerHit(**h) for h in d.get("active", [])],
            engaged_by=[TriggerHit(**h) for h in d.get("engaged_by", [])],
            engaged_at=d.get("engaged_at"),
            exchange_down=d.get("exchange_down"),
            audit=[dict(a) for a in d.get("audit", [])],
        )
