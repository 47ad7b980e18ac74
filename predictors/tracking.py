"""Scores of out-of-fold predictions and MLflow tracking (local sqlite store, no server).

Metrics per (model, horizon), on rows whose label is known: ``auc`` (ROC AUC of p_up vs
the up label), ``log_loss``, ``brier``, ``hit_rate`` (share of rows where the sign of
exp_return matches the sign of the realised forward return, zero returns skipped) and
``ic`` (Spearman rank correlation of exp_return with the realised forward return).

MLflow: ``sqlite:///<outdir>/mlflow.db`` is both the tracking and the registry store
(the model registry needs a database; mlflow 3 deprecates the file store), artifacts go
to ``<outdir>/mlartifacts``. Open the UI with
``mlflow ui --backend-store-uri sqlite:///<outdir>/mlflow.db``. `log_walk_forward` records
one walk-forward (config, pooled and per-fold metrics, plots, the last fold's models): the
run ``scripts/train_predictors.py`` writes.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from predictors.walk_forward import FoldResult

log = logging.getLogger(__name__)

METRICS = ("auc", "log_loss", "brier", "hit_rate", "ic", "n")


def score(p_up: np.ndarray, exp_return: np.ndarray, up: np.ndarray, fwd: np.ndarray) -> dict[str, float]:
    """The five metrics (plus ``n``) on rows with a known label; NaN when undefined."""
    ok = np.isfinite(up) & np.isfinite(fwd) & np.isfinite(p_up) & np.isfinite(exp_return)
    p, r, y, f = p_up[ok], exp_return[ok], up[ok], fwd[ok]
    out = dict.fromkeys(METRICS, float("nan"))
    out["n"] = float(ok.sum())
    if ok.sum() < 2:
        return out
    pc = np.clip(p, 1e-7, 1 - 1e-7)
    if np.unique(y).size == 2:
        out["auc"] = float(roc_auc_score(y, p))
        out["log_loss"] = float(log_loss(y, pc, labels=[0.0, 1.0]))
    out["brier"] = float(brier_score_loss(y, p)) if np.unique(y).size == 2 else float(np.mean((p - y) ** 2))
    moved = f != 0
    if moved.any():
        out["hit_rate"] = float(np.mean(np.sign(r[moved]) == np.sign(f[moved])))
    if np.std(r) > 0 and np.std(f) > 0:
        out["ic"] = float(spearmanr(r, f).statistic)
    return out


def _outputs(result: FoldResult) -> dict[str, Any]:
    outs = dict(result.oof.base)
    if result.oof.meta is not None:
        outs["meta"] = result.oof.meta
    return outs


def evaluate(results: list[FoldResult]) -> dict[str, Any]:
    """``{"overall": {model: {h: metrics}}, "folds": [{fold, model, horizon, **metrics}]}``."""
    per_fold: list[dict[str, Any]] = []
    pooled: dict[tuple[str, int], list[tuple[np.ndarray, ...]]] = {}
    for r in results:
        b = r.oof
        for model, pred in _outputs(r).items():
            for j, h in enumerate(pred.horizons):
                cols = (pred.p_up[:, j], pred.exp_return[:, j], b.up[:, j], b.fwd[:, j])
                per_fold.append({"fold": r.fold.index, "model": model, "horizon": h, **score(*cols)})
                pooled.setdefault((model, h), []).append(cols)
    overall: dict[str, dict[str, dict[str, float]]] = {}
    for (model, h), cols_list in pooled.items():
        cat = [np.concatenate([c[k] for c in cols_list]) for k in range(4)]
        overall.setdefault(model, {})[str(h)] = score(*cat)
    return {"overall": overall, "folds": per_fold}


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"a.b.c": "value"}`` for MLflow params."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out


def importance_table(results: list[FoldResult], names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Mean normalised importance per family and feature over folds."""
    table: dict[str, dict[str, float]] = {}
    fams = sorted({f for r in results for f in r.importances})
    for fam in fams:
        arr = np.mean([r.importances[fam] for r in results if fam in r.importances], axis=0)
        table[fam] = {n: float(v) for n, v in zip(names, arr, strict=True)}
    return table


