"""Walk-forward training: purged, embargoed folds and the driver that fills the store.

Folds (``make_folds``). Test blocks are consecutive ``retrain_every``-bar blocks. For the
block starting at bar ``s`` the *label cutoff* is ``c = s - embargo - 1``: a training row
``t`` is used for horizon ``h`` only if its label ends by then, ``t + h <= c``, so every
training label end is ``< s - embargo`` (embargo >= the longest horizon). The training
window starts at ``c - train_bars + 1`` (rolling) or at the first usable bar (expanding).
Its last ``val_fraction`` bars form the validation slice for early stopping; rows before
it are used for horizon h only if ``t + h`` lies before the validation slice (purge).

Driver (``WalkForward``). Per fold: fit every family on the pooled (bar, asset) rows
whose features are valid, fit the regime classifier on the same window with
``label_regimes`` targets, predict the test block, then fit the stacking meta-learner on
earlier folds' out-of-fold rows (see ``predictors.meta``) and predict the block with it.
The ``train_end`` written with every row is the last bar whose data entered training
(the largest label end used), so ``train_end + embargo < timestamp`` holds for every row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from tqdm.auto import tqdm

from envs.config_mapping import MappingConfig
from envs.data.market import MarketData
from envs.errors import ConfigError, DataError
from predictors.base import Prediction, Predictor, Targets
from predictors.features import FeatureConfig, FeaturePanel, compute_features
from predictors.labels import make_labels
from predictors.meta import MetaConfig, OOFBlock, StackingMeta
from predictors.models import make_model
from predictors.models.sequences import build_windows
from predictors.regime import REGIMES, RegimeClassifier, RegimeRuleConfig, label_regimes, regime_features

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WalkForwardConfig(MappingConfig):
    config_section: ClassVar[str] = "walk_forward"

    scheme: str = "rolling"  # rolling | expanding
    train_bars: int = 4320  # rolling training window (bars); ignored by "expanding"
    min_train_bars: int = 1440  # the first fold's training window (60 days after the features' warm-up)
    retrain_every: int = 720  # cadence = test block length (720 h ~ one month)
    embargo: int = 24  # bars between the last training label end and the test block
    val_fraction: float = 0.15  # tail of the training window used for early stopping
    max_folds: int | None = None

    def validate(self, horizons: tuple[int, ...]) -> None:
        if self.scheme not in ("rolling", "expanding"):
            raise ConfigError(f"walk_forward.scheme: expected 'rolling' or 'expanding', got {self.scheme!r}")
        if self.embargo < max(horizons):
            raise ConfigError(
                f"walk_forward.embargo: expected >= the longest horizon {max(horizons)}, got {self.embargo}"
            )
        for name in ("train_bars", "min_train_bars", "retrain_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"walk_forward.{name}: expected >= 1, got {getattr(self, name)}")
        if self.min_train_bars <= 2 * max(horizons):
            raise ConfigError(f"walk_forward.min_train_bars: expected > {2 * max(horizons)}, got {self.min_train_bars}")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ConfigError(f"walk_forward.val_fraction: expected in [0, 0.5), got {self.val_fraction}")


@dataclass(frozen=True)
class Fold:
    """Bar indices of one fold; ``test_stop`` is exclusive, everything else inclusive."""

    index: int
    train_start: int
    val_start: int  # first bar of the validation slice (== label_cutoff + 1 when none)
    label_cutoff: int  # no training label may end after this bar
    test_start: int
    test_stop: int


def make_folds(n_bars: int, config: WalkForwardConfig, horizons: tuple[int, ...], first_bar: int = 0) -> list[Fold]:
    """Folds over bars ``first_bar .. n_bars-1`` (see the module docstring)."""
    config.validate(horizons)
    folds: list[Fold] = []
    test_start = first_bar + config.min_train_bars + config.embargo
    while test_start < n_bars and (config.max_folds is None or len(folds) < config.max_folds):
        cutoff = test_start - config.embargo - 1
        start = first_bar if config.scheme == "expanding" else max(first_bar, cutoff - config.train_bars + 1)
        n_val = round(config.val_fraction * (cutoff - start + 1))
        folds.append(
            Fold(
                len(folds),
                start,
                cutoff + 1 - n_val,
                cutoff,
                test_start,
                min(test_start + config.retrain_every, n_bars),
            )
        )
        test_start += config.retrain_every
    return folds


def label_usable(t_idx: np.ndarray, h: int, fold: Fold, part: str) -> np.ndarray:
    """Rows of ``part`` ("fit" or "val") whose horizon-h label may be used for training."""
    end = t_idx + h
    if part == "fit":
        return (t_idx >= fold.train_start) & (end < fold.val_start) & (end <= fold.label_cutoff)
    if part == "val":
        return (t_idx >= fold.val_start) & (end <= fold.label_cutoff)
    raise ValueError(part)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Pooled rows (bar, asset) with valid features, their labels and regime targets."""

    values: np.ndarray  # (T, N, F) features
    regime_values: np.ndarray  # (T, N, F') regime classifier inputs
    t_idx: np.ndarray  # (n,)
    a_idx: np.ndarray  # (n,)
    up: np.ndarray  # (n, H)
    fwd: np.ndarray  # (n, H)
    regime_target: np.ndarray  # (n,) int8, -1 unknown
    horizons: tuple[int, ...]


