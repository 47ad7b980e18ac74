"""Data-integrity checks of Kraken bars against reference exchanges, and the per-bar mask.

Per bar and asset (all rules causal: row t uses bars <= t only):

- **discrepancy**: the Kraken close vs the median of the reference exchanges' closes,
  ``dev = log(close / (basis * ref_median))``, flagged when ``|dev| > threshold`` (default
  0.2 %, the specification's number) *and* the basis-adjusted close lies outside the
  references' hourly [low, high] widened by the threshold. ``basis`` is the trailing
  ``basis_window``-hour median of ``log(kraken / reference)`` (shifted one bar): it removes
  the slow quote basis (Binance quotes USDT, not USD). The range condition removes pure
  timing noise: an hourly close is the last trade of the hour, and two venues' last trades
  are seconds apart; a close the reference itself traded at during the hour is no error.
- **runs**: consecutive flagged bars; a run of ``min_run`` or more hours marks its bars
  (from the ``min_run``-th on) as not OK.
- **gaps**: hours inside an asset's life with no bar (``MarketData.filled``): reported;
  the kill switch's staleness rule (``max_stale_hours``) handles them, so they are not
  counted again as stale here.
- **stale**: ``stale_hours`` or more consecutive real (not gap-filled) bars with O=H=L=C
  equal to the previous close and zero volume (a frozen feed): not OK.
- **spikes**: |log return − m| / max(1.4826 · d, ``spike_floor``) beyond ``spike_z``, where m
  is the trailing ``spike_window`` median of the returns and d the trailing median of each
  return's distance to its own trailing median (a robust scale; the floor keeps a jump after
  a flat stretch a spike); not OK unless the references confirm the move (no discrepancy at
  that bar). Without reference data for the bar, a spike is not OK.

``integrity_ok = ~(long discrepancy run | stale | unconfirmed spike)``; bars without any
reference stay OK on the discrepancy rule. `IntegrityReport.table` and `.plot` give the
report (table + PNG); `IntegrityReport.apply` puts the mask into `MarketData.integrity_ok`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from envs.config_mapping import MappingConfig
from envs.data.align import iso
from envs.data.market import MarketData
from envs.errors import ConfigError

if TYPE_CHECKING:
    from envs.data.store import BarStore


@dataclass(frozen=True)
class IntegrityConfig(MappingConfig):
    """Thresholds of the integrity checks (see the module docstring)."""

    config_section: ClassVar[str] = "integrity"

    threshold: float = 0.002  # |Kraken close / reference median - 1| above this is a discrepancy
    basis_window: int = 24  # hours of the trailing quote-basis median (0: no basis adjustment)
    use_range: bool = True  # also require the close to lie outside the references' hourly range
    min_run: int = 3  # a discrepancy run this long marks bars not OK
    stale_hours: int = 6  # this many flat zero-volume bars in a row mark bars not OK
    spike_z: float = 10.0  # robust z-score of the log return above which a bar is a spike
    spike_window: int = 168  # trailing hours of the robust z-score
    spike_floor: float = 0.001  # smallest scale (log return) of the z-score: a jump after a flat stretch still counts

    def __post_init__(self) -> None:
        checks = {
            "threshold": self.threshold > 0,
            "basis_window": self.basis_window >= 0,
            "min_run": self.min_run >= 1,
            "stale_hours": self.stale_hours >= 1,
            "spike_z": self.spike_z > 0,
            "spike_window": self.spike_window >= 10,
            "spike_floor": self.spike_floor > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"integrity.{name}: got {getattr(self, name)!r}: out of range")


@dataclass(frozen=True)
class Reference:
    """One reference exchange's bars on the market's grid, (T, N), NaN where it has none."""

    close: np.ndarray
    high: np.ndarray
    low: np.ndarray


def run_lengths(flags: np.ndarray) -> np.ndarray:
    """(T, N) length of the run of True ending at each bar (0 where False), vectorised."""
    f = flags.astype(np.int64)
    c = np.cumsum(f, axis=0)
    last_reset = np.maximum.accumulate(np.where(flags, 0, c), axis=0)
    return c - last_reset


def _rolling(a: np.ndarray, window: int, how: str) -> np.ndarray:
    roll = pd.DataFrame(a).rolling(window, min_periods=max(3, window // 4))
    return np.asarray(getattr(roll, how)().shift(1).to_numpy(), dtype=np.float64)


@dataclass
class IntegrityReport:
    """Per-bar results of `check_market` and the report built from them."""

    market: MarketData
    config: IntegrityConfig
    references: tuple[str, ...]
    deviation: np.ndarray  # (T, N) basis-adjusted log deviation from the reference median (NaN: none)
    discrepancy: np.ndarray  # (T, N) bool
    run: np.ndarray  # (T, N) int: discrepancy run length ending at t
    gap: np.ndarray  # (T, N) bool: hour missing inside the asset's life
    stale: np.ndarray  # (T, N) bool
    spike: np.ndarray  # (T, N) bool: unconfirmed spike
    ok: np.ndarray  # (T, N) bool: the integrity_ok mask
    extra: dict[str, Any] = field(default_factory=dict)

    def apply(self, market: MarketData | None = None) -> MarketData:
        """The market with ``integrity_ok`` set to this report's mask."""
        return replace(market or self.market, integrity_ok=self.ok.copy())

    def table(self) -> pd.DataFrame:
        """One row per asset: compared bars, flags, flag rate, runs, gaps, stale bars, spikes, not-OK bars."""
        m, cfg = self.market, self.config
        rows = []
        for i, a in enumerate(m.assets):
            compared = np.isfinite(self.deviation[:, i])
            flags = self.discrepancy[:, i]
            run = self.run[:, i]
            ends = flags & ~np.r_[flags[1:], False]  # last bar of each run
            gaps = self.gap[:, i]
            rows.append({
                "asset": a,
                "bars": int(np.isfinite(m.close[:, i]).sum()),
                "compared": int(compared.sum()),
                "flagged": int(flags.sum()),
                "flag_rate": float(flags.sum() / max(int(compared.sum()), 1)),
                "longest_run_h": int(run.max(initial=0)),
                f"runs_ge_{cfg.min_run}h": int((ends & (run >= cfg.min_run)).sum()),
                "gap_hours": int(gaps.sum()),
                "gaps": int((gaps & ~np.r_[False, gaps[:-1]]).sum()),
                "stale_bars": int(self.stale[:, i].sum()),
                "spikes": int(self.spike[:, i].sum()),
                "not_ok": int((~self.ok[:, i] & np.isfinite(m.close[:, i])).sum()),
                "max_abs_dev": float(np.nanmax(np.abs(self.deviation[:, i]), initial=0.0)),
            })
        return pd.DataFrame(rows).set_index("asset")

    def events(self) -> pd.DataFrame:
        """Runs of discrepancy flags, gaps, stale runs and spikes as (asset, kind, start, end, hours)."""
        out = []
        ts = self.market.timestamps
        for kind, arr in (("discrepancy", self.discrepancy), ("gap", self.gap), ("stale", self.stale),
                          ("spike", self.spike)):  # fmt: skip
            for i, a in enumerate(self.market.assets):
                col = arr[:, i].astype(np.int8)
                edges = np.diff(np.r_[0, col, 0])
                for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
                    out.append({"asset": a, "kind": kind, "start": iso(int(ts[s])), "end": iso(int(ts[e - 1])),
                                "hours": int(e - s)})  # fmt: skip
        return pd.DataFrame(out, columns=["asset", "kind", "start", "end", "hours"])

    def flag_rate(self) -> float:
        """Share of compared bars flagged as a discrepancy, over all assets."""
        compared = np.isfinite(self.deviation)
        return float(self.discrepancy.sum() / max(int(compared.sum()), 1))

    def not_ok_rate(self) -> float:
        """Share of listed bars the mask marks not OK."""
        listed = np.isfinite(self.market.close)
        return float((~self.ok & listed).sum() / max(int(listed.sum()), 1))

    def plot(self, path: str | Path) -> Path:
        """PNG: per asset, the deviation from the reference median with the threshold and flags."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        m, cfg = self.market, self.config
        n = max(m.n_assets, 1)
        fig, axes = plt.subplots(n, 1, figsize=(11, 2.4 * n), sharex=True, squeeze=False)
        x = pd.to_datetime(m.timestamps, unit="s", utc=True)
        for i, a in enumerate(m.assets):
            ax = axes[i, 0]
            ax.plot(x, 100 * self.deviation[:, i], lw=0.5, color="0.4", label="close vs reference median")
            for sign in (1, -1):
                ax.axhline(100 * sign * cfg.threshold, color="tab:orange", lw=0.8, ls="--")
            for arr, color, label in ((self.discrepancy, "tab:red", "discrepancy"), (self.spike, "tab:purple", "spike"),
                                      (self.stale, "tab:blue", "stale"), (self.gap, "k", "gap")):  # fmt: skip
                sel = arr[:, i]
                if sel.any():
                    y = np.nan_to_num(100 * self.deviation[sel, i])
                    ax.scatter(x[sel], y, s=6, color=color, label=label, zorder=3)
            ax.set_ylabel(f"{a} dev %")
            ax.legend(loc="upper right", fontsize=7, ncol=5)
        axes[0, 0].set_title(f"Kraken close vs median of {', '.join(self.references) or 'no reference'} "
                             f"(threshold {100 * cfg.threshold:.2f} %)")  # fmt: skip
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path


def check_market(
    market: MarketData, references: Mapping[str, Reference], config: IntegrityConfig | None = None
) -> IntegrityReport:
    """Run every check on ``market`` against ``references`` (exchange -> bars on its grid)."""
    cfg = config or IntegrityConfig()
    shape = market.close.shape
    for name, ref in references.items():
        for f in ("close", "high", "low"):
            if getattr(ref, f).shape != shape:
                raise ConfigError(f"reference {name}.{f}: expected shape {shape}, got {getattr(ref, f).shape}")
    close = market.close
    real = np.isfinite(close) & ~market.filled
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN medians -> NaN
        if references:
            ref_close = np.nanmedian(np.stack([r.close for r in references.values()]), axis=0)
            ref_high = np.nanmedian(np.stack([r.high for r in references.values()]), axis=0)
            ref_low = np.nanmedian(np.stack([r.low for r in references.values()]), axis=0)
        else:
            ref_close = ref_high = ref_low = np.full(shape, np.nan)
        raw_dev = np.where(real, np.log(close / ref_close), np.nan)
        basis = _rolling(raw_dev, cfg.basis_window, "median") if cfg.basis_window else np.zeros(shape)
        basis = np.nan_to_num(basis, nan=0.0)
        dev = raw_dev - basis
        adj = close * np.exp(-basis)
        outside = (adj < ref_low * (1 - cfg.threshold)) | (adj > ref_high * (1 + cfg.threshold))
        discrepancy = np.isfinite(dev) & (np.abs(dev) > cfg.threshold)
        if cfg.use_range:
            discrepancy &= outside | ~np.isfinite(ref_low) | ~np.isfinite(ref_high)
        run = run_lengths(discrepancy)
        # stale: flat bar at the previous close with zero volume
        prev = np.vstack([np.full((1, shape[1]), np.nan), close[:-1]])
        flat = ((market.open == market.high) & (market.high == market.low) & (market.low == close)
                & (close == prev) & (market.volume == 0) & ~market.filled)  # fmt: skip
        stale = run_lengths(flat) >= cfg.stale_hours
        # spikes: robust z of the log return vs the previous spike_window returns
        rets = np.log(close / prev)
        med = _rolling(rets, cfg.spike_window, "median")
        mad = _rolling(np.abs(rets - np.nan_to_num(med)), cfg.spike_window, "median")
        z = np.abs(rets - med) / np.maximum(1.4826 * mad, cfg.spike_floor)
        spike_raw = np.isfinite(z) & (z > cfg.spike_z) & real
        spike = spike_raw & (discrepancy | ~np.isfinite(ref_close))
    gap = np.isfinite(close) & market.filled
    ok = ~((run >= cfg.min_run) | stale | spike)
    return IntegrityReport(
        market=market,
        config=cfg,
        references=tuple(references),
        deviation=dev,
        discrepancy=discrepancy,
        run=run,
        gap=gap,
        stale=stale,
        spike=spike,
        ok=ok,
        extra={"spikes_confirmed": int((spike_raw & ~spike).sum())},
    )


def reference_from_market(ref: MarketData, market: MarketData) -> Reference:
    """A reference market's real bars (gap-filled ones dropped) put on ``market``'s grid and asset order."""
    shape = market.close.shape
    out = {f: np.full(shape, np.nan) for f in ("close", "high", "low")}
    common, mi, ri = np.intersect1d(market.timestamps, ref.timestamps, assume_unique=True, return_indices=True)
    if common.size == 0:
        return Reference(**out)
    for i, a in enumerate(market.assets):
        if a not in ref.assets:
            continue
        j = ref.index_of(a)
        real = ~ref.filled[ri, j] & np.isfinite(ref.close[ri, j])
        for f in out:
            out[f][mi[real], i] = getattr(ref, f)[ri[real], j]
    return Reference(**out)


def reference_closes(store: BarStore, market: MarketData, exchanges: Sequence[str]) -> dict[str, Reference]:
    """The store's reference-exchange bars for ``market``'s assets, on its grid (exchanges without any: left out)."""
    from envs.data.pairs import canonical_asset

    shape = market.close.shape
    t0, t1 = int(market.timestamps[0]), int(market.timestamps[-1])
    refs = {}
    series = store.series()
    for ex in exchanges:
        out = {f: np.full(shape, np.nan) for f in ("close", "high", "low")}
        found = False
        for i, a in enumerate(market.assets):
            pairs = sorted(p for e, p in series if e == ex and canonical_asset(p) == a)
            if not pairs:
                continue
            raw = store.read(ex, pairs[0], t0, t1)
            pos = (raw.timestamps - t0) // 3600
            for f in out:
                out[f][pos, i] = getattr(raw, f)
            found = found or raw.timestamps.size > 0
        if found:
            refs[ex] = Reference(**out)
    return refs
