"""Held-out evaluation: episode results -> the ``metrics.json`` document.

Three questions a report must answer, each with its own function here:

- *How did each strategy do?* `agents.metrics.summary` per strategy (unchanged), plus
  `per_regime`: the same returns split by the market regime at the decision bar, so a
  policy that only wins in trends shows it.
- *Was the signal any good?* `predictor_quality`: information coefficient and AUC of the
  out-of-sample predictions over the evaluation bars. A signal with IC ~ 0 and AUC ~ 0.5
  cannot be traded profitably by any policy; a good signal with a poor policy can.
- *What is written?* `metrics_document` assembles the ``metrics.json`` dict (schema in
  ARCHITECTURE.md, "Interfaces"), `write_metrics` writes it atomically.

Everything is plain numpy/pandas on finished episodes: nothing here runs in the env loop.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from agents.baselines import EpisodeResult
from agents.metrics import DEFAULT_BLOCK, HOURS_PER_YEAR, json_safe, max_drawdown, sharpe_ratio
from envs.atomic import atomic_write
from envs.data.market import MarketData
from envs.errors import ConfigError, DataError
from predictors.labels import HORIZONS, make_labels
from predictors.regime import REGIMES

UNKNOWN = "unknown"  # per_regime key of the steps whose decision bar has no regime label (-1)
REGIME_COLUMNS = tuple(f"p_{r}" for r in REGIMES)  # regimes.parquet columns, REGIMES order
MIN_ASSETS_IC = 3  # a cross-sectional rank correlation needs at least three assets
BOOTSTRAP = (
    "stationary (Politis-Romano 1994) block bootstrap of the hourly returns, geometric block lengths "
    "with mean {block:g} h, {n_boot} resamples, percentile {level:g}% interval of the annualised Sharpe ratio"
)
RESERVED = ("strategies", "period", "train_period", "annualisation", "bootstrap", "predictor_quality", "episodes")


# ------------------------------------------------------------------ regimes
def _bar_positions(timestamps: pd.Series, assets: pd.Series, market: MarketData) -> tuple[np.ndarray, np.ndarray]:
    """Bar index and asset index of each row; -1 where the row is not in ``market``."""
    ts = pd.to_datetime(timestamps, utc=True)
    secs = ts.dt.tz_localize(None).to_numpy("datetime64[s]").astype(np.int64)
    t = np.searchsorted(market.timestamps, secs)
    inside = (t < market.n_bars) & (market.timestamps[np.minimum(t, market.n_bars - 1)] == secs)
    amap = {a: i for i, a in enumerate(market.assets)}
    a = assets.astype(str).map(amap).fillna(-1).to_numpy(dtype=np.int64)
    t = np.where(inside & (a >= 0), t, -1)
    return t, np.where(t >= 0, a, -1)


def _check_range(market: MarketData, start: int, stop: int) -> tuple[int, int]:
    s, e = int(start), int(stop)
    if not 0 <= s < e <= market.n_bars:
        raise ConfigError(f"bars [start, stop): expected 0 <= start < stop <= {market.n_bars}, got [{start}, {stop})")
    return s, e


def _require(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{name}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing}, expected at least {list(columns)}")


def regime_labels(regimes_df: pd.DataFrame, market: MarketData, start_idx: int, stop_idx: int) -> np.ndarray:
    """One market-wide regime per bar ``start_idx .. stop_idx - 1``: index into ``REGIMES``, -1 unknown.

    Input is the regime classifier's out-of-sample probabilities (``regimes.parquet``, one
    row per timestamp and asset). The policy trades one portfolio, so the report needs one
    regime per hour, not one per asset: the label is the argmax of the *mean* probability
    over the assets that have a prediction at that bar (equal weights; the mean keeps the
    classifier's confidence, which a majority vote of per-asset argmaxes would throw away;
    ties go to the earlier regime in ``REGIMES``). Bars where no asset has a prediction
    (before the first walk-forward test window, or a gap) are -1: unknown, not guessed.
    Rows for timestamps or assets outside ``market`` are ignored.
    """
    _require(regimes_df, ("timestamp", "asset", *REGIME_COLUMNS), "regimes_df")
    s, e = _check_range(market, start_idx, stop_idx)
    t, _ = _bar_positions(regimes_df["timestamp"], regimes_df["asset"], market)
    keep = (t >= s) & (t < e)
    probs = regimes_df.loc[keep, list(REGIME_COLUMNS)].to_numpy(dtype=np.float64)
    if not np.isfinite(probs).all():
        raise DataError("regimes_df: expected finite regime probabilities, got NaN/inf")
    rows = t[keep] - s
    sums = np.zeros((e - s, len(REGIMES)))
    np.add.at(sums, rows, probs)
    counts = np.bincount(rows, minlength=e - s)
    labels = np.argmax(sums, axis=1).astype(np.int64)  # the mean's argmax equals the sum's
    labels[counts == 0] = -1
    return labels  # type: ignore[no-any-return]


def _step_labels(result: EpisodeResult, labels: Any, timestamps: Any) -> np.ndarray:
    """The regime label of each step's decision bar (``result.timestamps[k]`` for step k)."""
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.dtype.kind not in "iu":
        raise DataError(f"labels: expected a 1-D integer array of regime indices, got {lab.dtype} shape {lab.shape}")
    if lab.size and (lab.min() < -1 or lab.max() >= len(REGIMES)):
        raise DataError(f"labels: expected values in -1..{len(REGIMES) - 1}, got {lab.min()}..{lab.max()}")
    n = result.n_steps
    if timestamps is None:
        if lab.size < n:
            raise DataError(f"labels: expected at least {n} labels (one per step of {result.name!r}), got {lab.size}")
        return lab[:n]
    ts = np.asarray(timestamps, dtype=np.int64)
    if ts.shape != lab.shape:
        raise DataError(f"timestamps: expected one per label ({lab.size}), got shape {ts.shape}")
    decision = result.timestamps[:n]
    pos = np.searchsorted(ts, decision)
    found = (pos < ts.size) & (ts[np.minimum(pos, ts.size - 1)] == decision)
    if not found.all():
        k = int(np.argmin(found))
        raise DataError(f"labels: no label for the decision bar of step {k} of {result.name!r} (t={decision[k]})")
    return lab[pos]


