"""Walk-forward training: purged, embargoed folds and the driver that fills the store.

Folds (``make_folds``). Test blocks are consecutive ``retrain_every``-bar blocks. For the
block starting at bar ``s`` the *label cutoff* is ``c = s - embargo - 1``: a training row
``t`` is used for horizon ``h`` only if its label ends by then, ``t + h <= c``, so every
training label end is ``< s - embargo`` (embargo >= the longest horizon). The training
window starts at ``c - train_bars + 1`` (rolling) or at the first usable bar (expanding).
Its last ``val_fraction`` bars form the validation slice for early stopping; rows before
it are used for horizon h only if ``t + h`` lies before the validation slice (purge).

Driver (``WalkForward``). Per fold, every family and the regime classifier (fitted on the
same window with ``label_regimes`` targets) are independent tasks: each fits on the pooled
(bar, asset) rows whose features are valid and predicts the test block. They run through the
configured executor (``krakenrl.parallel``: serial, joblib or Ray; the same bits whichever).
Then, serially and in fold order, the stacking meta-learner of each fold is fitted on earlier
folds' out-of-fold rows (see ``predictors.meta``) and predicts the block.
The ``train_end`` written with every row is the last bar whose data entered training
(the largest label end used), so ``train_end + embargo < timestamp`` holds for every row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from envs.config_mapping import MappingConfig
from envs.data.market import MarketData
from envs.errors import ConfigError, DataError
from krakenrl.parallel import ResultCache, RunSummary, Task, run_tasks
from predictors.base import Predictor, Targets
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


@dataclass
class ModelFit:
    """One task's output: a family (or the regime classifier) fitted on one fold, predicting its test rows."""

    output: Any  # Prediction (family) or (n, 4) regime probabilities
    importance: np.ndarray | None
    train_end: int  # last bar whose label entered this model (regime: regime label)
    seconds: float
    model: Any = None  # the fitted model, only when asked (the last fold, keep_models)


@dataclass(frozen=True)
class FoldTask:
    """What one task fits: ``name`` (a family, or ``"regime"``) on ``fold``. Everything random in
    it derives from ``spec.seed``, so the result does not depend on where or when it runs."""

    spec: ModelSpec
    fold: Fold
    name: str
    keep_model: bool


def fold_rows(ds: Dataset, fold: Fold) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled rows of the fit slice, the validation slice and the test block of ``fold``."""
    t = ds.t_idx
    return (
        np.nonzero((t >= fold.train_start) & (t < fold.val_start))[0],
        np.nonzero((t >= fold.val_start) & (t <= fold.label_cutoff))[0],
        np.nonzero((t >= fold.test_start) & (t < fold.test_stop))[0],
    )


def fold_train_end(ds: Dataset, fold: Fold) -> int:
    """The last bar whose label enters the fold's families; DataError when there is none."""
    fit_rows, val_rows, _ = fold_rows(ds, fold)
    train_end = max(targets(ds, fit_rows, fold, "fit")[1], targets(ds, val_rows, fold, "val")[1])
    if train_end < 0:
        raise DataError(f"fold {fold.index}: no labelled training rows in bars {fold.train_start}..{fold.label_cutoff}")
    return train_end


def fit_family(ds: Dataset, task: FoldTask) -> ModelFit:
    """Fit family ``task.name`` on the fold's training window; predict its test block."""
    t0 = time.perf_counter()
    fold, spec = task.fold, task.spec
    fit_rows, val_rows, test_rows = fold_rows(ds, fold)
    y_fit, end_fit = targets(ds, fit_rows, fold, "fit")
    y_val, end_val = targets(ds, val_rows, fold, "val")
    model: Predictor = make_model(task.name, ds.horizons, spec.seed, spec.params.get(task.name))
    w = model.window
    model.fit(inputs(ds, fit_rows, w), y_fit, inputs(ds, val_rows, w), y_val)
    pred = model.predict(inputs(ds, test_rows, w))
    imp = model.feature_importances()
    return ModelFit(pred, imp, max(end_fit, end_val), time.perf_counter() - t0, model if task.keep_model else None)


def fit_regime(ds: Dataset, task: FoldTask) -> ModelFit:
    """Fit the regime classifier on the fold's training window (rule labels); predict its test block."""
    t0 = time.perf_counter()
    fold = task.fold
    t = ds.t_idx
    train = np.nonzero((t >= fold.train_start) & (t <= fold.label_cutoff) & (ds.regime_target >= 0))[0]
    test = np.nonzero((t >= fold.test_start) & (t < fold.test_stop))[0]
    Xr = ds.regime_values
    if train.size == 0:  # rule still in warm-up over the whole window: no information
        log.warning("fold %d: no regime labels in the training window, uniform regime probabilities", fold.index)
        proba = np.full((test.size, len(REGIMES)), 1.0 / len(REGIMES))
        return ModelFit(proba, None, fold.train_start, time.perf_counter() - t0)
    clf = RegimeClassifier(seed=task.spec.seed, **dict(task.spec.regime_params))
    clf.fit(Xr[t[train], ds.a_idx[train]], ds.regime_target[train])
    proba = clf.predict_proba(Xr[t[test], ds.a_idx[test]])
    return ModelFit(proba, None, int(t[train].max()), time.perf_counter() - t0, clf if task.keep_model else None)