def make_dataset(
    values: np.ndarray,
    valid: np.ndarray,
    up: np.ndarray,
    fwd: np.ndarray,
    label_horizons: tuple[int, ...],
    horizons: tuple[int, ...],
    regime_values: np.ndarray,
    regime_labels: np.ndarray,
) -> Dataset:
    """Rows where ``valid``; labels re-ordered to ``horizons`` (a subset of ``label_horizons``)."""
    missing = [h for h in horizons if h not in label_horizons]
    if missing:
        raise ConfigError(f"horizons: {missing} have no labels; labels cover {list(label_horizons)}")
    cols = [label_horizons.index(h) for h in horizons]
    t_idx, a_idx = np.nonzero(valid)
    if t_idx.size == 0:
        raise DataError("features: no (bar, asset) row has every feature defined; is the history too short?")
    return Dataset(
        values,
        regime_values,
        t_idx,
        a_idx,
        up[t_idx, a_idx][:, cols],
        fwd[t_idx, a_idx][:, cols],
        regime_labels[t_idx, a_idx].astype(np.int8),
        tuple(horizons),
    )


def dataset_from_market(
    market: MarketData,
    horizons: tuple[int, ...] = (1, 4, 24),
    round_trip_fee: float = 0.008,
    feature_config: FeatureConfig | None = None,
    regime_rule: RegimeRuleConfig | None = None,
) -> tuple[Dataset, FeaturePanel, np.ndarray]:
    """Features, labels and rule regimes of ``market`` as pooled rows; also the panel and
    the ``(T, N)`` rule regime labels (for reports)."""
    panel = compute_features(market, feature_config or FeatureConfig())
    labels = make_labels(market, horizons, round_trip_fee)
    rule = label_regimes(market, regime_rule or RegimeRuleConfig())
    ds = make_dataset(
        panel.values, panel.valid(), labels.up, labels.fwd_return, labels.horizons, horizons,
        regime_features(panel), rule,
    )  # fmt: skip
    return ds, panel, rule


@dataclass(frozen=True)
class ModelSpec:
    """What to train: families with their params, the meta-learner and regime classifier."""

    families: tuple[str, ...]
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    meta: MetaConfig = field(default_factory=MetaConfig)
    regime_params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass
class FoldResult:
    fold: Fold
    train_end: int  # last bar whose data entered training
    oof: OOFBlock
    importances: dict[str, np.ndarray]
    seconds: dict[str, float]
    regime_train_end: int = -1  # last bar whose regime label entered the regime classifier
    models: dict[str, Any] | None = None  # kept only when asked (tests, registry)


def inputs(ds: Dataset, rows: np.ndarray, window: int) -> np.ndarray:
    """Model inputs for pooled rows: ``(n, F)`` tabular or ``(n, window, F)`` sequences."""
    if window == 1:
        return ds.values[ds.t_idx[rows], ds.a_idx[rows]]
    return build_windows(ds.values, ds.t_idx[rows], ds.a_idx[rows], window)


def targets(ds: Dataset, rows: np.ndarray, fold: Fold, part: str) -> tuple[Targets, int]:
    """Targets with NaN where a label is not usable in this part; and the largest label end used."""
    y: Targets = {}
    last = -1
    t = ds.t_idx[rows]
    for j, h in enumerate(ds.horizons):
        ok = label_usable(t, h, fold, part) & np.isfinite(ds.up[rows, j])
        y[h] = (np.where(ok, ds.up[rows, j], np.nan), np.where(ok, ds.fwd[rows, j], np.nan))
        if ok.any():
            last = max(last, int(t[ok].max()) + h)
    return y, last


