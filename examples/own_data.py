"""Your own market and your own signals: a pandas DataFrame in, a trained PPO policy out.

1. Bars as a *long* DataFrame, one row per (timestamp, asset): columns ``timestamp``,
   ``asset``, ``open``, ``high``, ``low``, ``close``, ``volume`` (optionally ``trades``).
   Here they are read from a folder of hourly CSVs (``--data``, e.g. the Binance dump
   ``shared/data/binance/spot_1h``); without one, a random-walk frame is generated.
2. ``MarketData.from_frame(df, layout="long")`` puts them on one gapless hourly UTC grid,
   through the same validation as the file loaders (unsorted or conflicting timestamps,
   bad prices, negative volume raise a clear error; gaps follow ``gap_policy``).
3. Your signals as a ``T x N x K`` float array aligned with the market (``signals[t, i, k]``
   is signal k of asset i known at the *close* of bar t: use only bars <= t), with names.
   NaN means "not available": the env shows it as 0 and sets a ``signals_available`` flag.
4. The env takes both: ``gym.make(id, market=market, signals=..., signal_names=[...])``;
   the observation gains a ``signals`` entry (N x (K + 1)).

Run: ``python examples/own_data.py [--steps 2048] [--data DIR]``. The last line is ``RESULT {...}`` (JSON).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

import krakenrl  # noqa: F401 - registers the env ids (Gymnasium 1.x loads no env plugins by itself)
from envs import MarketData

ENV_ID = "krakenrl/KrakenSpot-v0"  # registered by `import krakenrl`
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance" / "spot_1h"  # beside the repo


def read_long_frame(folder: Path, assets: list[str], start: str, end: str) -> pd.DataFrame:
    """One long frame from files ``{ASSET}USDT_1h.csv[.gz]`` (header: timestamp in Unix seconds, OHLCV)."""
    parts = []
    for asset in assets:
        path = next(folder.glob(f"{asset}USDT_1h.csv*"))
        df = pd.read_csv(path)
        df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s", utc=True)
        df = df[(df["timestamp"] >= pd.Timestamp(start, tz="UTC")) & (df["timestamp"] <= pd.Timestamp(end, tz="UTC"))]
        parts.append(df.assign(asset=asset))
    return pd.concat(parts, ignore_index=True)


def random_long_frame(assets: list[str], hours: int, seed: int) -> pd.DataFrame:
    """A stand-in long frame: geometric random walks with consistent OHLC and random volume."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2023-01-01", periods=hours, freq="h", tz="UTC")
    parts = []
    for price0, asset in zip((30_000.0, 2_000.0, 25.0), assets, strict=False):
        close = price0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, hours)))
        open_ = np.concatenate([[price0], close[:-1]])
        wiggle = np.abs(rng.normal(0.0, 0.003, (2, hours)))
        parts.append(pd.DataFrame({
            "timestamp": stamps, "asset": asset, "open": open_, "close": close,
            "high": np.maximum(open_, close) * (1 + wiggle[0]), "low": np.minimum(open_, close) * (1 - wiggle[1]),
            "volume": rng.lognormal(5.0, 0.5, hours) * 1e6 / price0,
        }))
    return pd.concat(parts, ignore_index=True)


def make_signals(market: MarketData) -> tuple[np.ndarray, list[str]]:
    """Two causal signals per asset: 24 h log-momentum and log volume over its 7-day mean.

    Row t uses bars <= t only, so the env may show it at the decision made at bar t's close.
    """
    close = pd.DataFrame(market.close)
    volume = pd.DataFrame(market.volume)
    momentum = np.log(close / close.shift(24)) * 10.0  # NaN for the first 24 bars: "not available"
    volume_ratio = np.log((volume + 1e-9) / (volume.rolling(168, min_periods=24).mean() + 1e-9))
    signals = np.stack([momentum.to_numpy(), volume_ratio.to_numpy()], axis=-1)  # (T, N, K=2)
    return signals, ["momentum_24h", "volume_vs_7d"]


class FeeTally(BaseCallback):
    """Sums ``info["fees"]`` (USD paid per step, reported by the env) over training."""

    def __init__(self) -> None:
        super().__init__()
        self.fees = 0.0

    def _on_step(self) -> bool:
        self.fees += sum(float(info.get("fees", 0.0)) for info in self.locals["infos"])
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2_048, help="PPO timesteps (default 2048)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of {ASSET}USDT_1h.csv[.gz] files")
    parser.add_argument("--assets", nargs="+", default=["BTC", "ETH", "SOL"])
    parser.add_argument("--start", default="2023-01-01")
    parser.add_argument("--end", default="2023-06-30T23:00")
    parser.add_argument("--episode-hours", type=int, default=168)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.data.is_dir():
        frame, origin = read_long_frame(args.data, args.assets, args.start, args.end), str(args.data)
    else:
        frame, origin = random_long_frame(args.assets, 24 * 120, args.seed), "generated random walk"
    market = MarketData.from_frame(frame, layout="long", gap_policy="mark", source=origin)
    signals, names = make_signals(market)
    print(f"market from {origin}: {market.n_assets} assets {list(market.assets)}, {market.n_bars} hourly bars; "
          f"signals {signals.shape} {names}")

    env = gym.make(ENV_ID, market=market, signals=signals, signal_names=names, episode_hours=args.episode_hours)
    print("observation:", {k: v.shape for k, v in env.observation_space.items()})
    model = PPO("MultiInputPolicy", env, n_steps=256, batch_size=64, seed=args.seed, device="cpu", verbose=0)
    fees = FeeTally()
    model.learn(total_timesteps=args.steps, callback=fees)

    # one deterministic episode with the trained policy
    obs, info = env.reset(seed=args.seed + 1)
    start_equity, eval_fees, done = info["equity"], 0.0, False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, terminated, truncated, info = env.step(action)
        eval_fees += info["fees"]
        done = terminated or truncated
    result = {"fees_paid": eval_fees, "total_return": info["equity"] / start_equity - 1.0,
              "termination_reason": info["termination_reason"]}
    print(f"trained {model.num_timesteps} timesteps; fees paid in training: {fees.fees:,.2f} USD")
    print(f"evaluation: return {result['total_return']:+.2%}, fees paid {eval_fees:,.2f} USD")
    summary = {"example": "own_data", "timesteps": model.num_timesteps, "fees_paid": fees.fees,
               "n_assets": market.n_assets, "n_bars": market.n_bars, "signals": names, "eval": result}
    print("RESULT " + json.dumps(summary))


if __name__ == "__main__":
    main()
