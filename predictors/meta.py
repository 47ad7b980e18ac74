"""Stacking meta-learner: per horizon, a logistic regression (p_up) and a ridge regression
(exp_return) over the five families' out-of-fold outputs plus regime probabilities.

It is trained only on out-of-fold (test-block) predictions of EARLIER folds, and only on
rows whose label ends before the current fold's test start minus the embargo, so the meta
prediction at fold k uses nothing the base models of fold k could not see either. The first
fold has no out-of-fold history and therefore no meta rows; a later fold gets meta rows for
a horizon once at least ``min_rows`` labelled history rows (with both classes) exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from envs.config_mapping import MappingConfig
from predictors.base import Prediction


@dataclass(frozen=True)
class MetaConfig(MappingConfig):
    config_section: ClassVar[str] = "predictor.meta"

    min_rows: int = 500  # labelled out-of-fold rows needed before a horizon gets a meta model
    C: float = 0.1  # inverse L2 strength of the logistic regression
    alpha: float = 10.0  # ridge penalty (on standardised inputs)
    use_regimes: bool = True


@dataclass
class OOFBlock:
    """One fold's out-of-fold outputs on its test rows (what the meta-learner learns from)."""

    fold: int
    t_idx: np.ndarray  # (n,) bar index
    a_idx: np.ndarray  # (n,) asset index
    base: dict[str, Prediction]  # family -> outputs on these rows
    regime: np.ndarray  # (n, 4) regime probabilities
    up: np.ndarray  # (n, H) labels (NaN unknown); used only once their label end is past
    fwd: np.ndarray  # (n, H)
    meta: Prediction | None = None
    meta_label_end: int = -1  # last bar whose label the meta model used (-1: none)
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def meta_features(
    block_base: dict[str, Prediction],
    regime: np.ndarray,
    j: int,
    families: tuple[str, ...],
    use_regimes: bool,
) -> np.ndarray:
    """Inputs for horizon column ``j``: logit p_up and exp_return per family (+ regimes)."""
    cols = []
    for fam in families:
        p = np.clip(block_base[fam].p_up[:, j], 1e-4, 1 - 1e-4)
        cols += [np.log(p / (1 - p)), block_base[fam].exp_return[:, j]]
    X = np.column_stack(cols)
    return np.hstack([X, regime]) if use_regimes else X


@dataclass
class _Head:
    scaler: StandardScaler
    clf: LogisticRegression
    reg: Ridge


class StackingMeta:
    """Per-horizon stacking heads fitted on earlier folds' out-of-fold rows."""

    def __init__(self, families: tuple[str, ...], horizons: tuple[int, ...], config: MetaConfig) -> None:
        self.families, self.horizons, self.config = families, horizons, config
        self.heads: dict[int, _Head | None] = {}
        self.label_end = -1

    def fit(self, history: list[OOFBlock], label_cutoff: int) -> StackingMeta:
        """Fit on rows of ``history`` whose label ends at or before ``label_cutoff``."""
        for j, h in enumerate(self.horizons):
            Xs, ups, rets, ends = [], [], [], []
            for b in history:
                ok = (b.t_idx + h <= label_cutoff) & np.isfinite(b.up[:, j]) & np.isfinite(b.fwd[:, j])
                if ok.any():
                    sub = {f: Prediction(p.horizons, p.p_up[ok], p.exp_return[ok]) for f, p in b.base.items()}
                    Xs.append(meta_features(sub, b.regime[ok], j, self.families, self.config.use_regimes))
                    ups.append(b.up[ok, j])
                    rets.append(b.fwd[ok, j])
                    ends.append(int(b.t_idx[ok].max()) + h)
            n = sum(len(u) for u in ups)
            y_up = np.concatenate(ups) if ups else np.zeros(0)
            if n < self.config.min_rows or np.unique(y_up).size < 2:
                self.heads[h] = None
                continue
            X = np.concatenate(Xs)
            scaler = StandardScaler().fit(X)
            Z = scaler.transform(X)
            clf = LogisticRegression(C=self.config.C, max_iter=500).fit(Z, y_up)
            reg = Ridge(alpha=self.config.alpha).fit(Z, np.concatenate(rets))
            self.heads[h] = _Head(scaler, clf, reg)
            self.label_end = max(self.label_end, *ends)
        return self

    @property
    def fitted(self) -> bool:
        return any(head is not None for head in self.heads.values())

    def predict(self, base: dict[str, Prediction], regime: np.ndarray) -> Prediction:
        """Meta outputs; NaN columns for horizons without a meta model yet."""
        n = regime.shape[0]
        p = np.full((n, len(self.horizons)), np.nan)
        r = np.full((n, len(self.horizons)), np.nan)
        for j, h in enumerate(self.horizons):
            head = self.heads.get(h)
            if head is None or n == 0:
                continue
            Z = head.scaler.transform(meta_features(base, regime, j, self.families, self.config.use_regimes))
            p[:, j] = head.clf.predict_proba(Z)[:, 1]
            r[:, j] = head.reg.predict(Z)
        return Prediction(self.horizons, p, r)

    def predict_array(self, x: np.ndarray) -> np.ndarray:
        """Array form for serving (MLflow pyfunc): ``x`` holds, per family in order, its p_up
        (n, H) and exp_return (n, H) columns, then the 4 regime probabilities; returns
        ``[p_up (n, H), exp_return (n, H)]``."""
        H = len(self.horizons)
        base = {}
        for k, fam in enumerate(self.families):
            block = x[:, 2 * H * k : 2 * H * (k + 1)]
            base[fam] = Prediction(self.horizons, block[:, :H], block[:, H:])
        pred = self.predict(base, x[:, 2 * H * len(self.families) :])
        return np.hstack([pred.p_up, pred.exp_return])

    def coefficients(self) -> dict[int, np.ndarray]:
        """Logistic coefficients per horizon (for the report: which family the stack trusts)."""
        return {h: head.clf.coef_[0].copy() for h, head in self.heads.items() if head is not None}
