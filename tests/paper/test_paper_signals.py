"""SIGTERM / SIGINT on a running ``paper_trade.py command=run``: the hour in progress finishes, the process
exits 0, the state verifies, and the same command resumes to the state of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paper import StateStore
from paper.app import check_books
from tests.paper.loop_helpers import ROOT
from tests.paper.test_paper_app import call, overrides

START, END = "2022-06-01T00:00:00Z", "2022-06-01T12:00:00Z"


def script(state: Path, speed: float) -> list[str]:
    return [sys.executable, "scripts/paper_trade.py", "command=run", *overrides(state, START, END),
            f"feed.speed={speed}", f"hydra.run.dir={state.parent / 'hydra'}"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_a_signal_stops_after_the_hour_in_progress_and_the_run_resumes(tmp_path: Path, sig: int) -> None:
    state = tmp_path / "paper.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(script(state, 0.4), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 240
    while len([x for x in lines if " equity=" in x]) < 3 and time.monotonic() < deadline:
        lines.append(proc.stdout.readline())
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    lines += out.splitlines()
    assert proc.returncode == 0, err[-2000:]
    assert any("stopped by signal" in x for x in lines), lines
    hours = [x for x in lines if " equity=" in x]
    assert 3 <= len(hours) < 12  # stopped early, after whole hours
    store = StateStore.open(state, readonly=True)
    try:
        store.verify()
        assert store.open_cycle() is None and check_books(store) == []
        assert len(store.ledger_rows()) == len(hours)
    finally:
        store.close()
    # the same command (full speed) resumes; the result equals an uninterrupted run
    rc, _ = call("run", overrides(state, START, END))
    ref_state = tmp_path / "ref.db"
    rc2, _ = call("run", overrides(ref_state, START, END))
    assert rc == rc2 == 0
    a, b = StateStore.open(state, readonly=True), StateStore.open(ref_state, readonly=True)
    try:
        assert a.ledger_rows() == b.ledger_rows() and len(a.ledger_rows()) == 12
        assert [(f.client_order_id, f.price, f.units, f.fee) for f in a.fills()] == \
            [(f.client_order_id, f.price, f.units, f.fee) for f in b.fills()]
    finally:
        a.close()
        b.close()


def test_a_second_signal_interrupts_at_once() -> None:
    from paper.live import StopFlag

    flag = StopFlag()
    with flag.installed():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert flag() and flag.signal == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt, match="second signal"):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
    assert signal.getsignal(signal.SIGTERM) is not flag._handle  # handlers restored
