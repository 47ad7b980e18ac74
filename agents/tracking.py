"""MLflow tracking of policy runs (local sqlite store in the run folder) and the policy as a registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from predictors.tracking import Tracker


def _policy_model() -> Any:
    """An ``mlflow.pyfunc.PythonModel`` serving the hierarchical policy's strategic level.

    Input: one flattened strategic view per row (``assets`` (N*F) then ``portfolio``);
    output: the strategic action (N+1 scores; with ``agent.prior=topk`` the tilt on the prior,
    whose settings are in the artifact's ``prior.json``). Built lazily so importing this module does
    not import mlflow.pyfunc.
    """
    import mlflow.pyfunc

    class StrategicPolicyModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
        _skip_type_hint_validation = True

        def __init__(self, algo: str, n_assets: int, n_features: int) -> None:
            self.algo, self.n_assets, self.n_features = algo, n_assets, n_features

        def load_context(self, context):  # type: ignore[no-untyped-def]
            from agents.training import frozen_policy, load_level

            self.act = frozen_policy(*load_level(Path(context.artifacts["strategic"]), self.algo))

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            x = np.asarray(model_input, dtype=np.float32)
            k = self.n_assets * self.n_features
            view = {"assets": x[:, :k].reshape(-1, self.n_assets, self.n_features), "portfolio": x[:, k:]}
            return self.act(view)

    return StrategicPolicyModel


class PolicyTracker(Tracker):
    """`predictors.tracking.Tracker` plus learning curves by step, folders and the policy model."""

    def log_metrics_step(self, metrics: dict[str, float], step: int) -> None:
        self.log_metrics(metrics, step=step)

    def log_dict(self, obj: dict[str, Any], artifact_file: str) -> None:
        self.client.log_dict(self.run_id, obj, artifact_file)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if Path(path).is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            super().log_artifact(path, artifact_path)

    def log_policy(self, models: Path, agent: Any, register_name: str | None = "krakenrl-policy") -> str:
        """Log the strategic level as a pyfunc model (artifacts: model.zip, vecnormalize.pkl); register it."""
        import mlflow.pyfunc

        from agents.training import load_level
        from agents.views import n_features

        model, _ = load_level(models / "strategic", agent.algo)
        n_assets = int(model.action_space.shape[0]) - 1  # type: ignore[index]
        cls = _policy_model()
        with self._active():
            info = mlflow.pyfunc.log_model(
                name="policy",
                python_model=cls(agent.algo, n_assets, n_features("strategic", agent.strategic_prior.active)),
                artifacts={"strategic": str(models / "strategic")},
                pip_requirements=["numpy", "torch", "stable-baselines3"],
                registered_model_name=register_name,
            )
        return str(info.model_uri)


__all__ = ["PolicyTracker"]
