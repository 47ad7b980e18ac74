"""The strategic level's residual action: a learned tilt on a predictor allocation.

With ``prior="topk"`` the strategic model does not propose target scores from scratch: it
proposes a *tilt* on a prior allocation built from the meta-learner's signal alone, the
same allocation the `agents.baselines.TopKPredictor` baseline holds (the ``k`` tradable
assets with a prediction and the highest ``signal``, 1/k each, the rest cash). The env
action at a decision hour is

    scores_t = [w_prior(t), 1 - sum w_prior(t)] + scale * clip(a_t, -1, 1)

which the env maps to target weights as any other action (``p = max(scores, 0)``,
normalised; `envs.kraken_spot`). An action of zeros is the prior itself, and SB3 starts
its policies' action means near zero, so training starts from the predictor allocation and
learns when to leave it: more cash in a drawdown, another asset, a smaller position
(residual policy learning: Silver et al. 2018, "Residual Policy Learning"; Johannink et
al. 2019). The strategic view gets the prior weight as one more per-asset column, so the
policy knows what it is tilting. ``scale`` 0.5 lets one action reach anything from all cash
(every held asset at -1, cash at +1) to a new asset at half the weight of a held one.

The prior depends on the bar only (signals, ``tradable``), so it is one (T, N+1) panel per
env, built once; training (`agents.vec.LevelVecEnv`) and evaluation
(`agents.policies.HierarchicalPolicy`) read the same panel through `PriorAllocation`. The
prior is saved next to the strategic model (``prior.json``), so a policy loaded from a run
folder tilts the prior it was trained on.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.atomic import atomic_write
from envs.errors import ConfigError

PRIORS = ("none", "topk")
PRIOR_FILE = "prior.json"


@dataclass(frozen=True)
class StrategicPrior:
    """What the strategic action is a residual on (the ``agent.prior*`` keys)."""

    kind: str = "topk"  # topk: a tilt on the top-k allocation | none: the action is the env's scores
    k: int = 3
    signal: str = "meta_h24_exp_return"
    scale: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in PRIORS:
            raise ConfigError(f"agent.prior: expected one of {PRIORS}, got {self.kind!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ConfigError(f"agent.prior_k: expected an integer >= 1, got {self.k!r}")
        if not (math.isfinite(self.scale) and self.scale > 0.0):
            raise ConfigError(f"agent.prior_scale: expected a finite value > 0, got {self.scale!r}")

    @property
    def active(self) -> bool:
        return self.kind != "none"

    def save(self, folder: Path) -> None:
        """``prior.json`` next to a strategic model: what its actions are a tilt on."""
        atomic_write(folder / PRIOR_FILE, json.dumps(asdict(self), sort_keys=True).encode())

    @classmethod
    def load(cls, folder: Path) -> StrategicPrior:
        """The prior a strategic model in ``folder`` was trained with ("none" for a model saved without one)."""
        path = folder / PRIOR_FILE
        if not path.is_file():
            return cls("none")
        try:
            values = json.loads(path.read_text())
            return cls(str(values["kind"]), int(values["k"]), str(values["signal"]), float(values["scale"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: not a valid strategic prior ({exc})") from exc

    def allocation(self, core: Any) -> PriorAllocation | None:
        """The prior of ``core``'s market and signals (None when the action is not a residual)."""
        return PriorAllocation(self, core) if self.active else None


def topk_panel(signals: np.ndarray, channel: int, flag: int, tradable: np.ndarray, k: int) -> np.ndarray:
    """(T, N) weights: 1/k on the k tradable assets with a prediction and the highest signal, per bar.

    Ties go to the lower asset index (a stable sort), as in `TopKPredictor.select`; fewer
    than k candidates leave their slots in cash.
    """
    score = np.asarray(signals[:, :, channel], dtype=np.float64)
    candidate = np.asarray(tradable, dtype=bool) & (signals[:, :, flag] > 0.5) & np.isfinite(score)
    ranked = np.argsort(np.where(candidate, -score, np.inf), axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(candidate, ranked, axis=1)
    out = np.zeros(score.shape)
    np.put_along_axis(out, ranked, np.where(chosen, 1.0 / k, 0.0), axis=1)
    return out


class PriorAllocation:
    """One env's prior panel and the residual mapping from strategic actions to env actions."""

    def __init__(self, prior: StrategicPrior, core: Any) -> None:
        names = list(getattr(core, "signal_names", ()) or ())
        if core.signals is None or prior.signal not in names:
            raise ConfigError(
                f"agent.prior={prior.kind!r} needs the signal {prior.signal!r} in the env's signals "
                f"(have {[n for n in names if n != 'signals_available']}); build the env with the prediction store"
            )
        weights = topk_panel(core.signals, names.index(prior.signal), names.index("signals_available"),
                             core.market.tradable, prior.k)
        cash = np.clip(1.0 - weights.sum(axis=1, keepdims=True), 0.0, None)
        self.scores = np.concatenate([weights, cash], axis=1)  # (T, N+1): the env action of a zero tilt
        self.scores.flags.writeable = False
        self.weights = self.scores[:, :-1]  # the view's extra per-asset column
        self.scale = float(prior.scale)

    def env_actions(self, t: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """(B, N+1) env actions of strategic ``actions`` (B, N+1) at decision bars ``t`` (NaN tilts count as 0)."""
        tilt = np.nan_to_num(np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0), nan=0.0)
        return self.scores[np.asarray(t, dtype=np.int64)] + self.scale * tilt


__all__ = ["PRIORS", "PriorAllocation", "StrategicPrior", "topk_panel"]
