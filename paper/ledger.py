"""Portfolio, risk state and the per-hour ledger update the store commits in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from paper.hours import as_hour
from paper.money import as_decimal

LADDER_LEVELS = (0, 1, 2, 3)


def _decimal_map(values: Mapping[str, Any], what: str) -> Mapping[str, Decimal]:
    out: dict[str, Decimal] = {}
    for asset, v in values.items():
        if not isinstance(asset, str) or not asset:
            raise ValueError(f"{what}: asset keys must be non-empty str, got {asset!r}")
        out[asset] = as_decimal(v, f"{what}[{asset}]")
    return MappingProxyType(dict(sorted(out.items())))


@dataclass(frozen=True)
class Portfolio:
    """Cash (quote currency) and units per asset; no balance may be negative."""

    cash: Decimal
    units: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cash = as_decimal(self.cash, "Portfolio.cash")
        if cash < 0:
            raise ValueError(f"Portfolio.cash: negative balance {cash}")
        object.__setattr__(self, "cash", cash)
        units = _decimal_map(self.units, "Portfolio.units")
        for asset, u in units.items():
            if u < 0:
                raise ValueError(f"Portfolio.units[{asset}]: negative balance {u}")
        object.__setattr__(self, "units", units)

    def to_dict(self) -> dict[str, Any]:
        return {"cash": self.cash, "units": dict(self.units)}


@dataclass(frozen=True)
class RiskState:
    """What the risk layer must remember across restarts (REC-7): ladder, kill switch, peak equity.

    ``detail`` carries the risk objects' own serialisation (``DrawdownLadder.to_dict()``,
    ``KillSwitch.to_dict()``) so that they are restored exactly; the typed fields are what
    ``status`` and the dashboard read without knowing those formats.
    """

    ladder_level: int = 0
    peak_equity: Decimal = Decimal(0)
    kill_switch_engaged: bool = False
    kill_switch_trigger: str | None = None
    kill_switch_since: int | None = None
    halted: bool = False
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ladder_level not in LADDER_LEVELS or isinstance(self.ladder_level, bool):
            raise ValueError(f"RiskState.ladder_level: expected one of {LADDER_LEVELS}, got {self.ladder_level!r}")
        peak = as_decimal(self.peak_equity, "RiskState.peak_equity")
        if peak < 0:
            raise ValueError(f"RiskState.peak_equity: negative {peak}")
        object.__setattr__(self, "peak_equity", peak)
        if self.kill_switch_engaged:
            if not self.kill_switch_trigger or self.kill_switch_since is None:
                raise ValueError("RiskState: an engaged kill switch needs kill_switch_trigger and kill_switch_since")
            since = as_hour(self.kill_switch_since, "RiskState.kill_switch_since")
            object.__setattr__(self, "kill_switch_since", since)
        elif self.kill_switch_trigger is not None or self.kill_switch_since is not None:
            raise ValueError("RiskState: kill_switch_trigger/since set while the kill switch is not engaged")
        if not isinstance(self.detail, Mapping):
            raise TypeError(f"RiskState.detail: expected a mapping, got {type(self.detail).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ladder_level": self.ladder_level,
            "peak_equity": self.peak_equity,
            "kill_switch_engaged": self.kill_switch_engaged,
            "kill_switch_trigger": self.kill_switch_trigger,
            "kill_switch_since": self.kill_switch_since,
            "halted": self.halted,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class LedgerUpdate:
    """The hour's resulting books: portfolio, the marks it was valued at, equity, fees, risk state."""

    portfolio: Portfolio
    marks: Mapping[str, Decimal]
    equity: Decimal
    fees: Decimal
    risk: RiskState

    def __post_init__(self) -> None:
        object.__setattr__(self, "marks", _decimal_map(self.marks, "LedgerUpdate.marks"))
        missing = sorted(a for a, u in self.portfolio.units.items() if u != 0 and a not in self.marks)
        if missing:
            raise ValueError(f"LedgerUpdate.marks: no mark price for held asset(s) {missing}")
        for name in ("equity", "fees"):
            d = as_decimal(getattr(self, name), f"LedgerUpdate.{name}")
            if d < 0:
                raise ValueError(f"LedgerUpdate.{name}: negative {d}")
            object.__setattr__(self, name, d)

    def to_dict(self) -> dict[str, Any]:
        return {
            "portfolio": self.portfolio.to_dict(),
            "marks": dict(self.marks),
            "equity": self.equity,
            "fees": self.fees,
            "risk": self.risk.to_dict(),
        }
