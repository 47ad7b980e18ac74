"""Universe filters: stablecoins, memes and illiquid or wide-spread assets leave with a reason.

The hand-built market has constant prices and volumes, so each asset's median daily
dollar volume is exactly ``24 * close * volume`` and its median spread is the constant
spread column: the thresholds can be tested exactly at the boundary.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from envs.data.market import HOUR, MarketData
from envs.data.synthetic import DEFAULT_UNIVERSE, generate_synthetic_market
from envs.data.universe import UniverseFilter, apply_universe, screen
from envs.errors import ConfigError, DataError

T0 = 1_672_531_200  # 2023-01-01T00:00:00Z, a day boundary
DAYS = 5
#            close,  volume/h, spread
SPEC = {
    "BTC": (100.0, 1000.0, 0.0002),   # 2.4e6 USD/day
    "ETH": (50.0, 1000.0, 0.0004),    # 1.2e6 USD/day
    "USDT": (1.0, 1e6, 0.0001),       # stablecoin, very liquid
    "DOGE": (0.1, 1e6, 0.0005),       # meme, liquid
    "ILLQ": (2.0, 10.0, 0.0010),      # 480 USD/day
    "WIDE": (10.0, 10_000.0, 0.0200),  # liquid but 200 bp spread
}


def _market(spec: dict = SPEC, days: int = DAYS, start: int = T0) -> MarketData:
    n, assets = days * 24, tuple(spec)
    close = np.tile([spec[a][0] for a in assets], (n, 1)).astype(np.float64)
    vol = np.tile([spec[a][1] for a in assets], (n, 1)).astype(np.float64)
    spread = np.tile([spec[a][2] for a in assets], (n, 1)).astype(np.float64)
    return MarketData(
        assets=assets,
        timestamps=start + HOUR * np.arange(n, dtype=np.int64),
        open=close.copy(), high=close * 1.001, low=close * 0.999, close=close, volume=vol,
        tradable=np.ones((n, len(assets)), dtype=bool), filled=np.zeros((n, len(assets)), dtype=bool),
        spread=spread, source="hand-built",
    )


def test_stablecoin_meme_illiquid_and_wide_are_excluded_with_reasons() -> None:
    filt = UniverseFilter(min_median_daily_dollar_volume=1e6, max_median_spread=0.005)
    sub, report = apply_universe(_market(), filt)
    assert report.kept == ("BTC", "ETH") and sub.assets == ("BTC", "ETH")
    assert set(report.excluded) == {"USDT", "DOGE", "ILLQ", "WIDE"}
    assert report.excluded["USDT"] == "stablecoin or fiat"
    assert report.excluded["DOGE"] == "meme coin"
    assert "illiquid" in report.excluded["ILLQ"] and "480 USD" in report.excluded["ILLQ"]
    assert "wide spread" in report.excluded["WIDE"] and "0.020000" in report.excluded["WIDE"]
    assert report.median_daily_dollar_volume["BTC"] == pytest.approx(2.4e6)
    assert report.median_spread["ETH"] == pytest.approx(0.0004)
    assert np.array_equal(sub.close, _market().close[:, :2])


def test_lists_are_configurable() -> None:
    filt = UniverseFilter(exclude_memes=False, stablecoins=["usdt"], exclude=["ETH"],
                          min_median_daily_dollar_volume=0.0, max_median_spread=0.01)
    report = screen(_market(), filt)
    assert report.kept == ("BTC", "DOGE", "ILLQ")
    assert report.excluded["ETH"] == "excluded by config"
    assert report.excluded["USDT"] == "stablecoin or fiat"


def test_dollar_volume_threshold_is_inclusive_at_the_boundary() -> None:
    at = UniverseFilter(min_median_daily_dollar_volume=2.4e6)
    above = UniverseFilter(min_median_daily_dollar_volume=float(np.nextafter(2.4e6, np.inf)))
    assert "BTC" in screen(_market(), at).kept
    assert "illiquid" in screen(_market(), above).excluded["BTC"]


def test_spread_threshold_is_inclusive_at_the_boundary() -> None:
    at = UniverseFilter(min_median_daily_dollar_volume=0.0, max_median_spread=0.0004)
    below = UniverseFilter(min_median_daily_dollar_volume=0.0,
                           max_median_spread=float(np.nextafter(0.0004, 0.0)))
    assert "ETH" in screen(_market(), at).kept
    assert "wide spread" in screen(_market(), below).excluded["ETH"]


def test_lookback_is_trailing_and_causal() -> None:
    """ETH trades 100x more in the first 3 days than in the last 2: the window decides."""
    m = _market()
    vol = m.volume.copy()
    vol[: 3 * 24, 1] *= 100.0
    m = dataclasses.replace(m, volume=vol)
    filt2 = UniverseFilter(min_median_daily_dollar_volume=2e6, lookback_days=2)
    filt5 = UniverseFilter(min_median_daily_dollar_volume=2e6, lookback_days=5)
    assert "illiquid" in screen(m, filt2).excluded["ETH"]  # last 2 days: 1.2e6
    assert "ETH" in screen(m, filt5).kept  # median of 120e6 x3, 1.2e6 x2
    # as of the end of day 3 the 2-day window sees only busy days
    assert "ETH" in screen(m, filt2, as_of=T0 + 3 * 86_400).kept


def test_partial_days_do_not_count() -> None:
    m = _market(start=T0 + 12 * HOUR)  # starts and ends mid-day: 4 complete days
    report = screen(m, UniverseFilter(lookback_days=30))
    assert report.window == (T0 + 86_400, T0 + 5 * 86_400)


def test_untradable_asset_is_excluded() -> None:
    m = _market()
    tradable = m.tradable.copy()
    tradable[:, 0] = False
    report = screen(dataclasses.replace(m, tradable=tradable), UniverseFilter())
    assert "no tradable bar" in report.excluded["BTC"]


def test_everything_excluded_raises() -> None:
    with pytest.raises(DataError, match="excluded every asset"):
        apply_universe(_market(), UniverseFilter(min_median_daily_dollar_volume=1e12))


def test_too_short_market_raises() -> None:
    with pytest.raises(DataError, match="complete UTC day"):
        screen(_market(days=1, start=T0 + HOUR))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_median_daily_dollar_volume": -1.0}, "min_median_daily_dollar_volume"),
        ({"max_median_spread": 0.0}, "max_median_spread"),
        ({"lookback_days": 0}, "lookback_days"),
        ({"memes": "DOGE"}, "memes"),
    ],
)
def test_bad_filter_raises_config_error(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        UniverseFilter(**kwargs)


def test_default_filter_keeps_the_synthetic_default_universe_with_estimated_spread() -> None:
    """Without a spread column the Corwin-Schultz estimate is used; all 12 defaults pass."""
    m = generate_synthetic_market(n_bars=60 * 24, seed=2)
    sub, report = apply_universe(dataclasses.replace(m, spread=None))
    assert report.kept == DEFAULT_UNIVERSE, report.excluded
    assert all(0 < s < 0.005 for s in report.median_spread.values())
    assert sub.pairs == m.pairs
