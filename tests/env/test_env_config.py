"""EnvConfig validation, the Hydra env configs, the recorder and the snapshot contract."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from envs.config import EnvConfig
from envs.errors import ConfigError, DataError
from envs.kraken_spot import KrakenSpotEnv
from tests.conftest import make_tiny_market

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("maker_fee", -0.001, "maker_fee"),
        ("order_type", "stop", "order_type"),
        ("episode_hours", 0, "episode_hours"),
        ("participation_cap", 1.5, "participation_cap"),
        ("fee_model", "binance", "fee_model"),
        ("window", 2.5, "window"),
    ],
)
def test_bad_config_values_raise_config_error_naming_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        EnvConfig(**{field: value})


def test_unknown_keys_and_bad_signals_fail_loudly():
    with pytest.raises(ConfigError, match="unknown keys"):
        EnvConfig.from_mapping({"fees": 0.1})
    market = make_tiny_market(n_bars=40)
    with pytest.raises(DataError, match="signals"):
        KrakenSpotEnv(market, EnvConfig(window=4), signals=np.zeros((39, 2, 1)))
    with pytest.raises(ConfigError, match="start/end"):
        KrakenSpotEnv(market, EnvConfig(window=4, start="2030-01-01"))


@pytest.mark.parametrize("name", ["default", "kraken_tiers", "market_orders"])
def test_hydra_env_configs_map_one_to_one_onto_env_config(name):
    with initialize_config_dir(config_dir=str(CONF / "env"), version_base="1.3"):
        cfg = compose(config_name=name)
    keys = {k for k in cfg if not k.startswith("_")}
    assert keys == {f.name for f in fields(EnvConfig)}  # every field, nothing else
    built = instantiate(cfg)
    assert isinstance(built, EnvConfig) and built == EnvConfig.from_mapping(cfg)
    if name == "default":
        assert built == EnvConfig()  # the yaml states the code defaults (spec fees)


def test_history_frame_is_built_after_the_episode():
    env = KrakenSpotEnv(make_tiny_market(n_bars=60), EnvConfig(window=4, episode_hours=10), render_mode="ansi")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(10):
        env.step(rng.uniform(-1, 1, 3))
    frame = env.history()
    assert len(frame) == 10 and {"equity", "cash", "fees", "w_BTC", "target_ETH", "fills"} <= set(frame.columns)
    assert frame["cum_fees"].iloc[-1] == pytest.approx(env.core.ledger.cum_fees[0])
    assert frame["n_fills"].sum() == sum(len(f) for f in frame["fills"])
    assert "equity" in env.render()


def test_snapshot_is_a_copy_of_the_state_at_the_decision_bar():
    env = KrakenSpotEnv(make_tiny_market(n_bars=60), EnvConfig(window=4, episode_hours=10))
    env.reset(seed=0)
    env.step(np.array([0.5, 0.5, 0.0]))
    snap = env.snapshot()
    assert snap.equity == pytest.approx(snap.cash + float(snap.units @ snap.prices), rel=1e-12)
    assert snap.prices.tolist() == env.market.close[snap.t].tolist()
    units = snap.units.copy()
    env.step(np.array([0.0, 0.0, 1.0]))
    np.testing.assert_array_equal(snap.units, units)  # later steps do not change a taken snapshot
