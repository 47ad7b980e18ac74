"""A replayed month of real Kraken hours (June 2022: the ladder halts the account mid-month): parity and readiness."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.data.loaders import to_unix
from paper.app import readiness
from tests.paper.loop_helpers import backtest, compare, default_setup, kraken_market, paper_run
from tests.paper.loop_policy import ScriptedPolicy

START, END = "2022-06-01T00:00:00Z", "2022-07-01T00:00:00Z"


@pytest.mark.slow
def test_a_month_with_a_drawdown_halt_matches_the_backtest_and_reads_readiness(tmp_path: Path) -> None:
    cfg, lim = default_setup()
    mkt = kraken_market("2022-05-01", END).between(None, to_unix(END))
    ref = backtest(mkt, START, END, ScriptedPolicy(), cfg, lim)
    store = paper_run(tmp_path / "june.db", mkt, START, END, ScriptedPolicy(), cfg, lim)
    got = compare(store, ref)
    assert got["mismatches"] == [] and got["hours"] == 720
    kinds = [r.kind for r in store.audit_records() if r.terminal]
    assert kinds.count("halted") > 0 and kinds[-1] == "halted"  # halted, then in cash to the end
    items = {i["item"].split(" (")[0]: i for i in readiness(store)}
    assert items["paper trading for 30 days"]["met"] and items["paper trading for 30 days"]["evidence"].startswith(
        "30.00 days")
    assert items["drawdown enforcement exercised"]["met"]
    assert not items["kill switch tested"]["met"]  # June 2022 never engaged it, nobody reactivated
    fee = items["fee model checked against the paper fills"]
    assert fee["met"] and fee["evidence"].startswith(f"{got['fills']} fills")
    assert items["risk engine under stress"]["met"]
    store.close()
