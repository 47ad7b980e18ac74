"""From a config to the inputs of training and evaluation: market, prediction store, periods.

- `prediction_store`: the walk-forward predictions for a market, cached under
  ``cache_dir/predictions/<key>`` where the key hashes the market's bars and the predictor
  config (a cached store is reused only when both match). Built atomically (temporary
  folder, then rename). The (fold x model) tasks run through ``cfg["executor"]`` (serial when
  absent; neither the store's bits nor its key depend on it); a failed build leaves its
  completed tasks under ``cache_dir/tasks``, so the next attempt fits only the rest.
- `policy_periods`: the bars a policy trains on: from the first bar with a meta-learner
  prediction to the market's end, less the validation slice at the end.
- `check_no_overlap`: the evaluation period must start after everything the run saw
  (its market's last bar, which bounds the policy's training period and every predictor
  fold's training window); otherwise `PeriodOverlapError` names both periods.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from envs.config_mapping import HYDRA_KEYS
from envs.data.align import iso
from envs.data.market import MarketData
from envs.errors import ConfigError, DataError, KrakenRLError
from predictors.pipeline import run_walk_forward
from predictors.store import load_signals, write_store

PREDICTOR_KEYS = ("horizons", "round_trip_fee", "features", "regime_rule", "walk_forward", "predictor")
STORE_FORMAT = 1


class PeriodOverlapError(KrakenRLError):
    """The evaluation period overlaps what the policy or its predictors were trained on."""


@dataclass(frozen=True)
class Period:
    """Bars ``start..end`` (inclusive) of a market, with their ISO times."""

    start: int
    end: int
    start_iso: str
    end_iso: str

    @classmethod
    def of(cls, market: MarketData, start: int, end: int) -> Period:
        return cls(int(start), int(end), iso(int(market.timestamps[start])), iso(int(market.timestamps[end])))

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start_iso, "end": self.end_iso}


def market_digest(market: MarketData) -> str:
    """SHA-256 over the bars (timestamps, OHLCV, tradable) and the asset names."""
    h = hashlib.sha256()
    h.update(json.dumps(list(market.assets)).encode())
    for arr in (market.timestamps, market.open, market.high, market.low, market.close, market.volume,
                market.tradable):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def store_key(market: MarketData, cfg: Mapping[str, Any]) -> str:
    """Cache key of a prediction store: the market digest and the predictor config.

    Hydra's ``_target_`` keys name the config classes, not values: they are left out, so a
    store cached before the configs carried them keeps its key.
    """
    sub = {k: _without_hydra_keys(cfg.get(k)) for k in PREDICTOR_KEYS}
    text = json.dumps({"format": STORE_FORMAT, "market": market_digest(market), "config": sub}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _without_hydra_keys(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {k: _without_hydra_keys(v) for k, v in node.items() if k not in HYDRA_KEYS}
    if isinstance(node, list | tuple):
        return [_without_hydra_keys(v) for v in node]
    return node


@dataclass
class StoreInfo:
    folder: Path
    key: str
    folds: list[dict[str, Any]]
    cached: bool
    fit_seconds: float

    @property
    def predictor_train_end(self) -> str:
        """ISO time of the last bar whose label entered any fold's training."""
        return max(f["train_end"] for f in self.folds)