def per_regime(
    result: EpisodeResult, labels: Any, timestamps: Any = None, periods_per_year: float = HOURS_PER_YEAR
) -> dict[str, dict[str, float]]:
    """The episode's returns split by regime: ``{regime: {hours, share, total_return, sharpe, ...}}``.

    The return of step k is earned over the bar after its decision, but it belongs to the
    regime of the **decision bar** of step k (``result.timestamps[k]``): that is the regime
    the policy could know when it chose the weights, so the table says how its choices fared
    in each regime. ``labels`` are `regime_labels` output; without ``timestamps`` ``labels[k]``
    is the label of step k's decision bar (the episode's first decision bar first; an episode
    that ended early uses a prefix), with ``timestamps`` (Unix seconds, one per label) each
    step's decision bar is looked up.

    Every regime of ``REGIMES`` is present, plus ``"unknown"`` (label -1), so the hours sum
    to the episode length and the regimes' total returns compound to the episode's. Per
    regime: ``hours`` (steps), ``share`` of the steps, ``total_return`` (compounded),
    ``sharpe`` (annualised x sqrt(periods_per_year)), ``max_drawdown`` of the equity compounded
    over that regime's hours only (spells glued together in time order), ``mean_return``
    (per hour). A regime with no hours has NaN metrics (null in ``metrics.json``).
    """
    steps = _step_labels(result, labels, timestamps)
    r = result.returns
    n = max(r.size, 1)
    out: dict[str, dict[str, float]] = {}
    for k, name in [*enumerate(REGIMES), (-1, UNKNOWN)]:
        sub = r[steps == k]
        if sub.size == 0:
            out[name] = {"hours": 0, "share": 0.0, "total_return": math.nan, "sharpe": math.nan,
                         "max_drawdown": math.nan, "mean_return": math.nan}  # fmt: skip
            continue
        out[name] = {
            "hours": int(sub.size),
            "share": sub.size / n,
            "total_return": float(np.prod(1.0 + sub) - 1.0),
            "sharpe": sharpe_ratio(sub, periods_per_year),
            "max_drawdown": max_drawdown(sub),
            "mean_return": float(np.mean(sub)),
        }
    return out


