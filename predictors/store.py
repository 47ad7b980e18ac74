"""The prediction store: ``predictions.parquet`` and ``regimes.parquet`` (long format).

Schema (ARCHITECTURE.md, "Prediction store"): one row per (timestamp, asset, horizon,
model) with ``p_up``, ``exp_return``, ``fold``, ``train_start``, ``train_end`` (the last
bar whose data entered training); regimes one row per (timestamp, asset). The loader
validates the schema and contract 2 (``train_end + embargo < timestamp``) and returns the
env's aligned ``(T, N, K)`` external-signal array, NaN where the store has no prediction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from envs.data.market import HOUR, MarketData
from envs.errors import DataError
from predictors.walk_forward import FoldResult

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.parquet"
REGIMES_FILE = "regimes.parquet"
MODELS = ("xgboost", "lightgbm", "random_forest", "lstm", "transformer", "meta")
REGIME_COLUMNS = ("p_trend", "p_range", "p_high_vol", "p_crash")
_TS_COLUMNS = ("timestamp", "train_start", "train_end")
PREDICTION_COLUMNS = (
    "timestamp", "asset", "horizon", "model", "p_up", "exp_return", "fold", "train_start", "train_end",
)  # fmt: skip


def _utc(seconds: np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s", utc=True).as_unit("ns")


def prediction_frame(results: list[FoldResult], timestamps: np.ndarray, assets: Sequence[str]) -> pd.DataFrame:
    """Long table of every family's and the meta-learner's out-of-fold outputs."""
    parts = []
    first_start = min((r.fold.train_start for r in results), default=0)
    for r in results:
        b = r.oof
        outputs = dict(b.base)
        if b.meta is not None:
            outputs["meta"] = b.meta
        for model, pred in outputs.items():
            is_meta = model == "meta"
            start = first_start if is_meta else r.fold.train_start
            end = max(r.train_end, b.meta_label_end) if is_meta else r.train_end
            for j, h in enumerate(pred.horizons):
                keep = np.isfinite(pred.p_up[:, j])
                n = int(keep.sum())
                parts.append(pd.DataFrame({
                    "timestamp": _utc(timestamps[b.t_idx[keep]]),
                    "asset": np.asarray(assets, dtype=object)[b.a_idx[keep]],
                    "horizon": np.full(n, h, dtype=np.int64),
                    "model": np.full(n, model, dtype=object),
                    "p_up": pred.p_up[keep, j],
                    "exp_return": pred.exp_return[keep, j],
                    "fold": np.full(n, r.fold.index, dtype=np.int64),
                    "train_start": _utc(np.full(n, timestamps[start])),
                    "train_end": _utc(np.full(n, timestamps[end])),
                }))  # fmt: skip
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in PREDICTION_COLUMNS})
    return pd.concat(parts, ignore_index=True).sort_values(["timestamp", "asset", "horizon", "model"], kind="stable")


def regime_frame(results: list[FoldResult], timestamps: np.ndarray, assets: Sequence[str]) -> pd.DataFrame:
    """Regime probabilities on every fold's test rows, with the fold's training window."""
    parts = []
    for r in results:
        b, n = r.oof, r.oof.t_idx.size
        cols = {name: b.regime[:, k] for k, name in enumerate(REGIME_COLUMNS)}
        parts.append(pd.DataFrame({
            "timestamp": _utc(timestamps[b.t_idx]),
            "asset": np.asarray(assets, dtype=object)[b.a_idx],
            **cols,
            "fold": np.full(n, r.fold.index, dtype=np.int64),
            "train_start": _utc(np.full(n, timestamps[r.fold.train_start])),
            "train_end": _utc(np.full(n, timestamps[r.regime_train_end])),
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True).sort_values(["timestamp", "asset"], kind="stable")


def write_store(results: list[FoldResult], market: MarketData, outdir: Path) -> tuple[Path, Path]:
    """Write both files into ``outdir``; returns their paths."""
    outdir.mkdir(parents=True, exist_ok=True)
    pred_path, reg_path = outdir / PREDICTIONS, outdir / REGIMES_FILE
    prediction_frame(results, market.timestamps, market.assets).to_parquet(pred_path, index=False)
    regime_frame(results, market.timestamps, market.assets).to_parquet(reg_path, index=False)
    return pred_path, reg_path


# ---------------------------------------------------------------------- reading
def _read(path: Path, required: Sequence[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: prediction store file not found")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}, expected {list(required)}")
    for col in _TS_COLUMNS:
        if col in df.columns and str(df[col].dtype) != "datetime64[ns, UTC]":
            raise DataError(f"{path}: column {col!r}: expected datetime64[ns, UTC], got {df[col].dtype}")
    return df


def _check_probabilities(path: Path, df: pd.DataFrame, cols: Sequence[str]) -> None:
    for col in cols:
        v = df[col].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(v) | (v < 0) | (v > 1)
        if bad.any():
            raise DataError(f"{path}: column {col!r}: expected probabilities in [0, 1], got {v[bad][0]!r}")


def _check_causal(path: Path, df: pd.DataFrame, embargo: int) -> None:
    """Contract 2: every row's training window plus embargo ends before its bar."""
    gap = (df["timestamp"] - df["train_end"]).dt.total_seconds().to_numpy() / HOUR
    bad = gap <= embargo
    if bad.any():
        row = df.loc[bad].iloc[0]
        raise DataError(
            f"{path}: column 'train_end': expected train_end + {embargo} h < timestamp, got train_end "
            f"{row['train_end']} for a prediction at {row['timestamp']} (model {row.get('model', 'regime')})"
        )


