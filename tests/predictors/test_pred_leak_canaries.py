"""LEAK-1 / LEAK-2 / LEAK-5: features at t never depend on bars after t.

``causality_violations`` is the checker: it recomputes a feature function on the market
truncated at t (LEAK-1) and on the market whose bars after t are replaced by garbage
(LEAK-2: random walk, reversed, constant) and compares every row <= t with the full
run, NaN-aware, at rtol 1e-12 with atol 0 (any NaN <-> value flip fails). The features
are computed by sequential rolling recurrences, so the expected difference is exactly
zero; the tolerance only absorbs nothing-in-particular and is far below any signal.
LEAK-5 shows the checker has teeth: five planted leaks are each flagged, their clean
twins pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from envs.data.market import MarketData
from predictors.features import FeatureConfig, compute_features
from predictors.regime import label_regimes, regime_features

RTOL = 1e-12
GARBAGE = ("random_walk", "reversed", "constant")
T0 = 1_600_000_000 // 3600 * 3600


def make_market(T: int = 1100, seed: int = 0, spread: bool = False) -> MarketData:
    """3 assets: BTC from bar 0, ETH with two marked (untradable) gaps, SOL listed at bar 40."""
    rng = np.random.default_rng(seed)
    N = 3
    r = rng.normal(0.0, 0.01, (T, N))
    r[T // 2 : T // 2 + 24] -= 0.01  # a crash-ish stretch so regimes vary
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    opn = np.vstack([close[:1], close[:-1]])
    high = np.maximum(opn, close) * np.exp(np.abs(rng.normal(0, 0.003, (T, N))))
    low = np.minimum(opn, close) * np.exp(-np.abs(rng.normal(0, 0.003, (T, N))))
    volume = rng.lognormal(0.0, 1.0, (T, N))
    tradable = np.ones((T, N), dtype=bool)
    filled = np.zeros((T, N), dtype=bool)
    for g0, g1 in ((T // 4, T // 4 + 3), (3 * T // 4, 3 * T // 4 + 1)):  # ETH gaps: previous close carried, zero volume
        for t in range(g0, g1):
            close[t, 1] = opn[t, 1] = high[t, 1] = low[t, 1] = close[g0 - 1, 1]
        opn[g1, 1] = close[g0 - 1, 1]
        volume[g0:g1, 1] = 0.0
        tradable[g0:g1, 1] = False
        filled[g0:g1, 1] = True
    for a in (opn, high, low, close, volume):
        a[:40, 2] = np.nan
    tradable[:40, 2] = False
    return MarketData(
        assets=("BTC", "ETH", "SOL"),
        timestamps=T0 + 3600 * np.arange(T, dtype=np.int64),
        open=opn,
        high=high,
        low=low,
        close=close,
        volume=volume,
        tradable=tradable,
        filled=filled,
        spread=rng.uniform(1e-4, 1e-3, (T, N)) if spread else None,
    )


def perturb_after(market: MarketData, t: int, kind: str, seed: int = 1) -> MarketData:
    """The market with every bar after t replaced by garbage of the given kind."""
    rng = np.random.default_rng(seed)
    T, N = market.n_bars, market.n_assets
    n = T - t - 1
    arrays = {f: np.array(getattr(market, f), copy=True) for f in ("open", "high", "low", "close", "volume")}
    tradable, filled = market.tradable.copy(), market.filled.copy()
    spread = None if market.spread is None else market.spread.copy()
    if kind == "random_walk":
        c = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.05, (n, N)), axis=0))
        arrays["close"][t + 1 :] = c
        arrays["open"][t + 1 :] = c * np.exp(rng.normal(0, 0.01, (n, N)))
        arrays["high"][t + 1 :] = np.maximum(c, arrays["open"][t + 1 :]) * 1.02
        arrays["low"][t + 1 :] = np.minimum(c, arrays["open"][t + 1 :]) * 0.98
        arrays["volume"][t + 1 :] = rng.lognormal(3.0, 2.0, (n, N))
        tradable[t + 1 :] = rng.random((n, N)) < 0.7
        if spread is not None:
            spread[t + 1 :] = rng.uniform(0.0, 0.05, (n, N))
    elif kind == "reversed":
        for a in arrays.values():
            a[t + 1 :] = a[t + 1 :][::-1]
        tradable[t + 1 :] = tradable[t + 1 :][::-1]
        if spread is not None:
            spread[t + 1 :] = spread[t + 1 :][::-1]
    elif kind == "constant":
        for f in ("open", "high", "low", "close"):
            arrays[f][t + 1 :] = 1.0
        arrays["volume"][t + 1 :] = 0.0
        filled[t + 1 :] = True
        if spread is not None:
            spread[t + 1 :] = 0.5
    else:
        raise ValueError(kind)
    return replace(market, **arrays, tradable=tradable, filled=filled, spread=spread)


def _mismatch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-element mismatch: NaN flip, or |a - b| > RTOL * |b| (atol 0)."""
    na, nb = np.isnan(a), np.isnan(b)
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b) > RTOL * np.abs(b)
    return (na != nb) | (~na & ~nb & diff)


