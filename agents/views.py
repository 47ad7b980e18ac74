"""What each policy level sees: per-asset tables built from the env's own precomputed arrays.

A view is a ``Dict`` observation ``{"assets": (N, F) float32, "portfolio": (P,) float32}``,
built for a batch of accounts from a `envs.execution.core.BatchCore` (the object behind
both `KrakenSpotEnv` and `KrakenSpotVectorEnv`). Training (SB3 vector envs in
`agents.vec`) and evaluation (`agents.policies`, one account through `risk.RiskWrapper`)
call the same functions on the same arrays, so a policy sees at evaluation exactly what it
saw in training. Every input is causal: row ``t`` uses bars ``<= t`` (contract 1).

- **strategic** (slow, acts every K hours): per asset the daily-scale features
  (`slow_panel`: 24 h and 7-day volatility-scaled log returns, log ratio of 24 h to
  30-day volatility), the meta-learner's 24 h ``p_up - 0.5`` and expected return, the
  four regime probabilities, the prediction-available flag, ``tradable`` and the current
  weight (with a residual strategic action, `agents.prior`, one more column: the prior's
  weight); portfolio: cash weight, drawdown.
- **tactical** (hourly executor): per asset the gap to the strategic target, the target,
  the current weight, the env's four hourly features, the 1 h and 4 h meta predictions,
  the available flag and ``tradable``; portfolio: cash weight, drawdown, hours since the
  target was set / K.
- **flat** (single-level ablation, hourly): the union of the hourly and daily features,
  every meta prediction, the regime probabilities, the flags and the current weight;
  portfolio: cash weight, drawdown.

Missing signal channels (an env without predictions) read as 0 with the available flag 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from envs.data.indicators import log_returns, rolling_std
from envs.data.market import MarketData

CLIP = 10.0
SLOW_FEATURES = ("ret_24h_z", "ret_168h_z", "vol_24h_vs_720h")
HOURLY_FEATURES = ("log_return_z", "range_z", "log_volume_z", "close_vs_mean_z")  # env FEATURES[:4]
REGIME_SIGNALS = ("regime_p_trend", "regime_p_range", "regime_p_high_vol", "regime_p_crash")
STRATEGIC_SIGNALS = ("meta_h24_p_up", "meta_h24_exp_return", *REGIME_SIGNALS)
TACTICAL_SIGNALS = ("meta_h1_p_up", "meta_h1_exp_return", "meta_h4_p_up", "meta_h4_exp_return")
FLAT_SIGNALS = (*TACTICAL_SIGNALS, "meta_h24_p_up", "meta_h24_exp_return", *REGIME_SIGNALS)
LEVELS = ("strategic", "tactical", "flat")

_SLOW_CACHE: dict[int, tuple[MarketData, np.ndarray]] = {}


def slow_panel(market: MarketData) -> np.ndarray:
    """(T, N, 3) float32 daily-scale features, causal, clipped to ±CLIP, NaN -> 0 (cached per market)."""
    hit = _SLOW_CACHE.get(id(market))
    if hit is not None and hit[0] is market:
        return hit[1]
    close = market.close
    ret = log_returns(close)
    sig = rolling_std(ret, 720, min_periods=48)
    sig24 = rolling_std(ret, 24, min_periods=12)
    with np.errstate(divide="ignore", invalid="ignore"):
        logc = np.log(close)
        r24 = np.full_like(logc, np.nan)
        r168 = np.full_like(logc, np.nan)
        r24[24:] = logc[24:] - logc[:-24]
        r168[168:] = logc[168:] - logc[:-168]
        cols = [r24 / (sig * np.sqrt(24.0)), r168 / (sig * np.sqrt(168.0)), np.log(sig24 / sig)]
    panel = np.clip(np.nan_to_num(np.stack(cols, axis=-1), nan=0.0, posinf=CLIP, neginf=-CLIP), -CLIP, CLIP)
    out = panel.astype(np.float32)
    out.flags.writeable = False
    _SLOW_CACHE.clear()  # one market at a time: keep memory flat across runs
    _SLOW_CACHE[id(market)] = (market, out)
    return out


def signal_columns(core: Any, names: Sequence[str]) -> tuple[np.ndarray, int]:
    """Channel indices of ``names`` in ``core.signals`` (-1 if absent) and the available-flag index."""
    have = list(getattr(core, "signal_names", ()) or ())
    idx = np.array([have.index(n) if n in have else -1 for n in names], dtype=np.int64)
    flag = have.index("signals_available") if "signals_available" in have else -1
    return idx, flag


def _signals(core: Any, t: np.ndarray, idx: np.ndarray, flag: int) -> np.ndarray:
    """(B, N, len(idx)+1) selected signal channels at bars ``t`` plus the available flag."""
    b, n = t.size, core.market.n_assets
    out = np.zeros((b, n, idx.size + 1), dtype=np.float32)
    sig = core.signals
    if sig is None:
        return out
    rows = sig[t]  # (B, N, K+1)
    for j, k in enumerate(idx.tolist()):
        if k >= 0:
            out[:, :, j] = rows[:, :, k]
    if flag >= 0:
        out[:, :, -1] = rows[:, :, flag]
    return out


def _centre_p_up(block: np.ndarray, names: Sequence[str]) -> None:
    """p_up channels become p_up - 0.5 where a prediction exists (0 = no information either way)."""
    for j, name in enumerate(names):
        if name.endswith("_p_up"):
            block[:, :, j] = np.where(block[:, :, -1] > 0, block[:, :, j] - 0.5, 0.0)


def n_features(level: str, prior: bool = False) -> int:
    """Per-asset feature count of a level's view (``prior``: the strategic view's prior-weight column)."""
    if level == "strategic":
        return len(SLOW_FEATURES) + len(STRATEGIC_SIGNALS) + 1 + 2 + int(prior)
    if level == "tactical":
        return 3 + len(HOURLY_FEATURES) + len(TACTICAL_SIGNALS) + 1 + 1
    if level == "flat":
        return len(HOURLY_FEATURES) + len(SLOW_FEATURES) + len(FLAT_SIGNALS) + 1 + 2
    raise ValueError(f"level: expected one of {LEVELS}, got {level!r}")


def n_portfolio(level: str) -> int:
    return 3 if level == "tactical" else 2


def view_space(level: str, n_assets: int, prior: bool = False) -> spaces.Dict:
    """The observation space of a level's view for ``n_assets`` assets."""
    return spaces.Dict(
        {
            "assets": spaces.Box(-CLIP, CLIP, (n_assets, n_features(level, prior)), np.float32),
            "portfolio": spaces.Box(-CLIP, CLIP, (n_portfolio(level),), np.float32),
        }
    )


