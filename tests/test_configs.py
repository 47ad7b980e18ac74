"""Every primary config and every config-group option composes (one config, contract 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from envs.data.market import MarketData

CONF = Path(__file__).resolve().parents[1] / "conf"
PRIMARY = sorted(p.stem for p in CONF.glob("*.yaml"))
GROUP_OPTIONS = sorted((g.name, p.stem) for g in CONF.iterdir() if g.is_dir() for p in g.glob("*.yaml"))
SHARED = CONF.parent.parent / "shared" / "data"
RUN_GROUPS = ("data", "predictor", "walk_forward", "executor", "env", "risk", "agent", "experiment")  # conf/run.yaml defaults


@pytest.mark.parametrize("name", PRIMARY)
def test_primary_config_composes(name: str) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=name)
    assert cfg is not None


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_group_option_composes(group: str, option: str) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="run", overrides=[f"{group}={option}" if group in RUN_GROUPS else f"+{group}={option}"])
    if group == "experiment":  # experiments are @package _global_: they set keys, including their name
        assert cfg.name == option
    else:
        assert group in cfg


def test_data_options_instantiate_to_a_market() -> None:
    paths = {"csv": SHARED / "binance" / "spot_1h", "kraken_csv": SHARED / "kraken" / "ohlcvt_1h"}
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for option in ("synthetic", "csv", "kraken_csv"):
            overrides = [f"data={option}", "data.start=2022-03-01", "data.end=2022-03-31"] if option != "synthetic" else [
                "data=synthetic", "data.n_bars=200"]
            if option in paths:
                overrides.append(f"data.path={paths[option]}")
            market = instantiate(compose(config_name="run", overrides=overrides).data)
            assert isinstance(market, MarketData) and market.n_bars > 0


def test_missing_mandatory_path_fails_naming_the_key() -> None:
    from omegaconf.errors import MissingMandatoryValue

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="run", overrides=["data=csv"])
    with pytest.raises(MissingMandatoryValue, match="path"):
        instantiate(cfg.data)
