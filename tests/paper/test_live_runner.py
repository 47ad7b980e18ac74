"""`LiveRunner`: the paper loop against a (fake) clock over a real ccxt kraken replaying Kraken's API.

What a live run must do besides trading: wait for bars, record the hours it was down as
missed (never filled), turn an outage or stale data into the kill switch (recorded once,
applied at the next decision, latched until an operator reactivates) and stop cleanly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from envs.data.loaders import load_kraken_dir
from envs.errors import ConfigError
from paper import StateStore
from paper.app import check_books
from paper.live import LiveConfig, first_decidable_hour
from paper.loop import feed_outage
from tests.paper.live_helpers import H0, T0, H, live_run
from tests.paper.loop_helpers import KRAKEN, default_setup, paper_run
from tests.paper.loop_policy import ScriptedPolicy


def kinds(store: StateStore) -> list[str]:
    return [r.kind for r in store.audit_records() if r.terminal]


def test_first_decidable_hour_is_the_earliest_cycle_still_on_time() -> None:
    h = 1_700_000_000 // H * H
    assert first_decidable_hour(h + 2 * H + 599, 600) == h  # bar h+1 closed 599 s ago: still on time
    assert first_decidable_hour(h + 2 * H + 600, 600) == h + H  # too late for h
    assert first_decidable_hour(h + 2 * H, 600) == h


@pytest.mark.parametrize("field,value", [("poll_s", 0), ("stale_after_s", -1.0), ("grace_s", "x")])
def test_live_config_refuses_bad_values_naming_the_key(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"paper.live.{field}"):
        LiveConfig(**{field: value})  # type: ignore[arg-type]


def test_live_run_waits_for_each_bar_and_equals_the_replay_of_the_same_bars(tmp_path: Path) -> None:
    store, runner, fake, _session = live_run(tmp_path / "live.db")
    out = runner.run(max_hours=6)
    assert [o.hour for o in out] == [H0 + k * H for k in range(6)]
    # it waited for each execution bar to close: the 6th cycle (hour H0+5h) needs bar H0+6h, closed at H0+7h
    assert H0 + 7 * H <= fake() < H0 + 7 * H + 120
    assert kinds(store) == [o.kind for o in out] and "missed" not in kinds(store)
    store.verify()
    assert check_books(store) == []
    # the same hours replayed from the recorded files (ReplayFeed): same orders, fills, fees and equity
    market = load_kraken_dir(KRAKEN, assets=["BTC", "ETH"], start=str(np.datetime64(H0 - 299 * H, "s")) + "Z",
                             end=str(np.datetime64(H0 + 6 * H, "s")) + "Z")
    cfg, limits = default_setup()
    ref = paper_run(tmp_path / "replay.db", market, str(np.datetime64(H0, "s")) + "Z",
                    str(np.datetime64(H0 + 6 * H, "s")) + "Z", ScriptedPolicy(), cfg, limits)
    live_rows, ref_rows = store.ledger_rows(), ref.ledger_rows()
    assert [(r["hour"], r["equity"], r["fees"], r["cash"]) for r in live_rows] == \
        [(r["hour"], r["equity"], r["fees"], r["cash"]) for r in ref_rows]
    assert sorted((f.price, f.units, f.fee, f.liquidity) for f in store.fills()) == \
        sorted((f.price, f.units, f.fee, f.liquidity) for f in ref.fills())
    assert len(store.fills()) > 0
    store.close()
    ref.close()


def test_hours_the_process_was_down_are_recorded_missed_never_filled(tmp_path: Path) -> None:
    path = tmp_path / "down.db"
    store, runner, _, _ = live_run(path)
    runner.run(max_hours=2)
    eq_before = store.ledger_rows()[-1]["equity"]
    store.close()
    # restart at H0 + 7h + 90 s: the cycles of H0+2h .. H0+4h were due (at H0+4h .. H0+6h) while the
    # process was down; H0+5h's is due at H0+7h and still on time (grace 600 s)
    store, runner, _fake, _ = live_run(path, t0=T0 + 5 * H + 30)
    runner.run(max_hours=1)
    k = kinds(store)
    assert k[:2] != ["missed", "missed"] and k[2:5] == ["missed"] * 3 and k[5] in ("traded", "held", "halted")
    assert len(k) == 6 and store.ledger_rows()[-1]["hour"] == H0 + 5 * H
    missed = [r for r in store.audit_records() if r.kind == "missed"]
    assert all(r.payload_obj()["reason"] == "process down" for r in missed)
    assert not store.fills(H0 + 3 * H)  # nothing filled retroactively
    assert store.ledger_rows()[1]["equity"] == eq_before
    store.verify()
    assert check_books(store) == []
    store.close()


@pytest.mark.parametrize("fault", ["maintenance", "cancel_only", "timeouts"])
def test_an_outage_engages_the_kill_switch_once_and_the_hours_it_covered_are_missed(
        tmp_path: Path, fault: str) -> None:
    session_box: dict[str, object] = {}

    def start() -> None:
        s = session_box["s"]
        if fault == "timeouts":
            s.fail_next(*["timeout"] * 10_000)  # type: ignore[attr-defined]
        else:
            s.status = fault  # type: ignore[attr-defined]

    def end() -> None:
        s = session_box["s"]
        s.failures.clear()  # type: ignore[attr-defined]
        s.status = "online"  # type: ignore[attr-defined]

    store, runner, fake, session = live_run(tmp_path / "o.db")
    session_box["s"] = session
    runner.run(max_hours=2)
    fake.at(T0 + 2 * H + 1800, start)
    fake.at(T0 + 5 * H, end)
    out = runner.run(max_hours=3)
    recs = store.audit_records()
    down = [r for r in recs if r.kind == "kill_switch" and r.payload_obj().get("source") == "feed"]
    reason = "exchange_down" if fault == "timeouts" else fault
    assert [r.payload_obj()["reasons"] for r in down] == [[reason]]  # recorded once for the whole outage
    ups = [r for r in recs if r.kind == "fault" and r.payload_obj().get("feed") == "up"]
    assert len(ups) == 1 and feed_outage(recs) is None
    missed = [r for r in recs if r.kind == "missed"]
    assert missed and all(r.payload_obj()["reason"] == f"feed down ({reason})" for r in missed)
    # the first decision after the outage: the switch is engaged (latched), entries refused, account halted
    after = [o for o in out if o.hour > missed[-1].hour]
    assert after and after[0].kill_switch and after[0].kind == "halted"
    assert all(not o.kill_switch for o in out if o.hour < missed[0].hour)
    risk = store.risk_state()
    assert risk.kill_switch_engaged and "exchange_down" in (risk.kill_switch_trigger or "")
    assert all(not store.fills(r.hour) or r.kind != "missed" for r in missed)
    store.verify()
    assert check_books(store) == []
    store.close()


def test_stale_data_engages_the_kill_switch_after_the_configured_delay(tmp_path: Path) -> None:
    store, runner, fake, _session = live_run(tmp_path / "stale.db")
    runner.run(max_hours=2)
    fake.freeze_at = fake()  # Kraken stops publishing new bars (its API still answers)
    fake.sync()
    stop_at = fake() + 3 * H
    runner.stop = lambda: fake() >= stop_at
    runner.run()
    recs = store.audit_records()
    stale = [r for r in recs if r.kind == "kill_switch" and r.payload_obj().get("source") == "feed"]
    assert [r.payload_obj()["reasons"] for r in stale] == [["stale"]]
    assert feed_outage(recs) is not None and feed_outage(recs)[0] == "stale"  # type: ignore[index]
    store.verify()
    store.close()


def test_reactivation_after_an_outage_clears_the_switch_and_trading_resumes(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from paper.app import cmd_reactivate

    store, runner, fake, session = live_run(tmp_path / "r.db")
    runner.run(max_hours=2)
    fake.at(T0 + 2 * H + 1800, lambda: setattr(session, "status", "maintenance"))
    fake.at(T0 + 4 * H, lambda: setattr(session, "status", "online"))
    out = runner.run(max_hours=2)  # the hour before the outage, then the first one after it
    assert out[-1].kill_switch and store.risk_state().kill_switch_engaged
    path = store.path
    store.close()
    cmd_reactivate(OmegaConf.create({"operator": "alice", "reason": "Kraken back online", "state": str(path)}),
                   lambda s: None)
    store, runner, fake, session = live_run(path, t0=fake())
    out = runner.run(max_hours=2)
    assert out and not out[0].kill_switch and not store.risk_state().kill_switch_engaged
    store.verify()
    store.close()


def test_a_stop_request_finishes_the_hour_in_progress_and_leaves_no_open_cycle(tmp_path: Path) -> None:
    done: list[int] = []
    store, runner, _fake, _ = live_run(tmp_path / "stop.db", stop=lambda: len(done) >= 3)
    runner.loop.status = lambda line: done.append(1)
    out = runner.run()
    assert len(out) == 3 and store.open_cycle() is None
    store.verify()
    store.close()


def test_a_retrain_due_at_an_hour_is_audited_once_with_its_decision(tmp_path: Path) -> None:
    """The predictors refit at a walk-forward fold's first test bar: that hour's decision carries a retrain event."""
    fold = {"fold": 7, "train_start": "2023-01-01T00:00:00Z", "train_end": "2023-03-29T00:00:00Z",
            "test_start": "2023-03-30T08:00:00Z", "test_end": "2023-03-31T23:00:00Z", "store": "abc"}
    store, runner, _, _ = live_run(tmp_path / "rt.db")
    runner.loop.setup.retrains = {H0 + H: fold}
    runner.run(max_hours=3)
    recs = [r for r in store.audit_records() if r.kind == "retrain"]
    assert len(recs) == 1 and recs[0].hour == H0 + H
    assert recs[0].payload_obj()["fold"] == 7 and recs[0].payload_obj()["hour"] == "2023-03-30T08:00:00Z"
    store.verify()
    store.close()


def test_readiness_reads_each_item_from_the_live_runs_evidence(tmp_path: Path) -> None:
    """An outage, a reactivation, taker fills against the ticker's spread: each checklist item says what happened."""
    from omegaconf import OmegaConf

    from envs.config import EnvConfig
    from paper.app import cmd_reactivate, readiness

    market_orders = EnvConfig(order_type="market")  # taker fills: the slippage model is exercised
    store, runner, fake, session = live_run(tmp_path / "ready.db", env=market_orders)
    runner.run(max_hours=2)
    fake.at(T0 + 2 * H + 1800, lambda: setattr(session, "status", "maintenance"))
    fake.at(T0 + 4 * H, lambda: setattr(session, "status", "online"))
    runner.run(max_hours=2)
    path = store.path
    store.close()
    cmd_reactivate(OmegaConf.create({"operator": "alice", "reason": "Kraken back online", "state": str(path)}),
                   lambda s: None)
    store, runner, fake, session = live_run(path, t0=fake(), env=market_orders)
    runner.run(max_hours=8)
    items = {i["item"].split(" (")[0]: i for i in readiness(store)}
    assert not items["paper trading for 30 days"]["met"] and "missed" in items["paper trading for 30 days"]["evidence"]
    ks = items["kill switch tested"]
    assert ks["met"] and "1 engagement(s)" in ks["evidence"] and "1 reactivation(s)" in ks["evidence"]
    assert items["fee model checked against the paper fills"]["met"]
    slip = items["slippage model checked against the spread the feed observed"]
    n = int(slip["evidence"].split(" hours with taker fills and an observed spread")[0])
    takers = [f for f in store.fills() if f.liquidity == "taker"]
    assert takers and n > 0 and slip["met"]  # the model charges more than half the recorded ticker spread
    ratio = float(slip["evidence"].split("median modelled / observed ")[1].split(";")[0])
    assert ratio > 1.0
    store.close()


def test_a_retrain_due_at_a_missed_hour_is_carried_by_the_next_decision(tmp_path: Path) -> None:
    fold = {"fold": 3, "train_start": "2023-01-01T00:00:00Z", "train_end": "2023-03-29T00:00:00Z",
            "test_start": "2023-03-30T10:00:00Z", "test_end": "2023-03-31T23:00:00Z", "store": "abc"}
    path = tmp_path / "rm.db"
    store, runner, _, _ = live_run(path)
    runner.run(max_hours=2)
    store.close()
    store, runner, _, _ = live_run(path, t0=T0 + 5 * H + 30)  # H0+2h .. H0+4h missed (see the downtime test)
    runner.loop.setup.retrains = {H0 + 3 * H: fold}  # due at a missed hour
    runner.run(max_hours=1)
    recs = [r for r in store.audit_records() if r.kind == "retrain"]
    assert len(recs) == 1 and recs[0].hour == H0 + 5 * H and recs[0].payload_obj()["fold"] == 3
    assert recs[0].payload_obj()["hour"] == "2023-03-30T10:00:00Z"  # when the refit was due
    store.verify()
    store.close()