def in_cash_until(result: EpisodeResult, timestamps: np.ndarray) -> EpisodeResult:
    """``result`` continued in cash over the bars ``timestamps`` after its last bar (zero returns).

    An episode the risk layer halted (20 % drawdown: flattened, no new entries until an
    operator reactivates) or that ended in ruin still owns the rest of the evaluation period:
    comparing its Sharpe over fewer hours than the others' would flatter (or punish) it. The
    account sits in cash, so each further hour returns 0 with no trades.
    """
    ts = np.asarray(timestamps, dtype=np.int64)
    extra = ts[ts > int(result.timestamps[-1])]
    k = int(extra.size)
    if k == 0:
        return result
    n_assets = result.weights.shape[1]
    return replace(
        result,
        returns=np.concatenate([result.returns, np.zeros(k)]),
        equity=np.concatenate([result.equity, np.full(k, result.equity[-1])]),
        timestamps=np.concatenate([result.timestamps, extra]),
        fees=np.concatenate([result.fees, np.zeros(k)]),
        slippage=np.concatenate([result.slippage, np.zeros(k)]),
        turnover=np.concatenate([result.turnover, np.zeros(k)]),
        n_fills=np.concatenate([result.n_fills, np.zeros(k, dtype=np.int64)]),
        weights=np.concatenate([result.weights, np.zeros((k, n_assets))]),
        target_weights=np.concatenate([result.target_weights, np.zeros((k, n_assets))]),
        actions=np.concatenate([result.actions, np.zeros((k, result.actions.shape[1]))]),
        fills=[*result.fills, *([[]] * k)],
        intervention_rules=[*result.intervention_rules, *([()] * k)],
    )


def ladder_check(result: EpisodeResult, halt_drawdown: float) -> dict[str, float | bool]:
    """Max drawdown against the ladder's allowance: the halt level plus the largest one-bar loss."""
    r = np.asarray(result.returns, dtype=np.float64)
    worst = float(max(-r.min(), 0.0)) if r.size else 0.0
    dd = max_drawdown(r) if r.size else 0.0
    return {"halt_drawdown": float(halt_drawdown), "largest_bar_loss": worst,
            "allowance": float(halt_drawdown) + worst, "within_ladder": bool(dd <= halt_drawdown + worst + 1e-12)}