def causality_violations(
    fn: Callable[[MarketData], np.ndarray],
    market: MarketData,
    cuts: list[int],
    names: tuple[str, ...] | None = None,
) -> list[str]:
    """LEAK-1 + LEAK-2 for ``fn`` (market -> array with time first): list of failures.

    For each cut t, rows 0..t of fn(truncated at t) and of fn(bars after t garbage) must
    equal rows 0..t of fn(full). ``names`` labels the last axis (one feature per entry).
    """
    full = np.asarray(fn(market), dtype=np.float64)
    out: list[str] = []
    for t in cuts:
        variants = {"truncated": market.slice(0, t + 1)}
        variants.update({k: perturb_after(market, t, k, seed=t) for k in GARBAGE})
        for label, m in variants.items():
            got = np.asarray(fn(m), dtype=np.float64)[: t + 1]
            bad = _mismatch(got, full[: t + 1])
            if bad.any():
                where = np.argwhere(bad)[0]
                col = names[where[-1]] if names is not None else str(tuple(where[1:]))
                out.append(f"{label} at t={t}: {int(bad.sum())} mismatches, first row {where[0]} col {col}")
    return out


def cut_points(market: MarketData, n_random: int, start: int, seed: int = 0) -> list[int]:
    """``n_random`` random bars in [start, T-2], plus every untradable bar inside a life and bars 0..40."""
    rng = np.random.default_rng(seed)
    T = market.n_bars
    rand = rng.choice(np.arange(start, T - 1), size=n_random, replace=False)
    gaps = np.nonzero((~market.tradable & np.isfinite(market.close)).any(axis=1))[0]
    early = np.arange(0, 41, 5)
    return sorted({int(x) for x in (*rand, *gaps, *early) if x < T - 1})


# ------------------------------------------------------------------ real features


@pytest.mark.parametrize("spread", [False, True], ids=["corwin_schultz", "spread_column"])
def test_leak1_leak2_every_feature(spread: bool) -> None:
    market = make_market(spread=spread)
    config = FeatureConfig()
    panel = compute_features(market, config)
    start = max(s.warmup for s in panel.specs) + 40  # past every asset's warm-up (SOL lists at 40)
    cuts = cut_points(market, n_random=30, start=start, seed=int(spread))
    assert sum(c >= start for c in cuts) >= 30
    # each cut checks rows 0..t of every feature of every asset; the last row is real data
    assert np.isfinite(panel.values[start:, 0]).all()
    bad = causality_violations(lambda m: compute_features(m, config).values, market, cuts, panel.names)
    print(
        f"LEAK-1/2 features: {len(panel.names)} features x 3 assets x {len(cuts)} cuts x "
        f"{1 + len(GARBAGE)} variants, mismatches {len(bad)}"
    )
    assert bad == []


def test_leak1_leak2_regime_rule_and_regime_features() -> None:
    market = make_market()
    labels = label_regimes(market)
    assert set(np.unique(labels[800:])) >= {0, 1}  # the rule does say something here
    cuts = cut_points(market, n_random=30, start=800, seed=3)
    assert causality_violations(lambda m: label_regimes(m).astype(np.float64), market, cuts) == []
    assert causality_violations(lambda m: regime_features(compute_features(m)), market, cuts[::3]) == []


# ------------------------------------------------------------------ LEAK-5 canaries


def _frame(market: MarketData) -> pd.DataFrame:
    return pd.DataFrame(market.close, index=pd.to_datetime(market.timestamps, unit="s", utc=True))


def _gap_nan(market: MarketData) -> pd.DataFrame:
    """Close with untradable bars set to NaN (the gap a fill policy must not fill from the future)."""
    return _frame(market).where(market.tradable)


LEAKY: dict[str, Callable[[MarketData], np.ndarray]] = {
    "shift(-1)": lambda m: _frame(m).pct_change(fill_method=None).shift(-1).to_numpy(),
    "centred rolling": lambda m: _frame(m).rolling(24, center=True).mean().to_numpy(),
    "full-series z-score": lambda m: ((_frame(m) - _frame(m).mean()) / _frame(m).std()).to_numpy(),
    "backfill": lambda m: _gap_nan(m).bfill().to_numpy(),
    "left-labelled resample": lambda m: (
        _frame(m).resample("4h", label="left", closed="left").last().reindex(_frame(m).index, method="ffill").to_numpy()
    ),
}

CLEAN: dict[str, Callable[[MarketData], np.ndarray]] = {
    "shift(-1)": lambda m: _frame(m).pct_change(fill_method=None).to_numpy(),
    "centred rolling": lambda m: _frame(m).rolling(24).mean().to_numpy(),
    "full-series z-score": lambda m: (
        (_frame(m) - _frame(m).expanding().mean()) / _frame(m).expanding().std()
    ).to_numpy(),
    "backfill": lambda m: _gap_nan(m).ffill().to_numpy(),
    "left-labelled resample": lambda m: (
        _frame(m)
        .resample("4h", label="right", closed="left")
        .last()
        .reindex(_frame(m).index, method="ffill")
        .to_numpy()
    ),
}


def test_leak5_canaries_flag_5_of_5_and_clean_twins_pass() -> None:
    market = make_market(T=400)
    cuts = cut_points(market, n_random=30, start=50, seed=5)
    flagged = {name: bool(causality_violations(fn, market, cuts)) for name, fn in LEAKY.items()}
    clean = {name: causality_violations(fn, market, cuts) for name, fn in CLEAN.items()}
    print(f"LEAK-5 canaries flagged {sum(flagged.values())}/5: {flagged}")
    assert all(flagged.values()), flagged
    assert all(v == [] for v in clean.values()), clean
