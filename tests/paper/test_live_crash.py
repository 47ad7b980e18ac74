"""SIGKILL a live paper run while its feed is backing off a failing Kraken call; the restart must equal
an uninterrupted run (the crash point the replay-feed crash test cannot reach: tests/paper/test_loop_crash.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paper.loop_helpers import ROOT
from tests.paper.test_loop_crash import books

HOURS = 4
OUT: dict[str, str] = {}


def drive(state: Path, kill: int | None = None) -> int:
    cmd = [sys.executable, "-m", "tests.paper.live_crash_driver", str(state), str(HOURS)]
    if kill is not None:
        cmd += ["--kill-backoff", str(kill)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=300, text=True)
    assert proc.returncode in (0, -9), proc.stderr[-2000:]
    OUT[state.name] = proc.stdout
    return proc.returncode


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    state = tmp_path_factory.mktemp("livecrash") / "ref.db"
    assert drive(state) == 0
    assert "backoff waits: 6" in OUT[state.name]  # 2 timeouts injected in each of 3 hours, all retried
    ref = books(state)
    assert len(ref["ledger"]) == HOURS  # type: ignore[arg-type]
    assert "exchange_down" not in str(ref["audit"])  # the retries succeeded: no outage
    return ref


SLOW = pytest.mark.slow


# the uninterrupted run waits 6 times (2 timeouts x 3 hours); kill 1 stays in the default run
@pytest.mark.parametrize("kill", [1, pytest.param(2, marks=SLOW), pytest.param(4, marks=SLOW),
                                  pytest.param(6, marks=SLOW)])
def test_sigkill_during_backoff_then_restart_equals_the_uninterrupted_run(
        tmp_path: Path, reference: dict[str, object], kill: int) -> None:
    state = tmp_path / f"kill{kill}.db"
    assert drive(state, kill) == -9
    assert drive(state) == 0
    got = books(state)
    for key in ("ledger", "orders", "fills", "audit", "head", "state_hash"):
        assert got[key] == reference[key], key
