"""Correlation clusters on a schedule, causal: bars <= t only.

At every refresh time (timestamps that are multiples of ``refresh_hours`` hours, UTC) the
trailing ``window`` hourly log returns are correlated and grouped by average-linkage
hierarchical clustering on the distance ``1 - corr``, cut at ``distance``. A decision at
bar t uses the clusters of the latest refresh at or before t, so backtests and paper
trading (which only knows bars <= t) see the same clusters.

Missing returns (no bar) count as zero (the price did not move); an asset with fewer
than ``window // 4`` real returns in the window has unknown correlations and joins one
conservative "unknown" cluster with every other such asset.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from envs.data.indicators import log_returns
from envs.data.market import HOUR, MarketData


class ClusterSchedule:
    """Cluster labels per refresh epoch, computed lazily and cached."""

    def __init__(self, market: MarketData, *, window: int, distance: float, refresh_hours: int) -> None:
        self.market = market
        self.window = int(window)
        self.distance = float(distance)
        self.refresh_hours = int(refresh_hours)
        self._returns = log_returns(market.close)
        self._cache: dict[int, np.ndarray] = {}
        # bar index of the latest refresh at or before each bar (0 if none yet)
        ts = np.asarray(market.timestamps, dtype=np.int64)
        since = (ts % (self.refresh_hours * HOUR)) // HOUR
        self._refresh = np.maximum(0, np.arange(ts.shape[0], dtype=np.int64) - since).tolist()

    def refresh_index(self, t: int) -> int:
        """Bar index of the latest refresh at or before bar t (0 if none yet)."""
        return int(self._refresh[t])

    def labels(self, t: int) -> np.ndarray:
        """(N,) int cluster label per asset for a decision at bar t (labels start at 0)."""
        r = self._refresh[t]
        cached = self._cache.get(r)
        if cached is None:
            cached = self.compute(r)
            self._cache[r] = cached
        return cached

    def precompute(self) -> None:
        """Compute every refresh epoch of the market now (a wrapper's step loop then only looks up)."""
        for r in sorted(set(self._refresh)):
            self.labels(r)

    def compute(self, t: int) -> np.ndarray:
        """Labels from the returns of bars ``(t - window, t]``."""
        n = self.market.n_assets
        rets = self._returns[max(0, t - self.window + 1) : t + 1]
        finite = np.isfinite(rets)
        known = finite.sum(axis=0) >= max(2, self.window // 4)
        labels = np.zeros(n, dtype=np.int64)
        idx = np.flatnonzero(known)
        next_label = 0
        if idx.size == 1:
            labels[idx] = 0
            next_label = 1
        elif idx.size > 1:
            x = np.where(finite[:, idx], rets[:, idx], 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = np.corrcoef(x, rowvar=False)
            corr = np.nan_to_num(corr, nan=0.0)
            dist = np.clip(1.0 - corr, 0.0, 2.0)
            np.fill_diagonal(dist, 0.0)
            dist = 0.5 * (dist + dist.T)
            z = linkage(squareform(dist, checks=False), method="average")
            found = fcluster(z, t=self.distance, criterion="distance")
            # relabel in order of first appearance so labels are stable and start at 0
            order: dict[int, int] = {}
            for c in found.tolist():
                order.setdefault(c, len(order))
            labels[idx] = [order[c] for c in found.tolist()]
            next_label = len(order)
        unknown = np.flatnonzero(~known)
        if unknown.size:
            labels[unknown] = next_label
        return labels
