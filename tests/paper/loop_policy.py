"""A light scripted policy and a fixed clock for the paper-loop tests (no agents/torch import: subprocesses start fast)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np


class ScriptedPolicy:
    """A busy deterministic policy: scores drawn from a generator seeded by the decision bar (no memory).

    It trades most hours, so limit orders, fallbacks, lot rules and the risk projection are all exercised.
    """

    name = "scripted"

    def __init__(self, seed: int = 0, width: int | None = None) -> None:
        self.seed, self.width, self.core = seed, width, None

    def bind(self, env: Any) -> ScriptedPolicy:
        self.core = env.unwrapped.core
        self.width = int(self.core.action_width)
        return self

    def reset(self) -> None:
        pass

    def act(self, obs: Any, info: Any) -> np.ndarray:
        t = int(self.core.ledger.t[0])  # type: ignore[attr-defined]
        rng = np.random.default_rng([self.seed, t])
        a = rng.uniform(-1.0, 1.0, self.width)  # type: ignore[arg-type]
        if rng.uniform() < 0.25:
            a[:-1] = -1.0  # "keep" some hours: resting limit orders keep working
        return a


def clock() -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC)


__all__ = ["ScriptedPolicy", "clock"]