def fit_task(ds: Dataset, task: FoldTask) -> ModelFit:
    """The executor's task function (module level, so workers import it by name)."""
    return fit_regime(ds, task) if task.name == "regime" else fit_family(ds, task)


def dataset_digest(ds: Dataset) -> str:
    """SHA-256 over every array and the horizons of ``ds`` (the result cache's namespace)."""
    h = hashlib.sha256(repr(ds.horizons).encode())
    for arr in (ds.values, ds.regime_values, ds.t_idx, ds.a_idx, ds.up, ds.fwd, ds.regime_target):
        h.update(repr((arr.shape, arr.dtype.str)).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


class WalkForward:
    """Fits every fold's families and regime classifier as independent tasks (through the
    executor), then the stacking meta-learner fold by fold, in order, on the out-of-fold history."""

    CACHE_FORMAT = 1  # bump when a task's result changes meaning: older cached results are ignored

    def __init__(self, ds: Dataset, spec: ModelSpec, progress: bool = False, keep_models: bool = False) -> None:
        self.ds, self.spec, self.progress, self.keep_models = ds, spec, progress, keep_models
        self.history: list[OOFBlock] = []
        self.summary: RunSummary | None = None

    def tasks(self, folds: list[Fold]) -> list[Task]:
        """(fold x family) and (fold x regime) tasks; the last fold's models are always kept."""
        out = []
        for i, f in enumerate(folds):
            keep = self.keep_models or i == len(folds) - 1
            for name in (*self.spec.families, "regime"):
                key = f"{f!r}/{name}/keep={keep}"
                out.append(Task(key, f"fold {f.index} / {name}", FoldTask(self.spec, f, name, keep)))
        return out

    def cache(self, folder: str | Path) -> ResultCache:
        """The result cache of this dataset and spec under ``folder``."""
        spec = json.dumps(asdict(self.spec), sort_keys=True, default=str)
        text = f"{self.CACHE_FORMAT}/{dataset_digest(self.ds)}/{spec}"
        return ResultCache(folder, hashlib.sha256(text.encode()).hexdigest()[:24])

    def run(self, folds: list[Fold], executor: Any = None, cache_dir: str | Path | None = None) -> list[FoldResult]:
        """Every fold's results in fold order. ``executor``: an `ExecutorConfig`, its mapping or
        name (None: serial); ``cache_dir``: keep completed tasks there until the run succeeds."""
        train_ends = [fold_train_end(self.ds, f) for f in folds]  # fail fast, before any fitting
        cache = self.cache(cache_dir) if cache_dir is not None else None
        tasks = self.tasks(folds)
        fits, self.summary = run_tasks(fit_task, tasks, executor, shared=self.ds, cache=cache,
                                       desc="walk-forward (folds x models)", progress=self.progress)
        by_fold: dict[int, dict[str, ModelFit]] = {}
        for task, fit in zip(tasks, fits, strict=True):
            by_fold.setdefault(task.payload.fold.index, {})[task.payload.name] = fit
        results = [self._meta_pass(f, end, by_fold[f.index]) for f, end in zip(folds, train_ends, strict=True)]
        if cache is not None:
            cache.clear()  # the results are complete: the caller's outputs are the record now
        return results

    def _meta_pass(self, fold: Fold, train_end: int, fits: dict[str, ModelFit]) -> FoldResult:
        """The stacking meta-learner of ``fold`` on earlier folds' out-of-fold rows (serial, in order)."""
        ds, spec = self.ds, self.spec
        _, _, test_rows = fold_rows(ds, fold)
        base = {fam: fits[fam].output for fam in spec.families}
        importances: dict[str, np.ndarray] = {}
        for fam in spec.families:
            imp = fits[fam].importance
            if imp is not None:
                importances[fam] = imp
        seconds = {name: fit.seconds for name, fit in fits.items()}
        models: dict[str, Any] = {name: fit.model for name, fit in fits.items() if fit.model is not None}
        regime = fits["regime"]
        t0 = time.perf_counter()
        meta = StackingMeta(spec.families, ds.horizons, spec.meta).fit(self.history, fold.label_cutoff)
        oof = OOFBlock(fold.index, ds.t_idx[test_rows], ds.a_idx[test_rows], base, regime.output, ds.up[test_rows],
                       ds.fwd[test_rows])
        if meta.fitted:
            oof.meta = meta.predict(base, regime.output)
            oof.meta_label_end = meta.label_end
        models["meta"] = meta
        seconds["meta"] = time.perf_counter() - t0
        self.history.append(oof)
        keep = bool(models.keys() - {"meta"})
        return FoldResult(fold, train_end, oof, importances, seconds, regime.train_end, models if keep else None)
