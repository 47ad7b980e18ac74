"""A simulated operator for backtests: reactivates the kill switch once the market has been quiet.

In paper and live trading only a person reactivates the kill switch (`risk.kill_switch`,
audited). A backtest has nobody, so by default a switch that engages stays engaged to the
end of the period: every strategy then sits in cash, which is what the rules say but tells
nothing about the strategies. `SimulatedOperator(after_hours)` stands in for a person who
reactivates after ``after_hours`` consecutive hours with no active trigger, through the same
audited `KillSwitch.reactivate` call (operator ``"simulated-operator"``), which refuses while
a trigger is active. Off by default (``eval.reactivate_after_hours: null``); the count of
reactivations is reported with the results.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envs.errors import ConfigError


class SimulatedOperator:
    """Called after every step of `agents.baselines.run_policy` with the env and the step's info."""

    name = "simulated-operator"

    def __init__(self, after_hours: int) -> None:
        if isinstance(after_hours, bool) or not isinstance(after_hours, int) or after_hours < 1:
            raise ConfigError(f"reactivate_after_hours: expected an integer >= 1 or null, got {after_hours!r}")
        self.after_hours = after_hours
        self.quiet = 0
        self.reactivations = 0

    def __call__(self, env: Any, info: Mapping[str, Any]) -> None:
        state = info.get("risk", {}).get("kill_switch")
        if not state or not state.get("engaged"):
            self.quiet = 0
            return
        self.quiet = 0 if state.get("active_triggers") else self.quiet + 1
        if self.quiet >= self.after_hours:
            env.projector.kill_switch.reactivate(
                self.name, f"no trigger for {self.quiet} hours", int(info.get("timestamp", 0))
            )
            self.reactivations += 1
            self.quiet = 0


__all__ = ["SimulatedOperator"]
