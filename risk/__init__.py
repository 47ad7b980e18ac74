"""The hard-coded risk layer: limits, projection, drawdown ladder, kill switch, wrappers.

Whatever a policy proposes, `RiskProjector.project` returns the closest allowed target
under the limits of a `RiskLimits` profile and records what it changed; `RiskWrapper`
applies it to every env step, and paper trading calls the same projector directly.
"""

from __future__ import annotations

from risk.clusters import ClusterSchedule
from risk.kill_switch import TRIGGERS, KillSwitch, MarketSignals, ReactivationRefused, TriggerHit
from risk.ladder import LEVEL_NAMES, DrawdownLadder, ladder_level, ladder_level_of
from risk.limits import HARD_CAPS, PRESETS, SPEC_A, SPEC_B, Bound, RiskLimits, resolve_limits
from risk.projection import RULE_ORDER, Intervention, RiskDecision, RiskProjector
from risk.report import intervention_counts, intervention_table
from risk.wrapper import RiskVectorWrapper, RiskWrapper, action_to_proposal, make_risk_wrapped

__all__ = [
    "HARD_CAPS",
    "LEVEL_NAMES",
    "PRESETS",
    "RULE_ORDER",
    "SPEC_A",
    "SPEC_B",
    "TRIGGERS",
    "Bound",
    "ClusterSchedule",
    "DrawdownLadder",
    "Intervention",
    "KillSwitch",
    "MarketSignals",
    "ReactivationRefused",
    "RiskDecision",
    "RiskLimits",
    "RiskProjector",
    "RiskVectorWrapper",
    "RiskWrapper",
    "TriggerHit",
    "action_to_proposal",
    "intervention_counts",
    "intervention_table",
    "ladder_level",
    "ladder_level_of",
    "make_risk_wrapped",
    "resolve_limits",
]
