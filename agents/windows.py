"""Walk-forward evaluation windows: consecutive train -> test splits, and pooling their episodes.

Window i trains on every bar up to ``split_i`` and is evaluated on the ``test_hours``
after it; the splits step forward by ``test_hours``, so the test periods are consecutive
and never overlap a window's own training data. Pooled results chain the windows'
returns in time order (each window starts a new account at its first test bar): one
out-of-sample track record over all test periods.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from agents.baselines import EpisodeResult
from agents.pipeline import utc
from envs.errors import ConfigError


@dataclass(frozen=True)
class Window:
    index: int
    train_end: str  # ISO UTC, last training bar (data.end of the training run)
    eval_start: str
    eval_end: str


def window_splits(last_test_end: str, n_windows: int, test_hours: int) -> list[Window]:
    """``n_windows`` consecutive windows whose last test period ends at ``last_test_end``."""
    if n_windows < 1 or test_hours < 24:
        raise ConfigError(f"windows: expected n >= 1 and test_hours >= 24, got n={n_windows}, test_hours={test_hours}")
    end = utc(last_test_end, "eval.end")
    hour = pd.Timedelta(hours=1)
    out = []
    for i in range(n_windows):
        stop = end - (n_windows - 1 - i) * test_hours * hour
        start = stop - (test_hours - 1) * hour
        out.append(Window(i, (start - hour).isoformat(), start.isoformat(), stop.isoformat()))
    return out


def pool_results(results: Sequence[EpisodeResult]) -> EpisodeResult:
    """One EpisodeResult chaining ``results`` (same strategy, consecutive periods) in time order."""
    if not results:
        raise ValueError("pool_results: no episodes")
    rs = sorted(results, key=lambda r: int(r.timestamps[0]))
    for a, b in itertools.pairwise(rs):
        if int(b.timestamps[0]) < int(a.timestamps[-1]):
            raise ValueError(f"pool_results: {a.name} episodes overlap in time")
    returns = np.concatenate([r.returns for r in rs])
    equity = np.concatenate([[1.0], np.cumprod(1.0 + returns)]) * float(rs[0].equity[0])
    stamps = np.concatenate([rs[0].timestamps[:1], *[r.timestamps[1:] for r in rs]])
    interventions: dict[str, int] = {}
    for r in rs:
        for k, v in r.interventions.items():
            interventions[k] = interventions.get(k, 0) + int(v)
    return EpisodeResult(
        name=rs[0].name, seed=rs[0].seed, returns=returns, equity=equity, timestamps=stamps,
        fees=np.concatenate([r.fees for r in rs]), slippage=np.concatenate([r.slippage for r in rs]),
        turnover=np.concatenate([r.turnover for r in rs]), n_fills=np.concatenate([r.n_fills for r in rs]),
        weights=np.concatenate([r.weights for r in rs]), target_weights=np.concatenate([r.target_weights for r in rs]),
        actions=np.concatenate([r.actions for r in rs]) if len({r.actions.shape[1] for r in rs}) == 1
        else np.zeros((returns.size, 0)),
        fills=[f for r in rs for f in r.fills], interventions=interventions,
        intervention_rules=[x for r in rs for x in r.intervention_rules],
        termination_reason=rs[-1].termination_reason, assets=rs[0].assets,
    )


__all__ = ["Window", "pool_results", "window_splits"]
