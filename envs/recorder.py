"""Episode history: raw per-step values kept during the episode, a DataFrame on request.

Nothing is formatted while the episode runs (a step appends references to arrays it
created anyway); `EpisodeRecorder.frame()` builds the table after the episode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class EpisodeRecorder:
    """Step history of one episode of one env."""

    def __init__(self, assets: tuple[str, ...]) -> None:
        self.assets = assets
        self.clear()

    def clear(self) -> None:
        self._rows: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def record(
        self,
        t: int,
        timestamp: int,
        equity: float,
        cash: float,
        weights: np.ndarray,
        target: np.ndarray,
        fees: float,
        slippage: float,
        turnover: float,
        reward: float,
        fills: list[dict[str, Any]],
        rejected: list[dict[str, Any]],
    ) -> None:
        self._rows.append((t, timestamp, equity, cash, weights, target, fees, slippage, turnover, reward,
                           fills, rejected))

    def frame(self) -> pd.DataFrame:
        """One row per step: bar, time (UTC, close of the executed bar's start), money, weights, fills."""
        cols = ["t", "timestamp", "equity", "cash", "weights", "target", "fees", "slippage", "turnover",
                "reward", "fills", "rejected"]
        if not self._rows:
            return pd.DataFrame(columns=["t", "time", "equity", "cash", "fees", "slippage", "turnover", "reward"])
        data = list(zip(*self._rows, strict=True))
        frame = pd.DataFrame(
            {
                "t": np.asarray(data[0], dtype=np.int64),
                "time": pd.to_datetime(np.asarray(data[1], dtype=np.int64), unit="s", utc=True),
                "equity": np.asarray(data[2], dtype=np.float64),
                "cash": np.asarray(data[3], dtype=np.float64),
                "fees": np.asarray(data[6], dtype=np.float64),
                "slippage": np.asarray(data[7], dtype=np.float64),
                "turnover": np.asarray(data[8], dtype=np.float64),
                "reward": np.asarray(data[9], dtype=np.float64),
            }
        )
        weights = np.vstack(data[cols.index("weights")])
        target = np.vstack(data[cols.index("target")])
        for i, asset in enumerate(self.assets):
            frame[f"w_{asset}"] = weights[:, i]
        for i, asset in enumerate(self.assets):
            frame[f"target_{asset}"] = target[:, i]
        frame["n_fills"] = [len(f) for f in data[10]]
        frame["fills"] = list(data[10])
        frame["rejected"] = list(data[11])
        frame["cum_fees"] = frame["fees"].cumsum()
        return frame
