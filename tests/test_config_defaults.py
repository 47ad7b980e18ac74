"""Configs that cannot drift: YAML defaults equal the dataclass defaults, one `from_mapping`,
``_target_`` leaves that build what the pipeline builds, spec_b = spec_a + one override, and
the run folders written once (conf/hydra/output/krakenrl.yaml)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from agents.pipeline import store_key
from agents.training import AgentConfig
from envs.config import EnvConfig
from envs.config_mapping import HYDRA_KEYS, MappingConfig, from_mapping
from envs.data.synthetic import generate_synthetic_market
from envs.errors import ConfigError
from predictors.features import FeatureConfig
from predictors.meta import MetaConfig
from predictors.models import FAMILIES, make_config
from predictors.regime import RegimeRuleConfig
from predictors.walk_forward import WalkForwardConfig
from risk.limits import PRESETS, RiskLimits

CONF = Path(__file__).resolve().parents[1] / "conf"
PRIMARY = sorted(p.stem for p in CONF.glob("*.yaml"))
CONFIG_CLASSES = [EnvConfig, RiskLimits, AgentConfig, WalkForwardConfig, FeatureConfig, RegimeRuleConfig, MetaConfig,
                  *(cls for _, cls in FAMILIES.values())]


def _node(group: str, option: str) -> dict[str, Any]:
    """conf/<group>/<option>.yaml composed on its own (its defaults list applied), as plain values."""
    with initialize_config_dir(config_dir=str(CONF / group), version_base="1.3"):
        cfg = compose(config_name=option)
    out = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(out, dict)
    return out


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())  # type: ignore[misc]
            for f in dataclasses.fields(cls)}


def _assert_yaml_states_defaults(node: dict[str, Any], cls: type, where: str, *, every_field: bool,
                                 not_in_yaml: frozenset[str] = frozenset()) -> None:
    plain = {k: v for k, v in node.items() if k not in HYDRA_KEYS}
    defaults = _defaults(cls)
    built = cls.from_mapping(plain)  # type: ignore[attr-defined]  # the YAML's values, converted as the code reads them
    drift = {k: (v, defaults[k]) for k, v in plain.items() if getattr(built, k) != defaults[k]}
    assert not drift, f"{where}: YAML value != {cls.__name__} default (yaml, dataclass): {drift}"
    if every_field:
        missing = set(defaults) - set(plain) - not_in_yaml
        assert not missing, f"{where}: fields of {cls.__name__} not stated in the YAML: {sorted(missing)}"


# ------------------------------------------------------------ YAML defaults == dataclass defaults
@pytest.mark.parametrize(
    ("group", "option", "cls", "not_in_yaml"),
    [
        ("env", "default", EnvConfig, frozenset()),
        ("risk", "spec_a", RiskLimits, frozenset()),
        ("walk_forward", "default", WalkForwardConfig, frozenset()),
        ("agent", "ppo", AgentConfig, frozenset({"extra"})),  # SB3 keyword pass-through, empty by default
    ],
    ids=["env=default", "risk=spec_a", "walk_forward=default", "agent=ppo"],
)
def test_default_option_states_every_dataclass_default(group: str, option: str, cls: type,
                                                       not_in_yaml: frozenset[str]) -> None:
    _assert_yaml_states_defaults(_node(group, option), cls, f"conf/{group}/{option}.yaml", every_field=True,
                                 not_in_yaml=not_in_yaml)


def test_walk_forward_min_train_bars_is_two_months_in_yaml_and_code() -> None:
    """The one value that had drifted (YAML 1440, dataclass 2160): both say 1440 now."""
    assert _node("walk_forward", "default")["min_train_bars"] == WalkForwardConfig().min_train_bars == 1440


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_default_predictor_family_values_equal_the_family_config_defaults(family: str) -> None:
    node = _node("predictor", "default")["models"][family]
    _assert_yaml_states_defaults(node, FAMILIES[family][1], f"conf/predictor/default.yaml models.{family}",
                                 every_field=False)


def test_default_meta_learner_values_equal_meta_config_defaults() -> None:
    _assert_yaml_states_defaults(_node("predictor", "default")["meta"], MetaConfig, "conf/predictor/default.yaml meta",
                                 every_field=True)


def test_a_drifted_value_is_caught() -> None:
    """The check itself can fail: a YAML value away from the default is reported by name."""
    node = {**_node("walk_forward", "default"), "min_train_bars": 2160}
    with pytest.raises(AssertionError, match="min_train_bars"):
        _assert_yaml_states_defaults(node, WalkForwardConfig, "x", every_field=True)


# ------------------------------------------------------------ _target_ leaves
def _targets(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        found = [(path, node)] if "_target_" in node else []
        for k, v in node.items():
            found += _targets(v, f"{path}.{k}" if path else str(k))
        return found
    return []


GROUP_OPTIONS = sorted((g.name, p.stem) for g in CONF.iterdir() if g.is_dir() and g.name in
                       ("env", "risk", "walk_forward", "predictor") for p in g.glob("*.yaml"))


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_target_leaf_builds_what_the_pipeline_builds(group: str, option: str) -> None:
    """instantiate(node) (Hydra) == Cls.from_mapping(plain node) (what the scripts and pipeline call)."""
    node = _node(group, option)
    leaves = _targets(node)
    assert leaves, f"conf/{group}/{option}.yaml: no _target_"
    for path, leaf in leaves:
        built = instantiate(OmegaConf.create(leaf))
        assert isinstance(built, MappingConfig), path
        assert built == type(built).from_mapping(leaf), f"{group}/{option}: {path}"


def test_walk_forward_and_every_family_have_a_target() -> None:
    for option in ("default", "fast"):
        models = _node("predictor", option)["models"]
        for family, (_, cls) in FAMILIES.items():
            assert isinstance(instantiate(OmegaConf.create(models[family])), cls)
            assert make_config(family, models[family]) == instantiate(OmegaConf.create(models[family]))
    assert instantiate(OmegaConf.create(_node("walk_forward", "default"))) == WalkForwardConfig()


def test_a_target_naming_another_class_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"predictor.models.lstm: _target_ .*TransformerConfig.*LSTMConfig"):
        make_config("lstm", {"_target_": "predictors.models.transformer.TransformerConfig", "hidden": 8})


def test_store_key_ignores_target_keys() -> None:
    """Prediction stores cached before the configs carried _target_ keep their key."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name="run"), resolve=True)
    assert isinstance(cfg, dict)

    def strip(node: Any) -> Any:
        return {k: strip(v) for k, v in node.items() if k != "_target_"} if isinstance(node, dict) else node

    market = generate_synthetic_market(n_bars=200, seed=1)
    assert "_target_" in cfg["walk_forward"] and "_target_" in cfg["predictor"]["models"]["xgboost"]
    assert store_key(market, cfg) == store_key(market, strip(cfg))
    changed = {**cfg, "walk_forward": {**cfg["walk_forward"], "embargo": 48}}
    assert store_key(market, changed) != store_key(market, cfg)


