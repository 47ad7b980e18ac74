"""Issue 9 items 6 and 7: a market from a DataFrame in one line (the loaders' checks apply),
and ``render_mode="rgb_array"`` for gymnasium's render wrappers and SB3."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import envs  # noqa: F401 - registers KrakenSpot-v0
from envs.data.loaders import load_kraken_dir
from envs.data.market import MarketData
from envs.errors import ConfigError, DataError
from envs.kraken_spot import KrakenSpotEnv
from envs.render import HEIGHT, WIDTH

FILES = {"XBTUSD": "XBTUSD_60.csv.gz", "ETH": "ETHUSD_60.csv.gz", "LTC/USD": "LTCUSD_60.csv.gz"}
START, END = "2022-01-01", "2022-03-01"


@pytest.fixture(scope="module")
def kraken(shared_data) -> tuple[Path, MarketData, pd.DataFrame]:
    """The loader's market and the same raw rows as one long DataFrame (names as users write them)."""
    root = shared_data / "kraken" / "ohlcvt_1h"
    market = load_kraken_dir(root, assets=["BTC", "ETH", "LTC"], start=START, end=END)
    lo, hi = pd.Timestamp(START, tz="UTC").timestamp(), pd.Timestamp(END, tz="UTC").timestamp()
    parts = []
    for name, file in FILES.items():
        d = pd.read_csv(root / file, header=None, names=["timestamp", "open", "high", "low", "close", "volume", "trades"])
        d = d[(d["timestamp"] >= lo) & (d["timestamp"] <= hi)].assign(asset=name)
        parts.append(d)
    return root, market, pd.concat(parts, ignore_index=True)


def test_long_frame_equals_the_loader(kraken) -> None:
    _, market, long = kraken
    got = MarketData.from_frame(long)
    assert got.assets == ("BTC", "ETH", "LTC") and got.equals(market.__class__(**{**market.__dict__, "source": "frame"}))
    assert got.pairs["BTC"].altname == "XBTUSD"  # Kraken's lot rules attached as by the loaders
    eth = np.flatnonzero(long["asset"].to_numpy() == "ETH")
    holed = MarketData.from_frame(long.drop(index=eth[10]))  # a missing hour inside ETH's life
    i = holed.index_of("ETH")
    assert holed.filled[:, i].sum() == 1 and not holed.tradable[holed.filled[:, i], i].any()  # gap policy "mark"
    with pytest.raises(DataError, match="1 missing hourly bars"):
        MarketData.from_frame(long.drop(index=eth[10]), gap_policy="raise")
    iso = long.assign(timestamp=pd.to_datetime(long["timestamp"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M"))
    assert MarketData.from_frame(iso, layout="long").equals(got)


@pytest.mark.parametrize("swap", [False, True])
def test_wide_frame_equals_the_loader(kraken, swap: bool) -> None:
    _, market, long = kraken
    stamped = long.assign(timestamp=pd.to_datetime(long["timestamp"], unit="s", utc=True))
    fields = ["open", "high", "low", "close", "volume", "trades"]
    wide = stamped.pivot(index="timestamp", columns="asset", values=fields)  # noqa: PD010 - one value per cell
    if swap:
        wide = wide.swaplevel(axis=1)  # (asset, field)
    got = MarketData.from_frame(wide)
    assert sorted(got.assets) == ["BTC", "ETH", "LTC"]
    assert got.select(["BTC", "ETH", "LTC"]).equals(market.__class__(**{**market.__dict__, "source": "frame"}))


def test_bad_rows_raise_the_loaders_errors_naming_asset_row_and_value(kraken) -> None:
    _, _, long = kraken
    row = int(np.flatnonzero(long["asset"].to_numpy() == "ETH")[5])
    bad = long.copy()
    bad.loc[row, "high"] = 1.0
    with pytest.raises(DataError, match=rf"frame: asset ETH: row {row}: high=1.0: expected high >= max"):
        MarketData.from_frame(bad)
    bad = long.astype({"close": object})
    bad.loc[row, "close"] = "n/a"
    with pytest.raises(DataError, match=rf"asset ETH: row {row}: close='n/a': expected a number"):
        MarketData.from_frame(bad)
    with pytest.raises(DataError, match="missing columns"):
        MarketData.from_frame(long.drop(columns="volume"))
    with pytest.raises(DataError, match=r"'XBTUSD' and 'BTC' are both BTC"):
        MarketData.from_frame(pd.concat([long, long[long["asset"] == "XBTUSD"].assign(asset="BTC")]))
    with pytest.raises(ConfigError, match="layout"):
        MarketData.from_frame(long, layout="tall")


def test_a_frame_market_trades_in_the_env(kraken) -> None:
    _, _, long = kraken
    env = gym.make("KrakenSpot-v0", market=MarketData.from_frame(long), episode_hours=24)
    env.reset(seed=0)
    fees = [env.step(np.array([1.0, 1.0, 1.0, 0.0]))[-1]["fees"] for _ in range(3)]
    assert sum(fees) > 0 and sum(f["fee"] for f in env.unwrapped.history()["fills"].sum()) == pytest.approx(sum(fees))


# ---------------------------------------------------------------- item 7: render
def test_rgb_array_render_is_an_image_of_the_episode() -> None:
    env = gym.make("KrakenSpot-v0", episode_hours=40, render_mode="rgb_array")
    assert env.metadata["render_modes"] == ["ansi", "rgb_array"]
    env.reset(seed=0)
    first = env.render()
    assert isinstance(first, np.ndarray) and first.shape == (HEIGHT, WIDTH, 3) and first.dtype == np.uint8
    for _ in range(10):
        env.step(env.action_space.sample())
    later = env.render()
    assert later.shape == first.shape and np.mean(later != first) > 0.01
    with pytest.raises(ConfigError, match="record_history=True"):
        KrakenSpotEnv(episode_hours=10, render_mode="rgb_array", record_history=False).render()
    with pytest.raises(ConfigError, match="render_mode"):
        KrakenSpotEnv(render_mode="video")


def test_render_collection_wrapper_collects_frames() -> None:
    env = gym.make("KrakenSpot-v0", episode_hours=10, render_mode="rgb_array_list")  # gymnasium's RenderCollection
    env.reset(seed=1)
    for _ in range(3):
        env.step(env.action_space.sample())
    frames = env.render()
    assert len(frames) == 4 and all(f.shape == (HEIGHT, WIDTH, 3) for f in frames)


def test_record_video_writes_a_file(tmp_path: Path) -> None:
    """gymnasium's RecordVideo (moviepy 1.x, in the examples extra) records an episode as mp4."""
    from gymnasium.wrappers import RecordVideo

    env = RecordVideo(gym.make("KrakenSpot-v0", episode_hours=6, render_mode="rgb_array"), str(tmp_path),
                      episode_trigger=lambda _: True, disable_logger=True)
    env.reset(seed=0)
    done = False
    while not done:
        *_, term, trunc, _ = env.step(env.action_space.sample())
        done = term or trunc
    env.close()
    assert [p.suffix for p in tmp_path.iterdir()] == [".mp4"]
