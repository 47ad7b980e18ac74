"""One writer per state file (REC-6): a second process refuses to start; a killed holder frees it."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from paper import StateLock, StateLockedError, StateStore
from paper.lock import lock_path
from tests.paper.helpers import T0, full_cycle, new_store

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time\n"
    "from paper import StateStore\n"
    "store = StateStore.open(sys.argv[1])\n"
    "print('held', flush=True)\n"
    "time.sleep(120)\n"
)
OPEN = (
    "import sys\n"
    "from paper import StateStore, StateLockedError\n"
    "try:\n"
    "    StateStore.open(sys.argv[1])\n"
    "except StateLockedError as exc:\n"
    "    print(exc, file=sys.stderr)\n"
    "    sys.exit(3)\n"
)


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture
def state(tmp_path: Path) -> Path:
    store = new_store(tmp_path)
    full_cycle(store, T0)
    store.close()
    return tmp_path / "state.db"


def test_a_second_process_refuses_to_start(state: Path) -> None:
    with StateStore.open(state):
        child = spawn(OPEN, str(state))
        _, err = child.communicate(timeout=60)
    assert child.returncode == 3
    assert f"state is in use by another process (pid {os.getpid()}" in err and str(state) in err


def test_a_sigkilled_holder_releases_the_lock(state: Path) -> None:
    holder = spawn(HOLD, str(state))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StateLockedError, match=f"pid {holder.pid}"):
            StateStore.open(state)
        with pytest.raises(StateLockedError):
            StateLock(state).acquire()
        with StateStore.open(state, readonly=True) as ro:  # readers need no lock
            assert ro.last_bar() == T0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    assert holder.returncode == -signal.SIGKILL
    with StateStore.open(state) as store:  # no stale lock, state intact
        assert store.verify().n_terminal == 1
    assert lock_path(state).exists()  # the lock file is never deleted


def test_two_locks_in_one_process_conflict(tmp_path: Path) -> None:
    target = tmp_path / "s.db"
    first = StateLock(target).acquire()
    with pytest.raises(StateLockedError, match="in use by another process"):
        StateLock(target).acquire()
    first.release()
    with StateLock(target) as again:
        assert again.held
    assert stat.S_IMODE(lock_path(target).stat().st_mode) == 0o600


def test_create_takes_the_lock(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    with pytest.raises(StateLockedError):
        StateStore.open(tmp_path / "state.db")
    store.close()
    StateStore.open(tmp_path / "state.db").close()
