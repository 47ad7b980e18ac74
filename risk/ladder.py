"""Drawdown ladder on mark-to-market equity's drawdown from a persisted high-water mark.

Levels (thresholds from `RiskLimits`, each compared with ``>=``):

- 0, ``dd < dd_reduce``: normal.
- 1, ``dd >= dd_reduce``: new position sizes scaled by ``dd_reduce_size_factor``: no asset
  may be *increased* above factor x its normal size cap (min of asset cap and ATR size);
  a position already above that is kept, not forced down.
- 2, ``dd >= dd_cut``: level 1, plus the total exposure cap x ``dd_cut_exposure_factor``,
  plus fewer rebalances: the account may add to positions only at hours that are
  multiples of ``dd_cut_rebalance_hours`` (UTC); in other hours it is reduce-only
  (Nautilus ``REDUCING``). Reductions are never delayed.
- 3, ``dd >= dd_halt``: halt. Target all cash, no new entries; the env episode terminates
  with reason ``halt``. Halt is latched: it persists until `DrawdownLadder.reset` is called
  by a person (which also restarts the high-water mark), or a new training episode starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from risk.kill_switch import ReactivationRefused
from risk.limits import RiskLimits

LEVEL_NAMES = ("normal", "reduce_size", "cut_exposure", "halt")


def ladder_level(drawdown: float, limits: RiskLimits) -> int:
    """Ladder level (0..3) of a drawdown; thresholds are inclusive (dd == threshold moves up)."""
    if drawdown >= limits.dd_halt:
        return 3
    if drawdown >= limits.dd_cut:
        return 2
    if drawdown >= limits.dd_reduce:
        return 1
    return 0


def ladder_level_of(equity: float, peak: float, limits: RiskLimits) -> int:
    """Ladder level from equity and peak: ``equity <= peak * (1 - threshold)`` moves up.

    Compared on equity rather than on ``1 - equity / peak`` so that a drawdown of exactly
    10% (equity 900 of peak 1000) is level 1: ``1 - 0.9`` is 0.0999... in floating point.
    """
    if peak <= 0:
        return 0
    for level, thr in ((3, limits.dd_halt), (2, limits.dd_cut), (1, limits.dd_reduce)):
        if equity <= peak * (1.0 - thr):
            return level
    return 0


@dataclass
class DrawdownLadder:
    """High-water mark and halt latch for one account (serialisable)."""

    peak_equity: float = 0.0
    halted: bool = False
    halted_at: int | None = None
    audit: list[dict[str, Any]] = field(default_factory=list)

    def update(self, equity: float, snapshot_peak: float, timestamp: int, limits: RiskLimits) -> tuple[int, float]:
        """Fold in the snapshot's equity and peak; return (level, drawdown)."""
        self.peak_equity = max(self.peak_equity, snapshot_peak, equity)
        dd = 0.0 if self.peak_equity <= 0 else max(0.0, 1.0 - equity / self.peak_equity)
        level = ladder_level_of(equity, self.peak_equity, limits)
        if level == 3 and not self.halted:
            self.halted = True
            self.halted_at = int(timestamp)
            self.audit.append(
                {
                    "event": "halt",
                    "timestamp": int(timestamp),
                    "drawdown": dd,
                    "peak_equity": self.peak_equity,
                    "equity": equity,
                }
            )
        if self.halted:
            level = 3
        return level, dd

    def reset(self, operator: str, reason: str, equity: float, timestamp: int | None = None) -> None:
        """Manual, audited restart after a halt: the high-water mark becomes ``equity``."""
        if not operator or not reason:
            raise ReactivationRefused(f"reset: expected a non-empty operator and reason, got {operator!r}, {reason!r}")
        self.audit.append(
            {
                "event": "ladder_reset",
                "operator": operator,
                "reason": reason,
                "timestamp": timestamp,
                "old_peak": self.peak_equity,
                "equity": equity,
            }
        )
        self.peak_equity = float(equity)
        self.halted = False
        self.halted_at = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "peak_equity": self.peak_equity,
            "halted": self.halted,
            "halted_at": self.halted_at,
            "audit": [dict(a) for a in self.audit],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DrawdownLadder:
        return cls(
            float(d["peak_equity"]),
            bool(d["halted"]),
            d.get("halted_at"),
            [dict(a) for a in d.get("audit", [])],
        )
