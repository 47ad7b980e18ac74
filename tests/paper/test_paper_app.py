"""paper_trade.py's commands on real Kraken hours: run, status, verify, replay-hour, reactivate, a tampered file."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from paper import Stage, StateStore
from paper.app import COMMANDS
from tests.agents.pipeline_helpers import compose_config
from tests.paper.loop_helpers import KRAKEN, ROOT


def overrides(state: Path, start: str, end: str, policy: str = "baseline:equal_weight_daily") -> list[str]:
    return [f"policy={policy}", f"feed.path={KRAKEN}", "feed.assets=[BTC,ETH,LTC,XRP,BCH]",
            "feed.history_start=2022-05-01", f"feed.start={start}", f"feed.end={end}", f"state={state}"]


def call(command: str, extra: list[str]) -> tuple[int, list[str]]:
    lines: list[str] = []
    rc = COMMANDS[command](compose_config("paper_trade", [f"command={command}", *extra]), lines.append)
    return rc, lines


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[str]]:
    state = tmp_path_factory.mktemp("app") / "paper.db"
    ov = overrides(state, "2022-06-01T00:00:00Z", "2022-06-02T00:00:00Z")
    rc, lines = call("run", ov)
    assert rc == 0
    return state, ov, lines


def test_run_prints_one_status_line_per_hour_and_status_reads_the_books(ran) -> None:  # type: ignore[no-untyped-def]
    state, _ov, lines = ran
    hourly = [ln for ln in lines if " equity=" in ln]
    assert len(hourly) == 24 and hourly[0].startswith("2022-06-01T00:00:00Z traded")
    rc, out = call("status", [f"state={state}"])
    text = "\n".join(out)
    assert rc == 0 and "hours 24" in text and "kill switch off" in text and "positions {" in text
    assert call("verify", [f"state={state}"])[0] == 0


def test_a_second_run_resumes_and_does_nothing_more(ran) -> None:  # type: ignore[no-untyped-def]
    state, ov, _ = ran
    before = StateStore.open(state, readonly=True)
    head = before.audit_head()
    before.close()
    rc, lines = call("run", ov)
    assert rc == 0 and lines[-1].startswith("processed 0 hours")
    after = StateStore.open(state, readonly=True)
    assert after.audit_head() == head
    after.close()


@pytest.mark.parametrize("hour", ["2022-06-01T00:00:00Z", pytest.param("2022-06-01T13:00:00Z", marks=pytest.mark.slow),
                                  pytest.param("2022-06-01T23:00:00Z", marks=pytest.mark.slow)])
def test_replay_hour_recomputes_the_same_decision_orders_fills_and_books(ran, hour: str) -> None:  # type: ignore[no-untyped-def]
    _state, ov, _ = ran
    rc, out = call("replay-hour", [*ov, f"hour={hour}"])
    assert rc == 0 and out[-1] == f"replay-hour {hour}: decision=ok orders=ok fills=ok equity=ok statuses=ok"


def test_replay_hour_notices_a_decision_that_does_not_recompute(ran, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state, ov, _ = ran
    copy = tmp_path / "copy.db"
    shutil.copy(state, copy)
    ov = [o if not o.startswith("state=") else f"state={copy}" for o in ov]
    # another policy over the same audit trail: its decision at that hour is not the recorded one
    rc, out = call("replay-hour", [*[o for o in ov if not o.startswith("policy=")],
                                   "policy=baseline:all_cash", "hour=2022-06-01T00:00:00Z"])
    assert rc == 1 and "decision=DIFFERS" in out[-1]


def test_verify_on_a_tampered_state_exits_2_naming_the_record(ran, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state, _, _ = ran
    bad = tmp_path / "bad.db"
    shutil.copy(state, bad)
    with sqlite3.connect(bad) as conn:
        conn.execute("UPDATE audit SET payload = replace(payload, '\"n_fills\":5', '\"n_fills\":6') WHERE seq = 2")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "scripts/paper_trade.py", "command=verify", f"state={bad}",
                          f"hydra.run.dir={tmp_path / 'out'}"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2
    assert "audit record seq 2" in res.stderr and "record edited" in res.stderr


@pytest.mark.slow
def test_reactivate_is_audited_and_applied_at_the_next_decision(tmp_path: Path) -> None:
    state = tmp_path / "ftx.db"
    ov = overrides(state, "2022-11-08T00:00:00Z", "2022-11-08T20:00:00Z")
    assert call("run", ov)[0] == 0
    store = StateStore.open(state, readonly=True)
    engaged = store.risk_state()
    store.close()
    assert engaged.kill_switch_engaged and "volatility_spike" in str(engaged.kill_switch_trigger)
    with pytest.raises(Exception, match="operator=NAME and reason=TEXT"):
        call("reactivate", [f"state={state}", "operator=alice"])
    rc, out = call("reactivate", [f"state={state}", "operator=alice", "reason=checked the FTX move by hand"])
    assert rc == 0 and "reactivation recorded" in out[0]
    assert call("run", [*ov[:-2], "feed.end=2022-11-09T12:00:00Z", f"state={state}"])[0] == 0
    store = StateStore.open(state, readonly=True)
    events = [r for r in store.audit_records() if r.kind == "reactivate"]
    ks_audit = store.stage_payload(events[0].hour, Stage.DECIDED)  # the hour it applied to
    store.close()
    assert len(events) == 1 and events[0].payload_obj()["operator"] == "alice"
    entries = ks_audit["decision"]["projector"]["kill_switch"]["audit"]
    assert any(e.get("operator") == "alice" for e in entries)  # reactivated, or refused while a trigger is active


def test_report_puts_the_paper_run_beside_the_baselines_rolled_over_the_same_bars(ran, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The paper run traded equal_weight_daily: its row must equal that baseline's backtest row."""
    import json

    _state, ov, _ = ran
    rc, out = call("report", [*ov, f"report_dir={tmp_path / 'rep'}"])
    assert rc == 0 and out[-1].endswith("report.html")
    doc = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    paper, same = doc["strategies"]["paper"], doc["strategies"]["equal_weight_daily"]
    for key in ("total_return", "max_drawdown", "fees_paid", "n_trades", "sharpe"):
        assert paper[key] == same[key], key
    assert "buy_and_hold_btc" in doc["strategies"] and (tmp_path / "rep" / "report.html").stat().st_size > 1000
    assert doc["paper"]["hours"] == 24
