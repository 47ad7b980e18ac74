"""A per-asset summary table of a market: period, bars, gaps, returns, volatility."""

from __future__ import annotations

import numpy as np
import pandas as pd

from envs.data.align import iso
from envs.data.market import MarketData

HOURS_PER_YEAR = 24 * 365


def _runs(mask: np.ndarray) -> int:
    """Number of maximal runs of True in a 1-D boolean array."""
    if not mask.any():
        return 0
    return int(np.count_nonzero(np.diff(np.r_[0, mask.astype(np.int8)]) == 1))


def market_summary(market: MarketData) -> pd.DataFrame:
    """One row per asset: first/last bar, bars present, missing hours and runs, returns, vol."""
    rows = []
    for i, asset in enumerate(market.assets):
        close = market.close[:, i]
        alive = np.flatnonzero(np.isfinite(close))
        if alive.size == 0:
            rows.append({"asset": asset, "bars": 0})
            continue
        life = slice(int(alive[0]), int(alive[-1]) + 1)
        missing = market.filled[life, i]
        c = close[life]
        r = np.diff(np.log(c))
        rows.append(
            {
                "asset": asset,
                "first_bar": iso(int(market.timestamps[life.start])),
                "last_bar": iso(int(market.timestamps[life.stop - 1])),
                "bars": int(c.size - missing.sum()),
                "missing_hours": int(missing.sum()),
                "gaps": _runs(missing),
                "total_return_pct": 100.0 * (c[-1] / c[0] - 1.0),
                "ann_return_pct": 100.0 * float(np.mean(r)) * HOURS_PER_YEAR if r.size else np.nan,
                "ann_vol_pct": 100.0 * float(np.std(r)) * np.sqrt(HOURS_PER_YEAR) if r.size > 1 else np.nan,
                "max_hourly_move_pct": 100.0 * float(np.max(np.abs(np.expm1(r)))) if r.size else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("asset")
