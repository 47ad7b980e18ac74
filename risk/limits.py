"""`RiskLimits`: the risk layer's limits as one frozen dataclass, with hard caps in code.

A risk profile (``conf/risk/*.yaml``) may *tighten* any limit but never loosen one past
its hard cap: building a `RiskLimits` with a looser value raises `ConfigError` naming the
field, the value and the cap. Each field has a direction:

- ``"max"``: smaller is tighter (caps, risk fraction, ladder thresholds, trigger multiples);
  the hard cap is the largest value allowed.
- ``"min"``: larger is tighter (ATR stop multiple, hours between increases at ladder
  level 2, cluster distance threshold); the hard cap is the smallest value allowed.
- ``"range"``: estimation settings that are not risk caps (windows, horizons): only
  range-checked.

Two settings that once were plain ranges are now bounded like caps, because a profile
could switch a protection off through them:

- ``no_trade_band`` (direction ``"min"``, hard minimum 0.005, at most 0.1): the cost
  gate's band when no expected-return signal is available. 0 switched the gate off; a
  band below 0.5 % of equity lets a policy churn hourly sub-percent adjustments whose
  0.8 % round-trip fee is certain and whose gain is not measurable.
- ``spread_floor`` (direction ``"max"``, hard cap 0.01): the spread trigger compares the
  spread with ``spread_multiple`` x max(trailing median, floor); a floor of 5 % meant
  the trigger could only fire above 25 % spreads, i.e. never. 1 % (x 5 = 5 % spread)
  is the loosest floor that still catches a disorderly book on a liquid pair.

Presets: `SPEC_A` (max 10 positions, total exposure up to 100% of equity) and `SPEC_B`
(max 10 positions, total exposure at most 20% of equity); both carry the 10/15/20%
drawdown ladder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, Literal

from envs.config_mapping import MappingConfig
from envs.errors import ConfigError

Direction = Literal["max", "min", "range"]


@dataclass(frozen=True)
class Bound:
    """How one field may be configured: its direction and hard cap (or range)."""

    direction: Direction
    hard: float  # "max": largest allowed; "min": smallest allowed; "range": lower end
    upper: float | None = None  # "range" only: upper end (inclusive)
    integer: bool = False


# Hard caps: the outer bounds no profile can pass. Changing one is a code change.
HARD_CAPS: dict[str, Bound] = {
    "max_positions": Bound("max", 10, integer=True),
    "max_asset_weight": Bound("max", 0.35),
    "max_gross_exposure": Bound("max", 1.0),
    "max_cluster_weight": Bound("max", 0.70),
    "base_risk_fraction": Bound("max", 0.02),
    "atr_stop_multiple": Bound("min", 1.0),
    "atr_window": Bound("range", 2, 720, integer=True),
    "dd_reduce": Bound("max", 0.10),
    "dd_cut": Bound("max", 0.15),
    "dd_halt": Bound("max", 0.20),
    "dd_reduce_size_factor": Bound("max", 0.5),
    "dd_cut_exposure_factor": Bound("max", 0.5),
    "dd_cut_rebalance_hours": Bound("min", 6, integer=True),
    "cluster_distance": Bound("min", 0.3),
    "corr_window": Bound("range", 48, 8760, integer=True),
    "cluster_refresh_hours": Bound("range", 1, 168, integer=True),
    "spread_multiple": Bound("max", 5.0),
    "spread_window": Bound("range", 24, 8760, integer=True),
    "spread_floor": Bound("max", 0.01),
    "spread_estimate_window": Bound("range", 2, 168, integer=True),
    "vol_multiple": Bound("max", 10.0),
    "vol_window": Bound("range", 24, 8760, integer=True),
    "max_price_jump": Bound("max", 0.5),
    "max_stale_hours": Bound("max", 6, integer=True),
    "no_trade_band": Bound("min", 0.005),
    "cost_gate_horizon": Bound("range", 1, 168, integer=True),
    "kill_switch_breadth": Bound("max", 0.5),
    "exchange_down_share": Bound("max", 1.0),
}


@dataclass(frozen=True)
class RiskLimits(MappingConfig):
    """Every limit the projection enforces; validated against `HARD_CAPS` on creation.

    Weights are fractions of current equity at current prices (exposure = weight).
    ``RiskLimits.from_mapping(values)`` builds one from a Hydra node or a dict
    (`envs.config_mapping`: unknown keys and wrong types raise `ConfigError`, missing keys
    keep the defaults; a ``name`` key is ignored).
    """

    config_section: ClassVar[str] = "risk"
    config_ignore: ClassVar[frozenset[str]] = frozenset({"name"})

    max_positions: int = 10  # non-zero positions after projection
    max_asset_weight: float = 0.35  # per-asset cap
    max_gross_exposure: float = 1.0  # sum of weights (cash is the rest)
    max_cluster_weight: float = 0.70  # sum of weights inside one correlation cluster
    base_risk_fraction: float = 0.02  # equity lost if a stop at k x ATR is hit
    atr_stop_multiple: float = 2.0  # k: weight_i <= brf / (k * ATR_i / price_i)
    atr_window: int = 14
    dd_reduce: float = 0.10  # ladder level 1: new sizes x dd_reduce_size_factor
    dd_cut: float = 0.15  # level 2: exposure cap x dd_cut_exposure_factor, fewer increases
    dd_halt: float = 0.20  # level 3: halt (all cash, episode terminates)
    dd_reduce_size_factor: float = 0.5
    dd_cut_exposure_factor: float = 0.5
    dd_cut_rebalance_hours: int = 24  # at level 2, increases only every this many hours
    cluster_distance: float = 0.5  # average-linkage cut on 1 - corr (0.5: corr >= 0.5 joins)
    corr_window: int = 720  # 30 days of hourly returns
    cluster_refresh_hours: int = 24
    spread_multiple: float = 5.0  # kill switch: spread > multiple x trailing median
    spread_window: int = 720
    spread_floor: float = 0.003  # trailing median is floored at this (30 bp)
    spread_estimate_window: int = 24  # bars of the Corwin-Schultz estimate (no spread column)
    vol_multiple: float = 10.0  # kill switch: |hourly log return| > multiple x trailing sigma
    vol_window: int = 720
    max_price_jump: float = 0.5  # kill switch: |hourly log return| above this is bad data
    max_stale_hours: int = 6  # kill switch: held asset without a real bar for longer
    no_trade_band: float = 0.01  # cost gate without a signal: weight changes below this are not made
    cost_gate_horizon: int = 24  # cost gate with signals: hours of the expected return it reads
    kill_switch_breadth: float = 0.25  # market triggers on this share of the listed universe engage the switch
    exchange_down_share: float = 0.8  # this share of listed pairs without a bar in one hour = exchange down

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_bound(f.name, getattr(self, f.name))
        _check_relations(self)

    # ------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "risk") -> RiskLimits:
        """The former spelling of `from_mapping` (``source`` names the config in errors)."""
        return cls.from_mapping(values, section=source)

    def tighten(self, **changes: Any) -> RiskLimits:
        """A copy with ``changes`` applied; each must be at least as tight as the current value."""
        for name, value in changes.items():
            if name not in HARD_CAPS:
                raise ConfigError(f"tighten: unknown risk field {name!r}")
            bound = HARD_CAPS[name]
            value = _coerce(name, value, "tighten")
            current = getattr(self, name)
            if (bound.direction == "max" and value > current) or (bound.direction == "min" and value < current):
                raise ConfigError(
                    f"tighten: {name}={value!r} loosens the current limit {current!r} "
                    f"(expected {'<=' if bound.direction == 'max' else '>='} {current!r})"
                )
            changes[name] = value
        return replace(self, **changes)

    def is_tighter_or_equal(self, other: RiskLimits) -> bool:
        """True if every capped field of ``self`` is at least as tight as in ``other``."""
        for name, bound in HARD_CAPS.items():
            a, b = getattr(self, name), getattr(other, name)
            if (bound.direction == "max" and a > b) or (bound.direction == "min" and a < b):
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _coerce(name: str, value: Any, source: str) -> Any:
    bound = HARD_CAPS[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{source}: {name}: expected a number, got {value!r} ({type(value).__name__})")
    if bound.integer:
        if float(value) != int(value):
            raise ConfigError(f"{source}: {name}: expected an integer, got {value!r}")
        return int(value)
    return float(value)


def _check_bound(name: str, value: Any) -> None:
    bound = HARD_CAPS[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ConfigError(f"{name}: expected a finite number, got {value!r}")
    if bound.integer and float(value) != int(value):
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if bound.direction == "max" and value > bound.hard:
        raise ConfigError(f"{name}={value!r} is looser than its hard cap {bound.hard!r} (expected <= cap)")
    if bound.direction == "min" and value < bound.hard:
        raise ConfigError(f"{name}={value!r} is looser than its hard cap {bound.hard!r} (expected >= cap)")
    if bound.direction == "range":
        assert bound.upper is not None
        if not bound.hard <= value <= bound.upper:
            raise ConfigError(f"{name}={value!r} out of range: expected {bound.hard!r} <= value <= {bound.upper!r}")


def _check_relations(lim: RiskLimits) -> None:
    """Range checks that are not hard caps (TEST_PLAN BI-2)."""
    if lim.max_positions < 1:
        raise ConfigError(f"max_positions={lim.max_positions}: expected 1..10")
    for name in ("max_asset_weight", "max_gross_exposure", "max_cluster_weight", "base_risk_fraction"):
        v = getattr(lim, name)
        if not 0.0 < v <= 1.0:
            raise ConfigError(f"{name}={v!r}: expected a value in (0, 1]")
    for name in ("dd_reduce_size_factor", "dd_cut_exposure_factor"):
        v = getattr(lim, name)
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"{name}={v!r}: expected a value in [0, 1]")
    if not 0.0 < lim.dd_reduce < lim.dd_cut < lim.dd_halt < 1.0:
        raise ConfigError(
            "drawdown ladder: expected 0 < dd_reduce < dd_cut < dd_halt < 1, got "
            f"{lim.dd_reduce!r}, {lim.dd_cut!r}, {lim.dd_halt!r}"
        )
    if lim.max_cluster_weight < lim.max_asset_weight:
        raise ConfigError(
            f"max_cluster_weight={lim.max_cluster_weight!r}: expected >= max_asset_weight="
            f"{lim.max_asset_weight!r} (a cluster holds at least one asset)"
        )
    if lim.cluster_distance > 2.0:
        raise ConfigError(f"cluster_distance={lim.cluster_distance!r}: expected <= 2 (1 - corr is in [0, 2])")
    for name in ("spread_multiple", "vol_multiple", "max_price_jump"):
        v = getattr(lim, name)
        if v <= 0:
            raise ConfigError(f"{name}={v!r}: expected > 0")
    if lim.no_trade_band > 0.1:
        raise ConfigError(f"no_trade_band={lim.no_trade_band!r}: expected <= 0.1")
    if lim.spread_floor < 0:
        raise ConfigError(f"spread_floor={lim.spread_floor!r}: expected >= 0")
    for name in ("kill_switch_breadth", "exchange_down_share"):
        v = getattr(lim, name)
        if not 0.0 < v <= 1.0:
            raise ConfigError(f"{name}={v!r}: expected a value in (0, 1]")
    if lim.max_stale_hours < 0:
        raise ConfigError(f"max_stale_hours={lim.max_stale_hours}: expected >= 0")


SPEC_A = RiskLimits()
"""Spec A: at most 10 positions, total exposure unrestricted up to 100% of equity."""

SPEC_B = SPEC_A.tighten(max_gross_exposure=0.20)
"""Spec B: at most 10 positions, total exposure at most 20% of equity."""

PRESETS: dict[str, RiskLimits] = {"spec_a": SPEC_A, "spec_b": SPEC_B}


def resolve_limits(limits: RiskLimits | str | Mapping[str, Any]) -> RiskLimits:
    """A `RiskLimits` from itself, a profile name of `PRESETS` or a mapping of fields (`RiskLimits.from_mapping`).

    A mapping is what a risk-wrapped env's JSON spec holds (``EnvSpec.to_json`` writes the
    dataclass as a dict), so ``gym.make(EnvSpec.from_json(...))`` rebuilds the same limits.
    """
    if isinstance(limits, RiskLimits):
        return limits
    if isinstance(limits, str):
        if limits not in PRESETS:
            raise ConfigError(f"risk profile: expected one of {sorted(PRESETS)} (or a RiskLimits), got {limits!r}")
        return PRESETS[limits]
    if isinstance(limits, Mapping):
        return RiskLimits.from_mapping(limits)
    raise ConfigError(
        f"risk limits: expected a RiskLimits, a profile name in {sorted(PRESETS)} or a mapping of fields, "
        f"got {type(limits).__name__}"
    )
