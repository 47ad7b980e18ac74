"""Counts of risk interventions over an episode, from the ``info["risk"]`` history.

An evaluation report uses these to say how often, and by how much, risk overrode the
policy. Works on a list of per-step ``info["risk"]`` dicts (or whole ``info`` dicts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from risk.projection import RULE_ORDER


def _risk(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    return entry["risk"] if "risk" in entry and isinstance(entry["risk"], Mapping) else entry


def intervention_counts(history: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Steps in which each rule changed the target, in rule order (zeros included)."""
    counts = dict.fromkeys(RULE_ORDER, 0)
    for entry in history:
        for rule in {iv["rule"] for iv in _risk(entry).get("interventions", [])}:
            counts[rule] = counts.get(rule, 0) + 1
    return counts


def intervention_table(history: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per rule: steps it bound, share of steps, total and mean |weight change|.

    Also the steps spent at each ladder level and with the kill switch engaged, as rows
    ``ladder_level_<k>`` and ``kill_switch_engaged`` (amount columns NaN for those).
    """
    entries = [_risk(e) for e in history]
    n = len(entries)
    steps = dict.fromkeys(RULE_ORDER, 0)
    amounts = dict.fromkeys(RULE_ORDER, 0.0)
    levels = [0, 0, 0, 0]
    engaged = 0
    for e in entries:
        seen: set[str] = set()
        for iv in e.get("interventions", []):
            rule = iv["rule"]
            amounts[rule] = amounts.get(rule, 0.0) + float(iv.get("amount", 0.0))
            seen.add(rule)
        for rule in seen:
            steps[rule] = steps.get(rule, 0) + 1
        levels[int(e.get("ladder_level", 0))] += 1
        engaged += bool(e.get("kill_switch", {}).get("engaged", False))
    rows = [
        {
            "rule": r,
            "steps": steps[r],
            "share": steps[r] / n if n else 0.0,
            "total_amount": amounts[r],
            "mean_amount": amounts[r] / steps[r] if steps[r] else 0.0,
        }
        for r in steps
    ]
    nan = float("nan")
    rows += [
        {
            "rule": f"ladder_level_{k}",
            "steps": c,
            "share": c / n if n else 0.0,
            "total_amount": nan,
            "mean_amount": nan,
        }
        for k, c in enumerate(levels)
    ]
    rows.append(
        {
            "rule": "kill_switch_engaged",
            "steps": engaged,
            "share": engaged / n if n else 0.0,
            "total_amount": nan,
            "mean_amount": nan,
        }
    )
    return pd.DataFrame(rows).set_index("rule")
