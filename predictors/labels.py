"""Training labels: forward log returns and "up net of the round-trip fee" per horizon.

Labels look into the future by design; they are used only to train, and the label at t
ends at bar ``label_end[t, h] = t + h``, which the walk-forward's purge and embargo use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from envs.data.market import MarketData
from envs.errors import ConfigError

HORIZONS: tuple[int, ...] = (1, 4, 24)


def fee_threshold(round_trip_fee: float) -> float:
    """Log return a round trip must beat to make money: ``-2 * log(1 - round_trip_fee / 2)``.

    ``round_trip_fee`` is the total of both sides (0.008 = Kraken's 0.40 % taker fee on
    the buy and on the sell). Buying with 1 USD and selling h hours later returns
    ``(1 - f)^2 * close[t+h] / close[t]`` with per-side fee ``f = round_trip_fee / 2``,
    which exceeds 1 exactly when ``log(close[t+h] / close[t]) > log(1 / (1 - f)^2)``.
    """
    if not 0.0 <= round_trip_fee < 2.0:
        raise ConfigError(f"round_trip_fee: expected a fraction in [0, 2), got {round_trip_fee!r}")
    return float(-2.0 * np.log1p(-round_trip_fee / 2.0))


@dataclass(frozen=True, eq=False)
class Labels:
    """Forward returns and up-labels, shape ``(T, N, H)``, horizons in ``horizons`` order."""

    fwd_return: np.ndarray  # (T, N, H) log(close[t+h] / close[t]), NaN where not defined
    up: np.ndarray  # (T, N, H) 1.0 / 0.0: fwd_return > fee_threshold(round_trip_fee); NaN with it
    horizons: tuple[int, ...]
    label_end: np.ndarray  # (T, H) int64: last bar whose close the label uses (t + h)


def make_labels(market: MarketData, horizons: Sequence[int] = HORIZONS, round_trip_fee: float = 0.008) -> Labels:
    """Forward log return and net-of-fee up label for every bar, asset and horizon.

    ``fwd_return[t, i, h] = log(close[t+h, i] / close[t, i])``; it is NaN when ``t + h``
    lies beyond the data, when either close is missing, or when any bar in ``t..t+h`` is
    not tradable (an unfilled gap: the position could not be opened, held through or
    closed at those prices). ``up`` is 1.0 where ``fwd_return > fee_threshold(fee)``
    (strictly), 0.0 where it is not, NaN where ``fwd_return`` is NaN.
    """
    hs = tuple(int(h) for h in horizons)
    if not hs or any(h < 1 for h in hs) or len(set(hs)) != len(hs):
        raise ConfigError(f"horizons: expected distinct positive ints, got {tuple(horizons)!r}")
    threshold = fee_threshold(round_trip_fee)
    T, N = market.n_bars, market.n_assets
    close = market.close
    bad = ~(market.tradable & np.isfinite(close))
    # bad_before[t] = number of bad bars among 0..t-1, so bars a..b hold bad_before[b+1] - bad_before[a]
    bad_before = np.vstack([np.zeros((1, N), dtype=np.int64), np.cumsum(bad, axis=0, dtype=np.int64)])
    fwd = np.full((T, N, len(hs)), np.nan)
    for k, h in enumerate(hs):
        if h >= T:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.log(close[h:] / close[:-h])
        any_bad = (bad_before[h + 1 :] - bad_before[: T - h]) > 0
        fwd[: T - h, :, k] = np.where(any_bad, np.nan, r)
    up = np.where(np.isnan(fwd), np.nan, (fwd > threshold).astype(np.float64))
    label_end = np.arange(T, dtype=np.int64)[:, None] + np.asarray(hs, dtype=np.int64)[None, :]
    return Labels(fwd_return=fwd, up=up, horizons=hs, label_end=label_end)