class WalkForward:
    """Runs the folds in order; keeps the out-of-fold history the meta-learner needs."""

    def __init__(self, ds: Dataset, spec: ModelSpec, progress: bool = False, keep_models: bool = False) -> None:
        self.ds, self.spec, self.progress, self.keep_models = ds, spec, progress, keep_models
        self.history: list[OOFBlock] = []

    def fit_fold(self, fold: Fold, bar: Any = None) -> FoldResult:
        ds, spec = self.ds, self.spec
        t = ds.t_idx
        fit_rows = np.nonzero((t >= fold.train_start) & (t < fold.val_start))[0]
        val_rows = np.nonzero((t >= fold.val_start) & (t <= fold.label_cutoff))[0]
        test_rows = np.nonzero((t >= fold.test_start) & (t < fold.test_stop))[0]
        y_fit, end_fit = targets(ds, fit_rows, fold, "fit")
        y_val, end_val = targets(ds, val_rows, fold, "val")
        train_end = max(end_fit, end_val)
        if train_end < 0:
            raise DataError(
                f"fold {fold.index}: no labelled training rows in bars {fold.train_start}..{fold.label_cutoff}"
            )
        models: dict[str, Any] = {}
        base: dict[str, Prediction] = {}
        importances: dict[str, np.ndarray] = {}
        seconds: dict[str, float] = {}
        cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for fam in spec.families:
            t0 = time.perf_counter()
            model: Predictor = make_model(fam, ds.horizons, spec.seed, spec.params.get(fam))
            if model.window not in cache:
                w = model.window
                cache[w] = (inputs(ds, fit_rows, w), inputs(ds, val_rows, w), inputs(ds, test_rows, w))
            X_fit, X_val, X_test = cache[model.window]
            model.fit(X_fit, y_fit, X_val, y_val)
            base[fam] = model.predict(X_test)
            imp = model.feature_importances()
            if imp is not None:
                importances[fam] = imp
            models[fam] = model
            seconds[fam] = time.perf_counter() - t0
            if bar is not None:
                bar.update(1)
        cache.clear()
        regime, regime_end = self._regime(fold, models, seconds)
        if bar is not None:
            bar.update(1)
        t0 = time.perf_counter()
        meta = StackingMeta(spec.families, ds.horizons, spec.meta).fit(self.history, fold.label_cutoff)
        oof = OOFBlock(fold.index, t[test_rows], ds.a_idx[test_rows], base, regime, ds.up[test_rows], ds.fwd[test_rows])
        if meta.fitted:
            oof.meta = meta.predict(base, regime)
            oof.meta_label_end = meta.label_end
        models["meta"] = meta
        seconds["meta"] = time.perf_counter() - t0
        if bar is not None:
            bar.update(1)
        self.history.append(oof)
        return FoldResult(fold, train_end, oof, importances, seconds, regime_end, models if self.keep_models else None)

    def _regime(self, fold: Fold, models: dict[str, Any], seconds: dict[str, float]) -> tuple[np.ndarray, int]:
        ds = self.ds
        t0 = time.perf_counter()
        t = ds.t_idx
        train = np.nonzero((t >= fold.train_start) & (t <= fold.label_cutoff) & (ds.regime_target >= 0))[0]
        test = np.nonzero((t >= fold.test_start) & (t < fold.test_stop))[0]
        Xr = ds.regime_values
        if train.size == 0:  # rule still in warm-up over the whole window: no information
            log.warning("fold %d: no regime labels in the training window, uniform regime probabilities", fold.index)
            seconds["regime"] = time.perf_counter() - t0
            return np.full((test.size, len(REGIMES)), 1.0 / len(REGIMES)), fold.train_start
        clf = RegimeClassifier(seed=self.spec.seed, **dict(self.spec.regime_params))
        clf.fit(Xr[t[train], ds.a_idx[train]], ds.regime_target[train])
        models["regime"] = clf
        seconds["regime"] = time.perf_counter() - t0
        return clf.predict_proba(Xr[t[test], ds.a_idx[test]]), int(t[train].max())

    def run(self, folds: list[Fold]) -> list[FoldResult]:
        total = len(folds) * (len(self.spec.families) + 2)
        with tqdm(total=total, desc="walk-forward (folds x models)", disable=not self.progress) as bar:
            results = []
            for i, f in enumerate(folds):
                keep, self.keep_models = self.keep_models, self.keep_models or i == len(folds) - 1
                results.append(self.fit_fold(f, bar))  # the last fold's models are always kept
                self.keep_models = keep
            return results
