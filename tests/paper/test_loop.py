"""The paper loop against the backtest: same orders, fills, fees and equity, bar for bar, on real Kraken hours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.baselines import EqualWeightRebalanced
from envs.data.loaders import to_unix
from envs.kraken_spot import KrakenSpotEnv
from paper import AuditChainError, StateStore
from paper.feeds.replay import ReplayFeed
from paper.loop import decision_config
from paper.market import append_bar, batch_from_payload, batch_payload
from risk.cost_gate import cost_inputs_from_env
from risk.projection import RiskProjector
from tests.paper.loop_helpers import backtest, compare, default_setup, kraken_market, paper_run
from tests.paper.loop_policy import ScriptedPolicy, clock

WINDOWS = [  # (start, end): a quiet week in June 2022 and the FTX collapse (the kill switch engages)
    ("2022-06-10T00:00:00Z", "2022-06-12T00:00:00Z"),
    ("2022-11-07T00:00:00Z", "2022-11-09T00:00:00Z"),
]


@pytest.fixture(scope="module")
def market():  # type: ignore[no-untyped-def]
    return kraken_market("2022-05-01", "2022-11-30T23:00:00Z")


def test_replay_feed_streams_recorded_bars_and_stops_at_the_end(market) -> None:  # type: ignore[no-untyped-def]
    end = int(market.timestamps[500])
    feed = ReplayFeed(market, end=end)
    i = int(np.flatnonzero(market.filled.any(axis=1))[0])  # an hour Kraken had no trade for some pair
    bar = feed.next_bar(int(market.timestamps[i - 1]))
    assert bar is not None and bar.hour == int(market.timestamps[i])
    miss = market.filled[i]
    assert np.isnan(bar.close[miss]).all() and np.array_equal(bar.close[~miss], market.close[i, ~miss])
    assert bar.flags == tuple(f"missing:{a}" for a, m in zip(market.assets, miss, strict=True) if m)
    assert feed.next_bar(end - 3600) is not None and feed.next_bar(end) is None  # nothing past feed.end
    hist = feed.history(int(market.timestamps[99]), 50)
    assert hist.n_bars == 50 and hist.timestamps[-1] == market.timestamps[99]
    with pytest.raises(ValueError, match="not a bar of the recorded market"):
        feed.history(int(market.timestamps[0]) - 7200, 5)


def test_streamed_bars_rebuild_the_recorded_market_bit_for_bit(market) -> None:  # type: ignore[no-untyped-def]
    """The loop's gap policy on streamed bars = the loader's "mark" policy (incl. hours with no trade)."""
    lo, hi = 400, 1400
    assert market.filled[lo:hi].any()  # the window has filled bars to rebuild
    feed = ReplayFeed(market)
    known = market.slice(0, lo)
    for _ in range(lo, hi):
        bar = feed.next_bar(int(known.timestamps[-1]))
        assert bar is not None
        known = append_bar(known, batch_from_payload(batch_payload(bar, known.assets)))  # via the FETCHED form
    assert known.equals(market.slice(0, hi))


def test_decision_env_over_known_bars_equals_the_full_period_env_at_its_row(market) -> None:  # type: ignore[no-untyped-def]
    """Causality: features, marks, risk inputs at row t need no bar after t."""
    cfg, lim = default_setup()
    full = KrakenSpotEnv(market=market, config=decision_config(cfg))
    proj_full = RiskProjector(lim, market, cost_inputs_from_env(full, lim.cost_gate_horizon))
    for t in (900, 2500, int(np.searchsorted(market.timestamps, to_unix(WINDOWS[1][0])))):
        part = KrakenSpotEnv(market=market.slice(0, t + 1), config=decision_config(cfg))
        proj = RiskProjector(lim, part.market, cost_inputs_from_env(part, lim.cost_gate_horizon))
        assert np.array_equal(part.core.features[t], full.core.features[t], equal_nan=True)
        assert np.array_equal(part.core.arrays.mark[t], full.core.arrays.mark[t], equal_nan=True)
        assert np.array_equal(proj.vol_cap[t], proj_full.vol_cap[t])
        assert np.array_equal(proj.costs.pack[t], proj_full.costs.pack[t], equal_nan=True)
        assert np.array_equal(proj.clusters.labels(t), proj_full.clusters.labels(t))
        assert proj.signals.engage[t] == proj_full.signals.engage[t]


@pytest.mark.parametrize("window", WINDOWS, ids=["june", "ftx"])
def test_paper_replay_equals_the_backtest_bar_for_bar(tmp_path: Path, market, window) -> None:  # type: ignore[no-untyped-def]
    """Same orders, fills, fees and equity curve as run_policy through env + RiskWrapper."""
    start, end = window
    cfg, lim = default_setup()
    mkt = market.between(None, to_unix(end))
    ref = backtest(mkt, start, end, ScriptedPolicy(), cfg, lim)
    store = paper_run(tmp_path / "s.db", mkt, start, end, ScriptedPolicy(), cfg, lim)
    got = compare(store, ref)
    assert got["mismatches"] == []
    assert got["hours"] == 48 and got["fills"] > 40 and got["orders"] >= got["fills"] // 3
    kinds = [r.kind for r in store.audit_records() if r.terminal]
    assert len(kinds) == 48 and set(kinds) <= {"traded", "held", "halted"}
    ids = [o.client_order_id for o in store.orders()]
    assert len(ids) == len(set(ids))
    store.verify()


def test_a_baseline_policy_with_memory_matches_too(tmp_path: Path, market) -> None:  # type: ignore[no-untyped-def]
    start, end = WINDOWS[0]
    cfg, lim = default_setup()
    mkt = market.between(None, to_unix(end))
    ref = backtest(mkt, start, end, EqualWeightRebalanced(every_hours=6), cfg, lim)
    store = paper_run(tmp_path / "s.db", mkt, start, end, EqualWeightRebalanced(every_hours=6), cfg, lim)
    got = compare(store, ref)
    assert got["mismatches"] == [] and got["fills"] > 0


def test_a_restart_between_hours_resumes_to_the_same_books(tmp_path: Path, market) -> None:  # type: ignore[no-untyped-def]
    start, end = WINDOWS[0]
    cfg, lim = default_setup()
    mkt = market.between(None, to_unix(end))
    ref = backtest(mkt, start, end, EqualWeightRebalanced(every_hours=6), cfg, lim)
    path = tmp_path / "s.db"
    for n in (7, 13, None):  # three processes, each with a fresh policy object: its memory comes from the store
        paper_run(path, mkt, start, end, EqualWeightRebalanced(every_hours=6), cfg, lim, max_hours=n).close()
    store = StateStore.open(path, clock=clock)
    assert compare(store, ref)["mismatches"] == []


def test_run_on_a_tampered_state_is_refused_naming_the_record(tmp_path: Path, market) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    start, end = WINDOWS[0]
    cfg, lim = default_setup()
    mkt = market.between(None, to_unix(end))
    path = tmp_path / "s.db"
    paper_run(path, mkt, start, end, ScriptedPolicy(), cfg, lim, max_hours=5).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE audit SET payload = replace(payload, '\"n_fills\":', '\"n_fills\": ') WHERE seq = 3")
    with pytest.raises(AuditChainError, match=r"seq 3|record 3"):
        paper_run(path, mkt, start, end, ScriptedPolicy(), cfg, lim)


def test_hours_the_process_was_down_are_missed_never_filled_and_the_run_goes_on(tmp_path: Path, market) -> None:  # type: ignore[no-untyped-def]
    from decimal import Decimal

    from paper.loop import PaperLoop, PaperSetup

    start, end = WINDOWS[0]
    cfg, lim = default_setup()
    mkt = market.between(None, to_unix(end))
    path = tmp_path / "s.db"
    paper_run(path, mkt, start, end, ScriptedPolicy(), cfg, lim, max_hours=6).close()
    store = StateStore.open(path, clock=clock)
    feed = ReplayFeed(mkt, end=end)
    loop = PaperLoop(store, feed, PaperSetup(cfg, lim, ScriptedPolicy()), feed.history(store.next_hour(), 10**9),
                     status=lambda s: None)
    down_from = store.next_hour()
    missed = loop.record_downtime(down_from + 4 * 3600)
    assert missed == [down_from + k * 3600 for k in range(4)]
    held = store.portfolio().units
    out = loop.run()
    assert len(out) == 48 - 6 - 4
    kinds = {r.hour: r.kind for r in store.audit_records() if r.terminal}
    assert [kinds[h] for h in missed] == ["missed"] * 4
    assert all(store.fills(h) == [] and store.orders(h) == [] for h in missed)  # nothing filled retroactively
    first = store.ledger_rows()[6]
    assert first["hour"] == down_from + 4 * 3600 and held != {} and sum(held.values(), Decimal(0)) > 0
    assert len(store.ledger_rows()) == 48 - 4
    store.verify()


def test_the_decision_records_the_predictions_and_regime_it_saw(tiny_market) -> None:
    """The DECIDED payload carries bar t's predictions and regime per asset, in a shape the dashboard reads."""
    from paper.dashboard.views import predictions_list, regime_map
    from paper.loop import REGIME_CHANNELS, signal_snapshot

    market = tiny_market(seed=2, n_bars=60, assets=("BTC", "ETH", "SOL"))
    names = ["meta_h1_p_up", "meta_h1_exp_return", "meta_h24_p_up", "meta_h24_exp_return", *REGIME_CHANNELS,
             "signals_available"]
    sig = np.zeros((60, 3, len(names)), dtype=np.float32)
    sig[:, :, 0], sig[:, :, 1], sig[:, :, 2], sig[:, :, 3] = 0.6, 0.001, 0.55, 0.004
    sig[:, :, 4:8] = [0.1, 0.6, 0.2, 0.1]
    sig[:, :2, -1] = 1.0  # SOL has no prediction yet
    sig[30, 0, 1] = np.nan
    env = KrakenSpotEnv(market, window=4, signals=sig, signal_names=names)
    snap = signal_snapshot(env.core, 30, market.assets)
    assert set(snap["predictions"]) == {"BTC", "ETH"} and set(snap["regime"]) == {"BTC", "ETH"}
    # the env reads a NaN signal as 0 (its signal contract), and the record shows what the decision saw
    assert snap["predictions"]["BTC"]["1"] == {"p_up": pytest.approx(0.6), "exp_return": 0.0}
    assert snap["predictions"]["ETH"]["24"]["exp_return"] == pytest.approx(0.004)
    records = predictions_list(snap["predictions"], market.assets)
    assert {(r["asset"], r["horizon"]) for r in records} == {(a, h) for a in ("BTC", "ETH") for h in (1, 24)}
    assert regime_map(snap["regime"], market.assets)["ETH"]["range"] == pytest.approx(0.6)
    assert signal_snapshot(KrakenSpotEnv(market, window=4).core, 30, market.assets) == {"predictions": {},
                                                                                          "regime": {}}


