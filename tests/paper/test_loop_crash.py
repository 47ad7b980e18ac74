"""SIGKILL a real paper-loop process inside an hour's cycle, restart it, compare with an uninterrupted run.

Kill points (the store's fault hook, `StateStore._fault`): before the fetch is recorded, after it,
after the decision, in the middle of the INTENTS and FILLED writes (effects written, stage row
not yet: the transaction must roll back), after the ledger commit, in the middle of the seal.
A replay feed has no retry/backoff path, so "during backoff" is not a point here (the ccxt feed's).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from paper import StateStore
from tests.paper.loop_helpers import ROOT, kraken_market
from tests.paper.loop_policy import clock

START, END = "2022-06-10T00:00:00Z", "2022-06-10T08:00:00Z"  # 8 hours
POINTS = ["FETCHED:before", "FETCHED:after", "DECIDED:after", "INTENTS:mid", "FILLED:mid",
          "LEDGER_COMMITTED:after", "AUDIT_SEALED:mid"]


def drive(market: Path, state: Path, kill: str | None = None) -> int:
    cmd = [sys.executable, "-m", "tests.paper.loop_crash_driver", str(market), str(state), START, END]
    if kill:
        cmd += ["--kill", kill]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=300).returncode


def books(path: Path) -> dict[str, Any]:
    store = StateStore.open(path, clock=clock, readonly=True)
    try:
        store.verify()
        return {
            "ledger": store.ledger_rows(),
            "orders": [(o.client_order_id, o.hour, o.pair, o.side, o.units, o.limit_price, o.status)
                       for o in store.orders()],
            "fills": [(f.client_order_id, f.fill_seq, f.price, f.units, f.fee, f.liquidity) for f in store.fills()],
            "audit": [(r.seq, r.hour, r.kind, r.payload, r.hash) for r in store.audit_records()],
            "head": store.audit_head(),
            "state_hash": store.state_hash(),
        }
    finally:
        store.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    base = tmp_path_factory.mktemp("loopcrash")
    market = base / "market.pkl"
    market.write_bytes(pickle.dumps(kraken_market("2022-05-20", "2022-06-10T08:00:00Z")))
    assert drive(market, base / "ref.db") == 0
    ref = books(base / "ref.db")
    assert len(ref["ledger"]) == 8 and ref["fills"]
    return market, ref


def kill_and_resume(tmp: Path, market: Path, kill: str) -> dict[str, Any]:
    state = tmp / f"{kill.replace(':', '_').replace('@', '_')}.db"
    rc = drive(market, state, kill)
    assert rc == -9, f"{kill}: expected SIGKILL, got exit {rc}"
    assert drive(market, state) == 0
    return books(state)


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("nth", [1, 4])
def test_sigkill_inside_the_cycle_then_restart_equals_the_uninterrupted_run(
        tmp_path: Path, setup: tuple[Path, dict[str, Any]], point: str, nth: int) -> None:
    market, ref = setup
    got = kill_and_resume(tmp_path, market, f"{point}@{nth}")
    ids = [o[0] for o in got["orders"]]
    assert len(ids) == len(set(ids))  # no duplicated order
    for key in ("ledger", "orders", "fills", "audit", "head", "state_hash"):
        assert got[key] == ref[key], key


@pytest.mark.slow
def test_one_kill_after_the_decision_resumes_exactly(tmp_path: Path, setup: tuple[Path, dict[str, Any]]) -> None:
    """The default suite's representative (the full grid is marked slow)."""
    market, ref = setup
    got = kill_and_resume(tmp_path, market, "INTENTS:mid@2")
    assert got["head"] == ref["head"] and got["fills"] == ref["fills"]