# ------------------------------------------------------------ spec_b = spec_a + its override
def test_spec_b_is_spec_a_plus_one_override() -> None:
    a, b = _node("risk", "spec_a"), _node("risk", "spec_b")
    assert set(a) == set(b)
    assert {k for k in a if a[k] != b[k]} == {"max_gross_exposure"}
    assert RiskLimits.from_mapping(b) == PRESETS["spec_b"] and instantiate(OmegaConf.create(b)) == PRESETS["spec_b"]
    text = (CONF / "risk" / "spec_b.yaml").read_text()
    assert "- spec_a" in text and text.count(":") < 6  # no copy of spec_a's 28 limits


# ------------------------------------------------------------ one run-folder block
STAMPED_RUN = "outputs/${hydra.job.config_name}/${now:%Y-%m-%d_%H-%M-%S}"
STAMPED_SWEEP = "outputs/${hydra.job.config_name}_multirun/${now:%Y-%m-%d_%H-%M-%S}"
RESUMABLE = {  # conf/hydra/output/krakenrl_resume.yaml (train) and krakenrl_study.yaml (search)
    "train": (STAMPED_RUN, "outputs/${hydra.job.config_name}_multirun/${name}"),
    "search": ("outputs/${hydra.job.config_name}/${name}", "outputs/${hydra.job.config_name}_multirun/${name}"),
}


