"""Crash safety (REC-1..4): SIGKILL a real process at every transition and inside each write
transaction, restart it, and compare the whole state file with an uninterrupted run's.

The process is `tests.paper.crash_driver` (the real `StateStore`, synthetic hours). Its fault
hook kills it with SIGKILL at a named point; a kill that never fires fails the test (it would
prove nothing). Kill runs go through a small thread pool: the work is fsync-bound, not CPU-bound.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from paper import StateStore
from tests.paper.crash_driver import INDICES
from tests.paper.helpers import dump_db

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("FETCHED", "DECIDED", "INTENTS", "FILLED", "LEDGER_COMMITTED", "AUDIT_SEALED")
# before BEGIN; inside the transaction after the effects, before the stage row; just before COMMIT; after
PHASES = ("before", "mid", "commit", "after")
WORKERS = 4


def driver(path: Path, kill: str | None = None) -> int:
    cmd = [sys.executable, "-m", "tests.paper.crash_driver", str(path), *(["--kill", kill] if kill else [])]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"driver {kill or ''} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.returncode


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    path = tmp_path_factory.mktemp("reference") / "state.db"
    assert driver(path) == 0
    ref = dump_db(path)
    assert [r[2] for r in ref["audit"]] == [
        "traded", "traded", "held", "traded", "missed", "held", "kill_switch", "halted", "reactivate", "traded",
    ]
    assert len(ref["orders"]) == 6 and len(ref["fills"]) == 6
    return ref


def check_against(path: Path, reference: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Differences between a resumed file and the reference (empty: identical)."""
    problems = []
    got = dump_db(path)
    for table in sorted(set(reference) | set(got)):
        if got.get(table) != reference.get(table):
            problems.append(f"table {table} differs: {len(got.get(table, []))} vs {len(reference.get(table, []))} rows")
    ids = [r[0] for r in got.get("orders", [])]
    if len(ids) != len(set(ids)):
        problems.append(f"duplicate client_order_id: {len(ids) - len(set(ids))}")
    with StateStore.open(path, readonly=True) as store:
        store.verify()
    if list(path.parent.glob(".*.creating*")):
        problems.append("a temporary creation file was left behind")
    return problems


def kill_then_resume(base: Path, kills: list[str], reference: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Each kill chain in its own folder: every kill must fire, then a clean run finishes the window."""

    def one(i: int, kill: str) -> list[str]:
        path = base / f"k{i}" / "state.db"
        path.parent.mkdir()
        for k in kill.split("+"):
            rc = driver(path, k)
            if rc != -signal.SIGKILL:
                return [f"{kill}: the kill at {k} never fired (rc {rc})"]
        if driver(path) != 0:
            return [f"{kill}: the resumed run did not finish"]
        return [f"{kill}: {p}" for p in check_against(path, reference)]

    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda a: one(*a), enumerate(kills)))
    return [p for r in results for p in r]


def test_kill_at_every_point_of_an_hour_then_resume(tmp_path: Path, reference: dict) -> None:
    """6 transitions × 4 points (before, 2 inside the transaction, after) on a trading hour, creation,
    and the commits that carry events or record a missed hour."""
    kills = ["CREATE:mid@0", "CREATE:after@0"]
    kills += [f"{s}:{p}@1" for s in STAGES for p in PHASES]
    kills += ["AUDIT_SEALED:mid@5", "AUDIT_SEALED:after@5", "DECIDED:mid@6", "FETCHED:mid@7"]
    assert len(kills) == 30
    assert kill_then_resume(tmp_path, kills, reference) == []


def test_kill_at_each_boundary_on_five_more_hours(tmp_path: Path, reference: dict) -> None:
    """REC-3's PR budget: 6 boundaries × 5 runs (hours that hold, halt, reactivate, trade, start)."""
    kills = [f"{s}:after@{i}" for s in STAGES for i in (0, 2, 3, 6, 7)]
    assert kill_then_resume(tmp_path, kills, reference) == []


def test_a_torn_wal_tail_recovers_to_an_earlier_commit_and_resumes(tmp_path: Path, reference: dict) -> None:
    """REC-4: SQLite drops WAL frames after the last whole commit; the state is a prefix, then resumes."""
    cuts = [1, 100, 4096 + 24, "half", "all_but_header"]
    for n, cut in enumerate(cuts):
        path = tmp_path / f"w{n}" / "state.db"
        path.parent.mkdir()
        assert driver(path, f"AUDIT_SEALED:after@{INDICES[-1]}") == -signal.SIGKILL  # WAL not checkpointed
        wal = Path(f"{path}-wal")
        size = wal.stat().st_size
        assert size > 100_000
        keep = {"half": size // 2, "all_but_header": 32}.get(cut, size - cut if isinstance(cut, int) else 0)
        with wal.open("r+b") as f:
            f.truncate(keep)
        with StateStore.open(path, readonly=True) as store:
            store.verify()
            recovered = len(store.audit_records())
        got = dump_db(path)
        assert got["audit"] == reference["audit"][:recovered], cut  # a prefix of the reference chain
        assert recovered < len(reference["audit"]) or cut == 1
        assert driver(path) == 0
        assert check_against(path, reference) == [], cut


@pytest.mark.slow
def test_kill_at_every_point_of_every_hour(tmp_path: Path, reference: dict) -> None:
    """The full matrix: 24 points × 7 processed hours, plus double kills (kill, kill again, resume)."""
    kills = [f"{s}:{p}@{i}" for i in INDICES for s in STAGES for p in PHASES]
    kills += [f"INTENTS:mid@{i}+FILLED:after@{i}" for i in INDICES]
    kills += [f"LEDGER_COMMITTED:mid@{i}+AUDIT_SEALED:mid@{i}" for i in INDICES]
    assert len(kills) == 182
    assert kill_then_resume(tmp_path, kills, reference) == []


@pytest.mark.slow
def test_kills_at_random_wall_times(tmp_path: Path, reference: dict) -> None:
    """REC-3 nightly style: SIGKILL after a uniform random delay, again and again until a run finishes."""
    rng = random.Random(2024)
    t0 = time.perf_counter()
    assert driver(tmp_path / "timing.db") == 0
    span = time.perf_counter() - t0
    landed = 0
    for n in range(10):
        path = tmp_path / f"r{n}" / "state.db"
        path.parent.mkdir()
        while True:
            proc = subprocess.Popen([sys.executable, "-m", "tests.paper.crash_driver", str(path)], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                proc.wait(timeout=rng.uniform(0.0, span))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            if proc.returncode == 0:
                break
            assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
            landed += 1
        assert check_against(path, reference) == []
    print(f"random wall-time kills that landed: {landed} over 10 runs (each resumed to the reference)")
    assert landed >= 10