# ------------------------------------------------------------------ predictor quality
def _cross_sectional_ic(ts: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman correlation of x and y across assets, per timestamp with >= 3 rows (ordered by time).

    Ranks within each timestamp (average ranks for ties), then the Pearson correlation of
    the ranks; timestamps where either side is constant are dropped (undefined).
    """
    df = pd.DataFrame({"ts": ts, "x": x, "y": y})
    g = df.groupby("ts", sort=True)
    df["rx"] = g["x"].rank()
    df["ry"] = g["y"].rank()
    df["dx"] = df["rx"] - g["rx"].transform("mean")
    df["dy"] = df["ry"] - g["ry"].transform("mean")
    df["xy"], df["xx"], df["yy"] = df["dx"] * df["dy"], df["dx"] ** 2, df["dy"] ** 2
    sums = df.groupby("ts", sort=True)[["xy", "xx", "yy"]].sum()
    sums["n"] = g.size()
    ok = (sums["n"] >= MIN_ASSETS_IC) & (sums["xx"] > 0) & (sums["yy"] > 0)
    s = sums[ok]
    return (s["xy"] / np.sqrt(s["xx"] * s["yy"])).to_numpy(dtype=np.float64)  # type: ignore[no-any-return]


def newey_west_t(values: np.ndarray, lags: int) -> float:
    """t-statistic of the mean with a Newey-West (Bartlett kernel) HAC standard error.

    ``var(mean) = (g0 + 2 sum_{j=1..L} (1 - j / (L + 1)) g_j) / n`` with ``g_j`` the lag-j
    autocovariance (population, divided by n). Used for h-hour labels, whose consecutive
    hourly values share h - 1 hours of the future (``lags = h - 1``); with ``lags = 0``
    it is the plain t-statistic with the population variance. NaN with < 2 values or zero
    variance.
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    if n < 2:
        return math.nan
    d = v - v.mean()
    var = float(d @ d) / n
    for j in range(1, min(int(lags), n - 1) + 1):
        var += 2.0 * (1.0 - j / (lags + 1.0)) * float(d[j:] @ d[:-j]) / n
    if not var > 0:
        return math.nan
    return float(v.mean() / math.sqrt(var / n))


def predictor_quality(
    predictions_df: pd.DataFrame,
    market: MarketData,
    start: int,
    stop: int,
    horizons: Sequence[int] = HORIZONS,
    round_trip_fee: float = 0.008,
) -> pd.DataFrame:
    """IC and AUC of the stored out-of-sample predictions over bars ``[start, stop)``, per (model, horizon).

    Realised labels come from `predictors.labels.make_labels` on ``market`` (log forward
    return over h hours; ``up`` = that return beats the round-trip fee ``round_trip_fee``,
    the threshold the predictors were trained on). A forward return only uses bars of
    ``market``: rows whose label runs past the market's end (or through an untradable bar)
    have no label and are excluded, as are rows outside ``market`` or ``[start, stop)``.

    Columns: ``model``, ``horizon``, ``n`` (rows with a label), ``n_timestamps`` (timestamps
    with >= 3 assets entering the IC), ``ic`` (mean over timestamps of the cross-sectional
    Spearman correlation of ``exp_return`` with the realised forward return), ``ic_t``
    (``mean / (std / sqrt(n_timestamps))``, the plain t-statistic), ``ic_t_nw`` (Newey-West
    t-statistic with ``h - 1`` lags: an h-hour label overlaps the next h - 1 hourly labels,
    so consecutive ICs are correlated and the plain ``ic_t`` overstates significance by up to
    ~sqrt(h); for h = 1 the two agree up to ddof), ``auc`` (ROC AUC of ``p_up`` vs ``up``
    pooled over rows; NaN with one class only), ``hit_rate`` (sign of ``exp_return`` vs sign
    of the realised return, zero returns skipped).
    """
    _require(predictions_df, ("timestamp", "asset", "horizon", "model", "p_up", "exp_return"), "predictions_df")
    s, e = _check_range(market, start, stop)
    hs = tuple(int(h) for h in horizons)
    labels = make_labels(market, hs, round_trip_fee)
    t, a = _bar_positions(predictions_df["timestamp"], predictions_df["asset"], market)
    h_col = predictions_df["horizon"].to_numpy(dtype=np.int64)
    keep = (t >= s) & (t < e) & np.isin(h_col, hs)
    df = predictions_df.loc[keep, ["model", "horizon", "p_up", "exp_return"]].copy()
    df["t"], df["a"] = t[keep], a[keep]
    df["k"] = df["horizon"].map({h: k for k, h in enumerate(hs)}).to_numpy(dtype=np.int64)
    df["fwd"] = labels.fwd_return[df["t"].to_numpy(), df["a"].to_numpy(), df["k"].to_numpy()]
    df["up"] = labels.up[df["t"].to_numpy(), df["a"].to_numpy(), df["k"].to_numpy()]
    df = df[np.isfinite(df["fwd"]) & np.isfinite(df["p_up"]) & np.isfinite(df["exp_return"])]
    rows = []
    for (model, h), g in df.groupby(["model", "horizon"], sort=True):
        ics = _cross_sectional_ic(g["t"].to_numpy(), g["exp_return"].to_numpy(), g["fwd"].to_numpy())
        n_ts = ics.size
        sd = float(np.std(ics, ddof=1)) if n_ts >= 2 else math.nan
        y, fwd, r = g["up"].to_numpy(), g["fwd"].to_numpy(), g["exp_return"].to_numpy()
        moved = fwd != 0
        rows.append({
            "model": str(model),
            "horizon": int(h),
            "n": len(g),
            "n_timestamps": n_ts,
            "ic": float(np.mean(ics)) if n_ts else math.nan,
            "ic_t": float(np.mean(ics) / (sd / math.sqrt(n_ts))) if n_ts >= 2 and sd > 0 else math.nan,
            "ic_t_nw": newey_west_t(ics, int(h) - 1),
            "auc": float(roc_auc_score(y, g["p_up"].to_numpy())) if np.unique(y).size == 2 else math.nan,
            "hit_rate": float(np.mean(np.sign(r[moved]) == np.sign(fwd[moved]))) if moved.any() else math.nan,
        })  # fmt: skip
    cols = ["model", "horizon", "n", "n_timestamps", "ic", "ic_t", "ic_t_nw", "auc", "hit_rate"]
    return pd.DataFrame(rows, columns=cols)


# ------------------------------------------------------------------ the document
def _iso(value: Any, name: str) -> str | None:
    """An instant as ISO-8601 UTC text: Unix seconds, datetimes, ISO text; None stays None."""
    if value is None:
        return None
    try:
        if isinstance(value, int | np.integer | float | np.floating) and not isinstance(value, bool):
            ts = pd.Timestamp(int(value), unit="s", tz="UTC")
        else:
            ts = pd.Timestamp(value)
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a timestamp (Unix seconds, datetime or ISO text), got {value!r}") from None
    return str(ts.isoformat())


def _period(value: Any, name: str) -> dict[str, str | None]:
    """``{"start", "end"}`` from a mapping with those keys, a (start, end) pair, or None."""
    if value is None:
        return {"start": None, "end": None}
    if isinstance(value, Mapping):
        if not {"start", "end"} <= set(value):
            raise ValueError(f"{name}: expected keys 'start' and 'end', got {sorted(value)}")
        start, end = value["start"], value["end"]
    else:
        try:
            start, end = value
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected {{'start', 'end'}} or a (start, end) pair, got {value!r}") from None
    return {"start": _iso(start, f"{name}.start"), "end": _iso(end, f"{name}.end")}


def metrics_document(
    results: Mapping[str, EpisodeResult],
    period: Any,
    train_period: Any = None,
    trial_sharpes: Mapping[str, Sequence[float]] | None = None,
    regime_labels: np.ndarray | None = None,
    predictor_quality_df: pd.DataFrame | None = None,
    extra: Mapping[str, Any] | None = None,
    *,
    regime_timestamps: np.ndarray | None = None,
    trial_counts: Mapping[str, int] | None = None,
    n_boot: int = 1000,
    block: float = DEFAULT_BLOCK,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``metrics.json`` dict (JSON-ready: NaN/inf are None).

    ``{"strategies": {name: summary + {"per_regime": ...}}, "period", "train_period",
    "annualisation", "bootstrap", "predictor_quality": [records], "episodes": {name: {seed,
    n_steps, termination_reason}}, **extra}``. Strategies are keyed by the mapping's keys, so
    the caller puts the trained policy under ``"policy"`` and each baseline under its name.
    Each strategy's metrics are exactly ``result.summary(trial_sharpes=...)``
    (`agents.metrics.summary`); ``per_regime`` (see `per_regime`) is added when
    ``regime_labels`` is given. ``trial_sharpes[name]``: the per-period Sharpe ratios of every
    trial behind that strategy, for the deflated Sharpe ratio; ``trial_counts[name]`` the number
    of trials when a record counts more than it has Sharpe ratios for. ``period`` / ``train_period``:
    ``{"start", "end"}`` or a pair (Unix seconds, datetimes or ISO text); ``train_period``
    None (baselines only) gives nulls. ``extra`` keys are added at the top level and may not
    replace the keys above.
    """
    if not results:
        raise ValueError("results: expected at least one strategy, got none")
    clash = sorted(set(extra or {}) & set(RESERVED))
    if clash:
        raise ValueError(f"extra: keys {clash} would replace the document's own keys {list(RESERVED)}")
    unknown = sorted(set(trial_sharpes or {}) - set(results))
    if unknown:
        raise ValueError(f"trial_sharpes: names {unknown} are not among the strategies {sorted(results)}")
    strategies: dict[str, Any] = {}
    episodes: dict[str, Any] = {}
    for name, res in results.items():
        trials = (trial_sharpes or {}).get(name)
        row = res.summary(trial_sharpes=trials, n_trials=(trial_counts or {}).get(name), n_boot=n_boot, block=block,
                          alpha=alpha, seed=seed)
        if regime_labels is not None:
            row["per_regime"] = per_regime(res, regime_labels, regime_timestamps)
        strategies[str(name)] = row
        episodes[str(name)] = {
            "seed": res.seed,
            "n_steps": res.n_steps,
            "termination_reason": res.termination_reason,
            "first_decision": _iso(int(res.timestamps[0]), f"{name}.timestamps[0]"),
            "last_bar": _iso(int(res.timestamps[-1]), f"{name}.timestamps[-1]"),
        }
    doc: dict[str, Any] = {
        "strategies": strategies,
        "period": _period(period, "period"),
        "train_period": _period(train_period, "train_period"),
        "annualisation": {"periods_per_year": HOURS_PER_YEAR, "note": "hourly crypto trades 365 x 24"},
        "bootstrap": BOOTSTRAP.format(block=block, n_boot=n_boot, level=100 * (1 - alpha)),
        "predictor_quality": [] if predictor_quality_df is None else predictor_quality_df.to_dict("records"),
        "episodes": episodes,
    }
    if regime_labels is not None:
        doc["regimes"] = {
            "names": [*REGIMES, UNKNOWN],
            "labelling": "argmax of the mean out-of-sample regime-classifier probability over the assets "
            "with a prediction; a step's return belongs to the regime of its decision bar",
        }
    doc.update(extra or {})
    return json_safe(doc)  # type: ignore[no-any-return]


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (NaN/inf as null), atomically; returns the path."""
    text = json.dumps(json_safe(obj), indent=2, allow_nan=False)
    return atomic_write(Path(path), (text + "\n").encode("utf-8"))


def write_metrics(path: str | Path, doc: Mapping[str, Any]) -> Path:
    """Write ``doc`` as ``metrics.json`` (`write_json`); returns the path."""
    return write_json(path, doc)


__all__ = [
    "BOOTSTRAP",
    "REGIME_COLUMNS",
    "UNKNOWN",
    "atomic_write",
    "metrics_document",
    "newey_west_t",
    "per_regime",
    "predictor_quality",
    "regime_labels",
    "write_json",
    "write_metrics",
]