class ViewBuilder:
    """Builds one level's view for rows of a `BatchCore` (precomputed panels, no pandas).

    Everything in a view that depends on the bar only (features, signals, ``tradable``) is
    built once, when the builder is made, into a (T, N, F) float32 panel, clipped; a step
    then takes its rows and adds the account's columns (weights, target, gap). The
    values are those of building each view from its parts (clipping and the float32 cast
    are element-wise), at the cost of T x N x F x 4 bytes of memory.
    """

    def __init__(self, level: str, core: Any, prior: np.ndarray | None = None) -> None:
        if level not in LEVELS:
            raise ValueError(f"level: expected one of {LEVELS}, got {level!r}")
        if prior is not None and level != "strategic":
            raise ValueError(f"prior: only the strategic view has a prior-weight column, not {level!r}")
        self.level, self.core = level, core
        self.prior = prior  # (T, N) the residual action's prior weights (`agents.prior`), or None
        self.slow = slow_panel(core.market)
        names = {"strategic": STRATEGIC_SIGNALS, "tactical": TACTICAL_SIGNALS, "flat": FLAT_SIGNALS}[level]
        self.signal_names = names
        self.idx, self.flag = signal_columns(core, names)
        self.tradable = np.asarray(core.market.tradable, dtype=np.float32)
        self.space = view_space(level, core.market.n_assets, prior is not None)
        self.static = self._static_panel()

    def _static_panel(self) -> np.ndarray:
        """(T, N, F_bar) the bar-only columns of the level's per-asset view, clipped, in view order."""
        core = self.core
        t = np.arange(core.market.n_bars)
        sig = _signals(core, t, self.idx, self.flag)
        _centre_p_up(sig, self.signal_names)
        trad = self.tradable[:, :, None]
        if self.level == "strategic":
            parts = [self.slow, sig, trad]
            if self.prior is not None:
                parts.append(np.asarray(self.prior, dtype=np.float32)[:, :, None])
        elif self.level == "flat":
            parts = [core.features[:, :, :4], self.slow, sig, trad]
        else:
            parts = [core.features[:, :, :4], sig, trad]
        panel = np.clip(np.concatenate(parts, axis=2), -CLIP, CLIP).astype(np.float32)
        panel.flags.writeable = False
        return panel

    def build(
        self,
        rows: np.ndarray,
        target: np.ndarray | None = None,
        phase: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """View of ``rows`` at their current decision bar; ``target``/``phase`` only for the tactical level."""
        core = self.core
        led = core.ledger
        t = led.t[rows]
        pf = led.pf[rows]  # (B, N+3): weights, cash weight, drawdown, trade age
        n = core.market.n_assets
        w = pf[:, :n].astype(np.float32)
        static = self.static[t]
        if self.level == "tactical":
            if target is None or phase is None:
                raise ValueError("tactical view: needs the strategic target and the phase")
            tg = target.astype(np.float32)
            own = np.clip(np.stack([tg - w, tg, w], axis=2), -CLIP, CLIP)
            assets = np.concatenate([own, static], axis=2)
            port = np.concatenate([pf[:, n : n + 2], phase.astype(np.float32)[:, None]], axis=1)
        else:
            assets = np.concatenate([static, np.clip(w, -CLIP, CLIP)[:, :, None]], axis=2)
            port = pf[:, n : n + 2]
        return {"assets": assets.astype(np.float32, copy=False), "portfolio": np.asarray(port, dtype=np.float32)}


__all__ = [
    "FLAT_SIGNALS",
    "LEVELS",
    "SLOW_FEATURES",
    "STRATEGIC_SIGNALS",
    "TACTICAL_SIGNALS",
    "ViewBuilder",
    "n_features",
    "slow_panel",
    "view_space",
]
