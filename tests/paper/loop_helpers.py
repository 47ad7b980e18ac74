"""Builders for the paper-loop tests: a real Kraken market, a busy scripted policy, backtest vs paper runs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from agents.baselines import EpisodeResult, run_policy
from agents.envs import evaluation_env
from agents.evaluation import in_cash_until
from agents.pipeline import Period
from envs.config import EnvConfig
from envs.data.loaders import load_kraken_dir, to_unix
from envs.data.market import MarketData
from paper import StateStore
from paper.feeds.replay import ReplayFeed
from paper.loop import PaperLoop, PaperSetup
from risk.limits import RiskLimits, resolve_limits
from tests.paper.loop_policy import clock

KRAKEN = Path("/work/shared/data/kraken/ohlcvt_1h")
ROOT = Path(__file__).resolve().parents[2]
_CACHE: dict[str, MarketData] = {}


def kraken_market(start: str = "2022-01-01", end: str = "2022-12-31T23:00:00Z") -> MarketData:
    key = f"{start}|{end}"
    if key not in _CACHE:
        _CACHE[key] = load_kraken_dir(KRAKEN, assets=["BTC", "ETH", "LTC", "XRP", "BCH"], start=start, end=end)
    return _CACHE[key]


def backtest(market: MarketData, start: str, end: str, policy: Any, cfg: EnvConfig, limits: RiskLimits,
             signals: np.ndarray | None = None, names: Any = None, mode: str = "weights") -> EpisodeResult:
    lo = int(np.searchsorted(market.timestamps, to_unix(start)))
    hi = int(np.searchsorted(market.timestamps, to_unix(end), side="right")) - 1
    env = evaluation_env(market, signals, names, cfg, limits, Period.of(market, lo, hi), action_mode=mode)
    # as scripts/evaluate.py rolls out: a halted account then sits in cash to the end of the period
    return in_cash_until(run_policy(env, policy, seed=0), market.timestamps[lo : hi + 1])


def paper_run(path: Path, market: MarketData, start: str, end: str, policy: Any, cfg: EnvConfig,
              limits: RiskLimits, signals: np.ndarray | None = None, names: Any = None,
              max_hours: int | None = None) -> StateStore:
    first = int(to_unix(start))  # type: ignore[arg-type]
    feed = ReplayFeed(market, end=end)
    if path.exists():
        store = StateStore.open(path, clock=clock)
    else:
        store = StateStore.create(path, run_id="paper-test", config_hash="cfg", first_hour=first,
                                  initial_cash=Decimal(repr(float(cfg.initial_cash))), clock=clock)
    setup = PaperSetup(cfg, limits, policy, signals, names)
    loop = PaperLoop(store, feed, setup, feed.history(store.next_hour(), 10**7), status=lambda s: None)
    loop.run(max_hours)
    return store


def default_setup() -> tuple[EnvConfig, RiskLimits]:
    return EnvConfig(), resolve_limits("spec_a")


def compare(store: StateStore, result: EpisodeResult) -> dict[str, Any]:
    """Bar-for-bar comparison of a paper store with a backtest episode: mismatches and totals."""
    rows = store.ledger_rows()
    eq_paper = np.array([float(r["equity"]) for r in rows])
    fees_paper = np.array([float(r["fees"]) for r in rows])
    n = len(rows)
    bad: list[str] = []
    if n != len(result.fees):
        bad.append(f"hours: paper {n}, backtest {len(result.fees)}")
    m = min(n, len(result.fees))
    eq_diff = np.flatnonzero(eq_paper[:m] != result.equity[1 : m + 1])
    fee_diff = np.flatnonzero(fees_paper[:m] != result.fees[:m])
    if eq_diff.size:
        bad.append(f"equity differs at {eq_diff.size} hours, first {eq_diff[0]}: {eq_paper[eq_diff[0]]!r} vs "
                   f"{result.equity[1 + eq_diff[0]]!r}")
    if fee_diff.size:
        bad.append(f"fees differ at {fee_diff.size} hours, first {fee_diff[0]}")
    n_fills = 0
    for k in range(m):
        hour = rows[k]["hour"]
        paper = sorted((float(f.price), float(f.units), float(f.fee), f.liquidity) for f in store.fills(hour))
        step = result.fills[k] if k < len(result.fills) else []  # none once halted (in cash to the end)
        env = sorted((float(f["price"]), float(f["qty"]), float(f["fee"]), f["liquidity"]) for f in step)
        n_fills += len(env)
        if paper != env:
            bad.append(f"fills differ at hour {k}: {paper} vs {env}")
            break
    return {"mismatches": bad, "hours": m, "fills": n_fills, "fees": float(fees_paper.sum()),
            "final_equity": float(eq_paper[-1]) if n else float("nan"), "orders": len(store.orders())}