def read_predictions(store_dir: Path, embargo: int = 24) -> pd.DataFrame:
    """``predictions.parquet`` validated (columns, dtypes, values, uniqueness, causality)."""
    path = Path(store_dir) / PREDICTIONS
    df = _read(path, PREDICTION_COLUMNS)
    if not pd.api.types.is_integer_dtype(df["horizon"]):
        raise DataError(f"{path}: column 'horizon': expected integer hours, got {df['horizon'].dtype}")
    unknown = sorted(set(df["model"].astype(str)) - set(MODELS))
    if unknown:
        raise DataError(f"{path}: column 'model': expected values in {list(MODELS)}, got {unknown}")
    _check_probabilities(path, df, ["p_up"])
    if not np.isfinite(df["exp_return"].to_numpy(dtype=np.float64)).all():
        raise DataError(f"{path}: column 'exp_return': expected finite values, got NaN/inf")
    if df.duplicated(["timestamp", "asset", "horizon", "model"]).any():
        raise DataError(f"{path}: columns (timestamp, asset, horizon, model): expected unique keys, got duplicates")
    _check_causal(path, df, embargo)
    return df


def read_regimes(store_dir: Path, embargo: int = 24) -> pd.DataFrame:
    """``regimes.parquet`` validated like the predictions."""
    path = Path(store_dir) / REGIMES_FILE
    df = _read(path, ("timestamp", "asset", *REGIME_COLUMNS, "train_end"))
    _check_probabilities(path, df, REGIME_COLUMNS)
    if df.duplicated(["timestamp", "asset"]).any():
        raise DataError(f"{path}: columns (timestamp, asset): expected unique keys, got duplicates")
    _check_causal(path, df, embargo)
    return df


def _positions(df: pd.DataFrame, market: MarketData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bar and asset index of each row, and which rows fall inside ``market``."""
    secs = df["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[s]").astype(np.int64)
    t = np.searchsorted(market.timestamps, secs)
    t_ok = (t < market.n_bars) & (market.timestamps[np.minimum(t, market.n_bars - 1)] == secs)
    amap = {a: i for i, a in enumerate(market.assets)}
    a = df["asset"].map(amap).to_numpy(dtype=np.float64)
    ok = t_ok & np.isfinite(a)
    return t, np.nan_to_num(a).astype(np.int64), ok


def load_signals(
    store_dir: str | Path,
    market: MarketData,
    models: Sequence[str] = ("meta",),
    horizons: Sequence[int] = (1, 4, 24),
    include_regimes: bool = True,
    embargo: int = 24,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(T, N, K)`` float64 signals aligned to ``market`` (NaN where no prediction) and names.

    Channels: for each model then horizon, ``{model}_h{h}_p_up`` and ``{model}_h{h}_exp_return``;
    then (``include_regimes``) ``regime_p_trend`` .. ``regime_p_crash``. Store rows outside
    the market's bars or assets are not needed and are skipped.
    """
    store_dir = Path(store_dir)
    df = read_predictions(store_dir, embargo)
    names: list[str] = []
    T, N = market.n_bars, market.n_assets
    k_total = 2 * len(models) * len(horizons) + (len(REGIME_COLUMNS) if include_regimes else 0)
    out = np.full((T, N, k_total), np.nan)
    have = set(zip(df["model"].astype(str), df["horizon"].astype(int), strict=True))
    for model in models:
        for h in horizons:
            if (model, int(h)) not in have:
                raise DataError(
                    f"{store_dir / PREDICTIONS}: no rows for model {model!r} horizon {h}; present: {sorted(have)}"
                )
            k = len(names)
            names += [f"{model}_h{h}_p_up", f"{model}_h{h}_exp_return"]
            sub = df[(df["model"] == model) & (df["horizon"] == int(h))]
            t, a, ok = _positions(sub, market)
            out[t[ok], a[ok], k] = sub["p_up"].to_numpy(dtype=np.float64)[ok]
            out[t[ok], a[ok], k + 1] = sub["exp_return"].to_numpy(dtype=np.float64)[ok]
    if include_regimes:
        reg = read_regimes(store_dir, embargo)
        t, a, ok = _positions(reg, market)
        for col in REGIME_COLUMNS:
            out[t[ok], a[ok], len(names)] = reg[col].to_numpy(dtype=np.float64)[ok]
            names.append(f"regime_{col}")
    return out, tuple(names)
