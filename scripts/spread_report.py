"""Spread report: estimated (Corwin-Schultz, Abdi-Ranaldo) vs quoted spreads, and what they cost a policy.

    python scripts/spread_report.py                       # data from ../shared/data
    python scripts/spread_report.py --data DIR --out DIR

A report tool (no Hydra): prints two tables and writes ``spread_report.json``, then
``outputs: <folder>`` last, like the entry points.

1. Spreads of BTC and ETH on Kraken 2023 Q1 and Binance 2023 (hourly): Corwin-Schultz
   (24-bar window, the env's old default; 720), Abdi-Ranaldo (720, the env's fallback; 24),
   the share of zero AR estimates, and the quoted spread the env now charges
   (`envs.data.spreads`, >= one tick). In bp of the mid (1 bp = 1e-4), full spread.
2. Fixed policies over a year (Binance 2023; and Kraken 2023 Q1), 10,000 USD, daily decisions
   at 00:00 UTC: equal-weight BTC + ETH rebalanced daily, and a daily rotation between them
   (high turnover). Slippage and fees paid, notional traded, final equity, under the old cost
   model (``spread_source=corwin_schultz``, ``spread_window=24``, ``spread_floor=0.0002``)
   and the new default (``spread_source=auto``), for limit-first and market orders.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs.config import EnvConfig
from envs.data.indicators import abdi_ranaldo_spread, corwin_schultz_spread
from envs.data.loaders import load_csv_dir, load_kraken_dir, to_unix
from envs.data.market import MarketData
from envs.data.spreads import spread_model
from envs.kraken_spot import KrakenSpotEnv
from krakenrl.cli import cli_main, print_outputs

ROOT = Path(__file__).resolve().parents[1]
BP = 1e4
OLD = dict(spread_source="corwin_schultz", spread_window=24, spread_floor=0.0002)  # the env's defaults before issue 8
NEW: dict[str, Any] = {}  # today's defaults


def markets(data: Path) -> dict[str, tuple[MarketData, str, str]]:
    """(market with a warm-up month before the period, period start, period end) by name."""
    return {
        "kraken_2023q1": (load_kraken_dir(data / "kraken" / "ohlcvt_1h", assets=["BTC", "ETH"], start="2022-12-01",
                                          end="2023-03-31T23:00"), "2023-01-01", "2023-03-31T23:00"),
        "binance_2023": (load_csv_dir(data / "binance" / "spot_1h", assets=["BTC", "ETH"], start="2022-12-01",
                                      end="2023-12-31T23:00"), "2023-01-01", "2023-12-31T23:00"),
    }


def spread_stats(market: MarketData, start: str, end: str) -> dict[str, dict[str, float]]:
    lo = int(np.searchsorted(market.timestamps, to_unix(start)))
    hi = int(np.searchsorted(market.timestamps, to_unix(end), side="right"))
    est = {
        "cs24": corwin_schultz_spread(market, 24), "cs720": corwin_schultz_spread(market, 720),
        "ar720": abdi_ranaldo_spread(market, 720), "ar24": abdi_ranaldo_spread(market, 24),
        "quoted": spread_model(market, "table").spread,
    }
    out: dict[str, dict[str, float]] = {}
    for i, asset in enumerate(market.assets):
        row: dict[str, float] = {}
        for name, x in est.items():
            col = x[lo:hi, i]
            row[f"{name}_median_bp"] = float(np.nanmedian(col) * BP)
            row[f"{name}_mean_bp"] = float(np.nanmean(col) * BP)
        for name in ("ar24", "ar720"):
            col = est[name][lo:hi, i]
            row[f"{name}_zero_share"] = float(np.mean(col[np.isfinite(col)] == 0.0))
        out[asset] = row
    return out


POLICIES = ("equal_weight", "rotate")


def policy_costs(market: MarketData, start: str, end: str, overrides: dict[str, Any], order_type: str,
                 policy: str) -> dict[str, float]:
    """A daily decision at 00:00 UTC, holding otherwise: ``equal_weight`` rebalances BTC + ETH to 0.49
    each (room for fees); ``rotate`` holds 0.98 of one asset, switching every day (high turnover)."""
    lo = int(np.searchsorted(market.timestamps, to_unix(start)))
    hi = int(np.searchsorted(market.timestamps, to_unix(end), side="right")) - 1
    cfg = EnvConfig(**{"episode_hours": hi - lo, "order_type": order_type, "record_history": False, **overrides})
    env = KrakenSpotEnv(market, cfg)
    env.reset(seed=0, options={"start": lo})
    keep = np.zeros(market.n_assets + 1)
    slip = fees = traded = 0.0
    done = False
    while not done:
        t = env.snapshot().t
        hour = int(market.timestamps[t]) // 3600
        if hour % 24:
            action = keep
        elif policy == "equal_weight":
            action = env.weights_to_action(np.full(market.n_assets, 0.49))
        else:
            action = env.weights_to_action(0.98 * np.eye(market.n_assets)[(hour // 24) % market.n_assets])
        _, _, term, trunc, info = env.step(action)
        slip += info["slippage"]
        fees += info["fees"]
        traded += sum(f["qty"] * f["price"] for f in info["fills"])
        done = term or trunc
    return {"slippage_usd": slip, "fees_usd": fees, "traded_usd": traded, "final_equity": info["equity"],
            "slippage_bp_of_traded": slip / traded * BP if traded else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "spread_report" / time.strftime("%Y-%m-%d_%H-%M-%S"))
    args = ap.parse_args()
    report: dict[str, Any] = {"spreads_bp": {}, "policy": {}}
    for name, (market, start, end) in markets(args.data).items():
        report["spreads_bp"][name] = spread_stats(market, start, end)
        for policy in POLICIES:
            for order_type in ("limit", "market"):
                for label, overrides in (("before", OLD), ("after", NEW)):
                    key = f"{name}/{policy}/{order_type}/{label}"
                    report["policy"][key] = policy_costs(market, start, end, overrides, order_type, policy)
    print(f"{'market':<15}{'asset':<6}{'CS24 med':>9}{'CS24 mean':>10}{'CS720':>7}{'AR720 mean':>11}"
          f"{'AR720 0%':>9}{'AR24 mean':>10}{'AR24 0%':>8}{'quoted':>8}")
    for name, per_asset in report["spreads_bp"].items():
        for asset, r in per_asset.items():
            print(f"{name:<15}{asset:<6}{r['cs24_median_bp']:>9.2f}{r['cs24_mean_bp']:>10.2f}{r['cs720_mean_bp']:>7.2f}"
                  f"{r['ar720_mean_bp']:>11.3f}{100 * r['ar720_zero_share']:>8.0f}%{r['ar24_mean_bp']:>10.2f}"
                  f"{100 * r['ar24_zero_share']:>7.0f}%{r['quoted_mean_bp']:>8.3f}")
    print(f"\n{'policy run':<44}{'slippage $':>12}{'slip bp/traded':>15}{'fees $':>11}{'traded $':>12}{'equity $':>11}")
    for key, r in report["policy"].items():
        print(f"{key:<44}{r['slippage_usd']:>12.2f}{r['slippage_bp_of_traded']:>15.3f}{r['fees_usd']:>11.2f}"
              f"{r['traded_usd']:>12.0f}{r['final_equity']:>11.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "spread_report.json").write_text(json.dumps(report, indent=1))
    print_outputs(args.out)


if __name__ == "__main__":
    cli_main(main)