def prediction_store(market: MarketData, cfg: Mapping[str, Any], cache_dir: str | Path,
                     progress: bool = False) -> StoreInfo:
    """The walk-forward prediction store for ``market`` (reused from the cache when the key matches)."""
    key = store_key(market, cfg)
    folder = Path(cache_dir) / "predictions" / key
    meta_path = folder / "store.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        return StoreInfo(folder, key, meta["folds"], True, 0.0)
    run = run_walk_forward(market, cfg, progress=progress, cache_dir=Path(cache_dir) / "tasks")
    tmp = folder.with_name(f"{key}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_store(run.results, market, tmp)

    def ts(i: int) -> str:
        return iso(int(market.timestamps[i]))

    folds = [
        {"fold": r.fold.index, "train_start": ts(r.fold.train_start), "train_end": ts(r.train_end),
         "test_start": ts(r.fold.test_start), "test_end": ts(r.fold.test_stop - 1)}
        for r in run.results
    ]
    meta = {"key": key, "folds": folds, "fit_seconds": run.fit_seconds, "n_bars": market.n_bars,
            "assets": list(market.assets), "config": {k: cfg.get(k) for k in PREDICTOR_KEYS}}
    (tmp / "store.json").write_text(json.dumps(meta, indent=2, default=str))
    if folder.exists():  # a concurrent run finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(folder)
    return StoreInfo(folder, key, folds, False, run.fit_seconds)


def store_signals(store: StoreInfo, market: MarketData, horizons: Sequence[int]) -> tuple[np.ndarray, tuple[str, ...]]:
    """(T, N, K) meta-learner p_up / expected return per horizon, then the regime probabilities."""
    return load_signals(store.folder, market, models=("meta",), horizons=tuple(int(h) for h in horizons))


def first_signal_bar(signals: np.ndarray) -> int:
    """First bar where any asset has every signal channel (the meta-learner's first prediction)."""
    ok = np.isfinite(signals).all(axis=2).any(axis=1)
    if not ok.any():
        raise DataError("prediction store: no bar has a complete meta-learner prediction; use more data")
    return int(np.argmax(ok))


def policy_periods(market: MarketData, signals: np.ndarray, val_fraction: float,
                   min_hours: int) -> tuple[Period, Period | None]:
    """(training period, validation slice) of a policy on ``market`` (see the module docstring)."""
    first = first_signal_bar(signals)
    last = market.n_bars - 1
    n_val = round(val_fraction * (last - first + 1))
    train_end = last - n_val
    if train_end - first + 1 < min_hours:
        raise ConfigError(
            f"training period {iso(int(market.timestamps[first]))} .. {iso(int(market.timestamps[train_end]))} "
            f"has {train_end - first + 1} hours with predictions; need at least {min_hours} "
            "(agent.episode_hours): use more data, smaller walk-forward windows or a shorter episode"
        )
    val = Period.of(market, train_end + 1, last) if n_val > 0 else None
    return Period.of(market, first, train_end), val


@dataclass(frozen=True)
class TrainPeriod:
    """What a run saw: written to ``train_period.json`` in the run folder."""

    start: str  # first bar of the training market
    end: str  # last bar of the training market: nothing after it entered training
    policy_start: str
    policy_end: str
    validation_start: str | None
    validation_end: str | None
    predictor_train_end: str
    store_key: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def read(cls, run_dir: Path) -> TrainPeriod:
        path = Path(run_dir) / "train_period.json"
        if not path.is_file():
            raise ConfigError(f"run={run_dir}: no train_period.json; is this a scripts/train.py run folder?")
        return cls(**json.loads(path.read_text()))


def utc(value: str, name: str) -> pd.Timestamp:
    """An ISO date/time as a UTC timestamp (naive means UTC); ConfigError naming ``name`` if unreadable."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: expected an ISO date/time, got {value!r} ({exc})") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def check_no_overlap(eval_start: str, eval_end: str, period: TrainPeriod, run: str | Path) -> None:
    """Raise `PeriodOverlapError` naming both periods unless the evaluation starts after the training end.

    An evaluation entirely before the training period is refused too: its policy and
    predictors learned from the future of that period.
    """
    es, ee = utc(eval_start, "eval.start"), utc(eval_end, "eval.end")
    if ee < es:
        raise ConfigError(f"eval.end {eval_end} is before eval.start {eval_start}")
    end = utc(period.end, "train_period.end")
    if es <= end:  # overlapping, or before: a policy trained on later data is not held out either
        raise PeriodOverlapError(
            f"evaluation period {es.isoformat()} .. {ee.isoformat()} overlaps the training period "
            f"{period.start} .. {period.end} of run {run} (policy trained on {period.policy_start} .. "
            f"{period.policy_end}, predictor folds trained on labels up to {period.predictor_train_end}); "
            f"evaluate after {period.end}"
        )


__all__ = [
    "Period",
    "PeriodOverlapError",
    "StoreInfo",
    "TrainPeriod",
    "check_no_overlap",
    "first_signal_bar",
    "market_digest",
    "policy_periods",
    "prediction_store",
    "store_key",
    "store_signals",
]
