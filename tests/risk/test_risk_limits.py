"""Risk profiles: every tightening is accepted, every loosening past a hard cap raises (BI-2)."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from envs.errors import ConfigError
from risk.limits import HARD_CAPS, PRESETS, SPEC_A, SPEC_B, RiskLimits

CONF = Path(__file__).resolve().parents[2] / "conf"
CAPPED = [name for name, b in HARD_CAPS.items() if b.direction != "range"]


def _tighter(name: str) -> float | int:
    """A value strictly tighter than the spec-A default (itself within the hard cap)."""
    b, v = HARD_CAPS[name], getattr(SPEC_A, name)
    if b.integer:
        return int(v) - 1 if b.direction == "max" else int(v) + 1
    return v * 0.9 if b.direction == "max" else v * 1.1


def _looser(name: str) -> float | int:
    b = HARD_CAPS[name]
    if b.integer:
        return int(b.hard) + 1 if b.direction == "max" else int(b.hard) - 1
    return b.hard * 1.01 + 1e-6 if b.direction == "max" else b.hard * 0.99


def test_every_field_has_a_bound_and_presets_match_spec() -> None:
    assert {f.name for f in fields(RiskLimits)} == set(HARD_CAPS)
    assert SPEC_A.max_positions == 10 and SPEC_A.max_gross_exposure == 1.0
    assert SPEC_B.max_positions == 10 and SPEC_B.max_gross_exposure == 0.2
    for lim in (SPEC_A, SPEC_B):
        assert (lim.dd_reduce, lim.dd_cut, lim.dd_halt) == (0.10, 0.15, 0.20)
        assert lim.base_risk_fraction == 0.02
    assert SPEC_B.is_tighter_or_equal(SPEC_A) and not SPEC_A.is_tighter_or_equal(SPEC_B)


@pytest.mark.parametrize("name", CAPPED)
def test_tightening_each_capped_field_is_accepted(name: str) -> None:
    value = _tighter(name)
    lim = SPEC_A.tighten(**{name: value})
    assert getattr(lim, name) == value
    assert lim.is_tighter_or_equal(SPEC_A)
    assert RiskLimits.from_dict({name: value}) == lim


@pytest.mark.parametrize("name", CAPPED)
def test_loosening_past_the_hard_cap_raises_naming_field_value_and_cap(name: str) -> None:
    value = _looser(name)
    with pytest.raises(ConfigError) as err:
        RiskLimits.from_dict({name: value})
    msg = str(err.value)
    assert name in msg and repr(value) in msg and repr(HARD_CAPS[name].hard) in msg
    with pytest.raises(ConfigError):
        replace(SPEC_A, **{name: value})


@pytest.mark.parametrize("name", CAPPED)
def test_tighten_refuses_to_loosen_relative_to_current(name: str) -> None:
    tight = SPEC_A.tighten(**{name: _tighter(name)})
    with pytest.raises(ConfigError, match=name):
        tight.tighten(**{name: getattr(SPEC_A, name)})


@pytest.mark.parametrize(
    "values",
    [
        {"dd_reduce": 0.12, "dd_cut": 0.11},  # not increasing (dd_reduce hard cap fires first)
        {"dd_reduce": 0.05, "dd_cut": 0.05},  # equal thresholds
        {"dd_reduce": 0.0},  # outside (0, 1)
        {"max_positions": 0},
        {"max_positions": -3},
        {"max_asset_weight": 0.0},
        {"max_cluster_weight": 0.2},  # below the asset cap 0.35
        {"spread_window": 10},  # range field outside its range
        {"no_trade_band": -0.01},
        {"max_positions": 2.5},  # not an integer
        {"max_positions": True},  # bool is not a number here
        {"max_asset_weight": "0.3"},  # wrong type
        {"max_asset_weight": float("nan")},
        {"not_a_limit": 1.0},  # unknown key
    ],
)
def test_out_of_range_values_are_rejected(values: dict) -> None:
    with pytest.raises(ConfigError):
        RiskLimits.from_dict(values)


def test_integer_valued_floats_are_coerced() -> None:
    assert RiskLimits.from_dict({"max_positions": 5.0}).max_positions == 5


@pytest.mark.parametrize("profile", ["spec_a", "spec_b"])
def test_profiles_compose_with_hydra_and_equal_the_presets(profile: str) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="run", overrides=[f"risk={profile}"])
    node = OmegaConf.to_container(cfg.risk, resolve=True)
    assert isinstance(node, dict)
    assert RiskLimits.from_dict(node, source=f"conf/risk/{profile}.yaml") == PRESETS[profile]
    assert hydra.utils.instantiate(cfg.risk) == PRESETS[profile]


def test_hydra_override_tightening_accepted_loosening_raises() -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for name in CAPPED:
            ok = compose(config_name="run", overrides=["risk=spec_b", f"risk.{name}={_tighter(name)}"])
            bad = compose(config_name="run", overrides=["risk=spec_b", f"risk.{name}={_looser(name)}"])
            assert getattr(hydra.utils.instantiate(ok.risk), name) == _tighter(name)
            with pytest.raises(ConfigError, match=name):
                RiskLimits.from_dict(OmegaConf.to_container(bad.risk))  # type: ignore[arg-type]
            with pytest.raises(Exception) as err:  # hydra wraps the error; the cause is ours
                hydra.utils.instantiate(bad.risk)
            cause = err.value if isinstance(err.value, ConfigError) else err.value.__cause__
            assert isinstance(cause, ConfigError) and name in str(cause)


# The hard caps of the specification (risk profiles, BI-2): loosening one is a code change this
# test must see, not only a value the other tests read back from HARD_CAPS.
SPECIFIED_CAPS = {
    "max_positions": 10,
    "max_asset_weight": 0.35,
    "max_gross_exposure": 1.0,
    "max_cluster_weight": 0.70,
    "base_risk_fraction": 0.02,
    "dd_halt": 0.20,
}


@pytest.mark.parametrize(("name", "cap"), SPECIFIED_CAPS.items())
def test_hard_caps_are_the_specified_values(name: str, cap: float) -> None:
    assert HARD_CAPS[name].hard == cap
    just_over = cap + 1 if isinstance(cap, int) else cap * (1 + 1e-9)
    with pytest.raises(ConfigError, match=name):
        RiskLimits.from_dict({name: just_over})