@pytest.mark.parametrize("name", PRIMARY)
def test_run_folders_come_from_one_file(name: str) -> None:
    text = (CONF / f"{name}.yaml").read_text()
    assert "\nhydra:" not in text and "override hydra/output: krakenrl" in text
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=name, return_hydra_config=True)
    raw = OmegaConf.to_container(cfg.hydra, resolve=False)
    assert isinstance(raw, dict)
    # train and search resume into folders without a time stamp: variants of krakenrl.yaml in the same group
    run, sweep = RESUMABLE.get(name, (STAMPED_RUN, STAMPED_SWEEP))
    assert raw["run"]["dir"] == run
    assert raw["sweep"]["dir"] == sweep
    assert cfg.hydra.job.config_name == name
    assert not cfg.hydra.job.chdir  # None = no chdir under version_base 1.3


# ------------------------------------------------------------ one from_mapping
@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_every_config_dataclass_has_the_one_from_mapping(cls: type) -> None:
    assert issubclass(cls, MappingConfig)
    assert cls.from_mapping.__func__ is MappingConfig.from_mapping.__func__  # type: ignore[attr-defined]
    assert cls.from_mapping(None) == cls() == cls.from_mapping({})  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=rf"unknown keys \['not_a_field'\] for {cls.__name__}") as err:
        cls.from_mapping({"not_a_field": 1})  # type: ignore[attr-defined]
    assert cls.config_section in str(err.value)  # type: ignore[attr-defined]


def test_types_are_converted_by_the_declared_field_type() -> None:
    agent = AgentConfig.from_mapping(OmegaConf.create({"net_arch": [64, 64.0], "n_envs": 4.0, "extra": {"a": [1]}}))
    assert agent.net_arch == (64, 64) and agent.n_envs == 4 and isinstance(agent.n_envs, int)
    assert agent.extra == {"a": [1]} and type(agent.extra["a"]) is list  # Any: plain containers, no conversion
    env = EnvConfig.from_mapping({"initial_cash": 5000, "pair_spread_floor": {"BTC": 0}})
    assert isinstance(env.initial_cash, float) and env.pair_spread_floor == {"BTC": 0.0} and type(env.pair_spread_floor["BTC"]) is float
    assert EnvConfig.from_mapping({"pair_spread_floor": None}).pair_spread_floor == {}
    assert FeatureConfig.from_mapping({"vol_windows": [24, 72]}).vol_windows == (24, 72)
    assert WalkForwardConfig.from_mapping({"max_folds": None}).max_folds is None
    assert WalkForwardConfig.from_mapping({"max_folds": 3.0}).max_folds == 3
    for bad, match in (({"n_envs": 2.5}, "agent.n_envs: expected an integer"),
                       ({"n_envs": True}, "agent.n_envs: expected an integer"),
                       ({"learning_rate": "fast"}, "agent.learning_rate: expected a number"),
                       ({"net_arch": 64}, "agent.net_arch: expected a list")):
        with pytest.raises(ConfigError, match=match):
            AgentConfig.from_mapping(bad)
    with pytest.raises(ConfigError, match="expected a mapping of EnvConfig fields"):
        EnvConfig.from_mapping([1, 2])  # type: ignore[arg-type]


def test_from_mapping_passes_an_instance_through_and_names_a_custom_section() -> None:
    wf = WalkForwardConfig(embargo=48)
    assert from_mapping(WalkForwardConfig, wf) is wf
    with pytest.raises(ConfigError, match=r"^conf/x.yaml: unknown keys \['nope'\] for RiskLimits"):
        RiskLimits.from_mapping({"nope": 1}, section="conf/x.yaml")
    assert RiskLimits.from_mapping({"name": "spec_a", "_target_": "risk.limits.RiskLimits"}) == PRESETS["spec_a"]
