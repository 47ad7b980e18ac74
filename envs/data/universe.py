"""Universe filters: which assets of a market are worth trading, and why the others are not.

The spec's universe is liquid Kraken USD spot pairs without stablecoins or meme coins.
:func:`apply_universe` drops (1) stablecoins and fiat, (2) a configurable meme list,
(3) assets whose median daily dollar volume over a trailing window is below a floor,
(4) assets whose median relative spread is above a cap. The spread is the market's
spread column, else the Corwin-Schultz high-low estimate (warm-up rows stay NaN).
Every exclusion carries a reason in the returned :class:`UniverseReport`.

Liquidity statistics use only bars before ``as_of`` (default: the end of the data), so
a walk-forward can re-run the filter causally at each fold start.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from envs.data.indicators import corwin_schultz_spread
from envs.data.market import HOUR, MarketData
from envs.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

DAY = 24 * HOUR

STABLECOINS: frozenset[str] = frozenset({
    "USDT", "USDC", "DAI", "PYUSD", "TUSD", "USDP", "BUSD", "FDUSD", "GUSD", "LUSD", "USDD",
    "USDE", "USDS", "USDG", "USD1", "RLUSD", "FRAX", "SUSD", "UST", "EURT", "EURC", "EUROC",
    "EURR", "EURQ", "USDQ", "PAXG", "XAUT",
    # fiat codes (a "pair" against USD in fiat is FX, not crypto)
    "USD", "EUR", "GBP", "CAD", "JPY", "CHF", "AUD",
})
MEME_COINS: frozenset[str] = frozenset({
    "DOGE", "SHIB", "PEPE", "BONK", "WIF", "FLOKI", "TRUMP", "MEME", "POPCAT", "MEW", "BRETT",
    "TURBO", "MOG", "PNUT", "FARTCOIN", "PENGU", "GIGA", "BOME", "NEIRO", "SPX", "DOGS",
    "MOODENG", "GOAT", "PONKE", "MYRO", "BABYDOGE", "ELON", "WOJAK", "LADYS", "MELANIA",
})


def _as_frozenset(values: Iterable[str], name: str) -> frozenset[str]:
    if isinstance(values, str):
        raise ConfigError(f"{name}: expected a list of tickers, got the string {values!r}")
    return frozenset(str(v).upper() for v in values)


@dataclass(frozen=True)
class UniverseFilter:
    """Thresholds of the universe filter (plain data; a Hydra config maps onto it).

    Attributes:
        exclude_stablecoins: drop assets in ``stablecoins``.
        exclude_memes: drop assets in ``memes``.
        stablecoins: stablecoin and fiat tickers.
        memes: meme-coin tickers.
        exclude: further tickers to drop (reason "excluded by config").
        min_median_daily_dollar_volume: floor (USD) on the median over the lookback of
            each complete UTC day's ``sum(close * volume)``; kept when >= the floor.
        max_median_spread: cap on the median relative spread over the lookback's
            tradable bars (0.002 = 20 bp); kept when <= the cap.
        lookback_days: trailing window (complete UTC days before ``as_of``).
        spread_window: bars per Corwin-Schultz estimate when the market has no spread.
    """

    exclude_stablecoins: bool = True
    exclude_memes: bool = True
    stablecoins: frozenset[str] = STABLECOINS
    memes: frozenset[str] = MEME_COINS
    exclude: frozenset[str] = field(default_factory=frozenset)
    min_median_daily_dollar_volume: float = 500_000.0
    max_median_spread: float = 0.005
    lookback_days: int = 30
    spread_window: int = 24

    def __post_init__(self) -> None:
        for name in ("stablecoins", "memes", "exclude"):
            object.__setattr__(self, name, _as_frozenset(getattr(self, name), name))
        if not self.min_median_daily_dollar_volume >= 0:
            raise ConfigError(
                f"min_median_daily_dollar_volume: expected >= 0, got {self.min_median_daily_dollar_volume}"
            )
        if not self.max_median_spread > 0:
            raise ConfigError(f"max_median_spread: expected > 0, got {self.max_median_spread}")
        if int(self.lookback_days) < 1:
            raise ConfigError(f"lookback_days: expected >= 1, got {self.lookback_days}")
        if int(self.spread_window) < 2:
            raise ConfigError(f"spread_window: expected >= 2, got {self.spread_window}")


@dataclass(frozen=True)
class UniverseReport:
    """Outcome of the filter: kept assets (market order), a reason per excluded asset,
    and the liquidity statistics measured (NaN where an asset never traded)."""

    kept: tuple[str, ...]
    excluded: dict[str, str]
    median_daily_dollar_volume: dict[str, float]
    median_spread: dict[str, float]
    window: tuple[int, int]  # [start, end) Unix seconds of the lookback actually used


def _window(market: MarketData, lookback_days: int, as_of: int | None) -> tuple[int, int]:
    """Bar index range of the last ``lookback_days`` complete UTC days before ``as_of``."""
    ts = market.timestamps
    if ts.size == 0 or int(ts[0]) % HOUR:
        raise DataError(f"universe filter: expected hour-aligned bars in market {market.source!r}")
    end_ts = int(ts[-1]) + HOUR if as_of is None else min(int(as_of), int(ts[-1]) + HOUR)
    last_day_end = (end_ts // DAY) * DAY  # only complete days count
    first_day = max((int(ts[0]) + DAY - 1) // DAY * DAY, last_day_end - lookback_days * DAY)
    if first_day >= last_day_end:
        raise DataError(
            f"universe filter: expected at least one complete UTC day of bars before {end_ts} "
            f"in market {market.source!r}, got bars {int(ts[0])}..{int(ts[-1])}"
        )
    lo = int(np.searchsorted(ts, first_day, side="left"))
    hi = int(np.searchsorted(ts, last_day_end, side="left"))
    return lo, hi


def liquidity_stats(market: MarketData, filt: UniverseFilter, as_of: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Per-asset median daily dollar volume and median relative spread over the lookback."""
    lo, hi = _window(market, int(filt.lookback_days), as_of)
    tradable = market.tradable[lo:hi]
    dollars = np.where(tradable, np.nan_to_num(market.close[lo:hi] * market.volume[lo:hi]), 0.0)
    n_days = (hi - lo) // 24
    daily = dollars.reshape(n_days, 24, -1).sum(axis=1)
    traded_day = tradable.reshape(n_days, 24, -1).any(axis=1)
    daily = np.where(traded_day, daily, np.nan)

    if market.spread is not None:
        spread = market.spread[lo:hi]
    else:  # estimate from the whole history so the window starts past warm-up
        spread = corwin_schultz_spread(market, int(filt.spread_window))[lo:hi]
    spread = np.where(tradable, spread, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns -> NaN medians
        med_dollar = np.nanmedian(daily, axis=0)
        med_spread = np.nanmedian(spread, axis=0)
    return med_dollar, med_spread, (int(market.timestamps[lo]), int(market.timestamps[hi - 1]) + HOUR)


def screen(market: MarketData, filt: UniverseFilter | None = None, as_of: int | None = None
           ) -> UniverseReport:
    """Decide the universe without building the reduced market."""
    filt = filt or UniverseFilter()
    med_dollar, med_spread, window = liquidity_stats(market, filt, as_of)
    kept: list[str] = []
    excluded: dict[str, str] = {}
    for i, asset in enumerate(market.assets):
        key = asset.upper()
        dv, sp = float(med_dollar[i]), float(med_spread[i])
        if key in filt.exclude:
            excluded[asset] = "excluded by config"
        elif filt.exclude_stablecoins and key in filt.stablecoins:
            excluded[asset] = "stablecoin or fiat"
        elif filt.exclude_memes and key in filt.memes:
            excluded[asset] = "meme coin"
        elif np.isnan(dv):
            excluded[asset] = f"no tradable bar in the {filt.lookback_days}-day lookback"
        elif dv < filt.min_median_daily_dollar_volume:
            excluded[asset] = (
                f"illiquid: median daily dollar volume {dv:,.0f} USD < minimum "
                f"{filt.min_median_daily_dollar_volume:,.0f} USD ({filt.lookback_days}-day lookback)"
            )
        elif np.isnan(sp):
            excluded[asset] = "no spread estimate in the lookback"
        elif sp > filt.max_median_spread:
            excluded[asset] = (
                f"wide spread: median relative spread {sp:.6f} > maximum {filt.max_median_spread:.6f}"
            )
        else:
            kept.append(asset)
    return UniverseReport(
        kept=tuple(kept),
        excluded=excluded,
        median_daily_dollar_volume=dict(zip(market.assets, map(float, med_dollar), strict=True)),
        median_spread=dict(zip(market.assets, map(float, med_spread), strict=True)),
        window=window,
    )


def apply_universe(market: MarketData, filt: UniverseFilter | None = None, as_of: int | None = None
                   ) -> tuple[MarketData, UniverseReport]:
    """The market restricted to the assets that pass ``filt``, and the report saying why.

    Raises DataError when nothing passes (an empty universe is never what a run wants).
    """
    report = screen(market, filt, as_of)
    for asset, reason in report.excluded.items():
        logger.info("universe: excluded %s: %s", asset, reason)
    if not report.kept:
        raise DataError(f"universe filter excluded every asset of {market.source!r}: {report.excluded}")
    return market.select(report.kept), report