class _PyfuncPredictor:
    """Built lazily so importing this module does not import mlflow.pyfunc."""

    @staticmethod
    def make(model: Any) -> Any:
        import mlflow.pyfunc

        class PredictorModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
            """Serves a fitted predictor: input rows -> [p_up per horizon, exp_return per horizon]."""

            _skip_type_hint_validation = True  # inputs are numpy arrays, not MLflow's typed lists

            def __init__(self, predictor: Any) -> None:
                self.predictor = predictor

            def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
                x = np.asarray(model_input, dtype=np.float64)
                if hasattr(self.predictor, "predict_array"):  # stacking meta-learner
                    return self.predictor.predict_array(x)
                if hasattr(self.predictor, "predict_proba"):  # regime classifier
                    return self.predictor.predict_proba(x)
                pred = self.predictor.predict(x)
                return np.hstack([pred.p_up, pred.exp_return])

        return PredictorModel(model)


class Tracker:
    """One MLflow run in a local sqlite store under ``outdir``."""

    def __init__(self, outdir: Path, experiment: str = "krakenrl-predictors", run_name: str | None = None) -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        self.outdir = Path(outdir).resolve()
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.uri = f"sqlite:///{self.outdir / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        exp = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (
            exp.experiment_id
            if exp is not None
            else self.client.create_experiment(experiment, artifact_location=(self.outdir / "mlartifacts").as_uri())
        )
        self.run_id = self.client.create_run(self.experiment_id, run_name=run_name).info.run_id
        self._mlflow = mlflow

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in flatten(params).items()]
        for s in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[s : s + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if np.isfinite(v)]
        for s in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[s : s + 500])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    @contextlib.contextmanager
    def _active(self) -> Iterator[None]:
        """The fluent API (needed by ``log_model``) pointed at this store, restored after."""
        mlflow = self._mlflow
        old_t, old_r = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        try:
            with mlflow.start_run(run_id=self.run_id), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # type-hint advice on PythonModel
                yield
        finally:
            mlflow.set_tracking_uri(old_t)
            mlflow.set_registry_uri(old_r)

    def log_models(self, models: Mapping[str, Any], register_prefix: str | None = "krakenrl") -> dict[str, str]:
        """Log each fitted model as a pyfunc model; register it as ``<prefix>-<name>``."""
        import mlflow.pyfunc

        uris: dict[str, str] = {}
        with self._active():
            for name, model in models.items():
                info = mlflow.pyfunc.log_model(
                    name=name,
                    python_model=_PyfuncPredictor.make(model),
                    pip_requirements=["numpy", "scikit-learn", "lightgbm", "xgboost", "torch"],
                    registered_model_name=f"{register_prefix}-{name}" if register_prefix else None,
                )
                uris[name] = info.model_uri
        return uris

    def end(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)


FOLD_METRICS = ("auc", "log_loss", "brier", "hit_rate", "ic")
WALK_FORWARD_ARTIFACTS = ("metrics.json", "auc_per_fold.png", "feature_importance.csv", "feature_importance.json",
                          "feature_importance.png")


def log_walk_forward(out_dir: Path, summary: Mapping[str, Any], results: list[FoldResult],
                     params: Mapping[str, Any], *, experiment: str = "krakenrl-predictors",
                     log_models: bool = True, register: bool = True) -> dict[str, str]:
    """One MLflow run of a walk-forward (``scripts/train_predictors.py``) in ``out_dir/mlflow.db``.

    Logs ``params`` (the resolved config), the pooled metrics (``<model>.h<h>.<metric>``), the
    per-fold metrics (``fold.<model>.h<h>.<metric>``, step = fold), the regime scores, the
    files of ``WALK_FORWARD_ARTIFACTS`` found in ``out_dir``, and, when ``log_models``, the last
    fold's models (registered under the ``krakenrl`` prefix when ``register``). Returns
    ``{"tracking_uri", "run_id"}`` for metrics.json.
    """
    tracker = Tracker(out_dir, experiment=experiment, run_name=out_dir.name)
    tracker.log_params(params)
    overall = {
        f"{m}.h{h}.{k}": v
        for m, per_h in summary["overall"].items()
        for h, s in per_h.items()
        for k, v in s.items()
    }
    tracker.log_metrics(overall)
    for row in summary["folds"]:
        per_fold = {f"fold.{row['model']}.h{row['horizon']}.{k}": row[k] for k in FOLD_METRICS}
        tracker.log_metrics(per_fold, step=int(row["fold"]))
    tracker.log_metrics({f"regime.{k}": v for k, v in summary["regime"].items()})
    for name in WALK_FORWARD_ARTIFACTS:
        if (out_dir / name).is_file():
            tracker.log_artifact(out_dir / name)
    if log_models and results[-1].models is not None:
        tracker.log_models(results[-1].models, "krakenrl" if register else None)
    tracker.end()
    return {"tracking_uri": tracker.uri, "run_id": tracker.run_id}