def test_the_integrity_mask_reaches_the_paper_decisions_as_in_the_backtest(tmp_path: Path, market) -> None:  # type: ignore[no-untyped-def]
    """A store market's cross-exchange integrity mask (False = Kraken disagreed with the references) is handed
    out bar by bar by the replay feed, persisted with the bar, and blocks the same entries as in the backtest."""
    import dataclasses

    start, end = WINDOWS[0]
    cfg, lim = default_setup()
    mkt = market.between(None, to_unix(end))
    ok = np.ones(mkt.close.shape, dtype=bool)
    lo = int(np.searchsorted(mkt.timestamps, to_unix(start)))
    ok[lo + 5 : lo + 20, 0] = False  # BTC fails the check for 15 hours, ETH for 6
    ok[lo + 30 : lo + 36, 1] = False
    mkt = dataclasses.replace(mkt, integrity_ok=ok)
    ref = backtest(mkt, start, end, EqualWeightRebalanced(every_hours=6), cfg, lim)
    store = paper_run(tmp_path / "s.db", mkt, start, end, EqualWeightRebalanced(every_hours=6), cfg, lim)
    got = compare(store, ref)
    assert got["mismatches"] == [] and got["fills"] > 0
    clean = paper_run(tmp_path / "c.db", dataclasses.replace(mkt, integrity_ok=np.ones_like(ok)), start, end,
                      EqualWeightRebalanced(every_hours=6), cfg, lim)
    assert [r["equity"] for r in clean.ledger_rows()] != [r["equity"] for r in store.ledger_rows()]  # it mattered
    from paper import Stage

    bar = store.stage_payload(int(mkt.timestamps[lo + 4]), Stage.FETCHED)["snapshot"]["bar"]
    assert bar["integrity_ok"][0] is False  # the FETCHED record holds the mask row of bar lo + 5
