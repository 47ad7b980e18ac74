"""Stress replay: one policy over a fixed stretch, bare and risk-wrapped, with what was realised.

Used to report how the risk layer behaves on a crash (the 2022-05/06 Kraken stretch in the
README and in the issue notes): the bare and wrapped max drawdown, the rules that bound,
and the exposure the executed trades really produced. "Realised" exposure is measured at
the decision's prices over the equity at the decision (units after the fills x price of bar t / equity at bar t),
exactly the units in which the risk layer's target weights are written, so the two compare
without the drift of bar t+1 and without the fees just paid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from risk.report import intervention_counts
from risk.wrapper import as_risk_env

Policy = Callable[[Any], np.ndarray]


@dataclass
class StressResult:
    """Summary of one stress episode (exposures are fractions of equity)."""

    steps: int
    end: str
    max_drawdown: float
    final_equity: float
    max_realised_exposure: float  # at decision prices, after the fills
    max_marked_exposure: float  # info["weights"].sum(): marked at the close of t+1
    max_target_exposure: float  # the risk layer's executed target (NaN when unwrapped)
    hours_realised_above: int  # steps whose realised exposure exceeded ``exposure_limit``
    interventions: dict[str, int] = field(default_factory=dict)
    equity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    exposure: np.ndarray = field(default_factory=lambda: np.zeros(0))  # realised, per step

    def row(self) -> dict[str, Any]:
        keys = ("steps", "end", "max_drawdown", "final_equity", "max_realised_exposure",
                "max_marked_exposure", "max_target_exposure", "hours_realised_above")
        return {k: getattr(self, k) for k in keys}


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fractional fall of ``equity`` from its running peak."""
    eq = np.asarray(equity, dtype=np.float64)
    return float(np.max(1.0 - eq / np.maximum.accumulate(eq))) if eq.size else 0.0


def run_stress(env: gym.Env, action: np.ndarray | Policy, exposure_limit: float = np.inf,
               seed: int = 0) -> StressResult:
    """Run one episode of ``env`` with a constant ``action`` (or a policy of the observation)."""
    base = as_risk_env(env.unwrapped)
    obs, _ = env.reset(seed=seed)
    equity = [float(base.snapshot().equity)]
    infos: list[dict[str, Any]] = []
    realised, target, above = 0.0, float("nan"), 0
    exposures: list[float] = []
    done = False
    end = ""
    while not done:
        before = base.snapshot()
        act = action(obs) if callable(action) else action
        obs, _, terminated, truncated, info = env.step(act)
        after = base.snapshot()
        exposure = float(np.dot(after.units, before.prices)) / before.equity if before.equity > 0 else 0.0
        realised = max(realised, exposure)
        exposures.append(exposure)
        above += int(exposure > exposure_limit + 1e-9)
        if "risk" in info and "executed" in info["risk"]:
            target = np.nanmax([target, float(np.sum(info["risk"]["executed"]))])
        equity.append(float(info["equity"]))
        infos.append(info)
        done = bool(terminated or truncated)
        end = str(info.get("termination_reason", ""))
    eq = np.array(equity)
    marked = max((float(np.sum(i["weights"])) for i in infos), default=0.0)
    return StressResult(
        steps=len(infos), end=end, max_drawdown=max_drawdown(eq), final_equity=float(eq[-1]),
        max_realised_exposure=realised, max_marked_exposure=marked, max_target_exposure=float(target),
        hours_realised_above=above,
        interventions={k: v for k, v in intervention_counts(infos).items() if v} if "risk" in infos[0] else {},
        equity=eq,
        exposure=np.array(exposures),
    )
