"""The dashboard keeps answering while a writer process appends hours (WAL reader, no errors)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.dashboard.fixture import build_state
from tests.dashboard.server import check_against_db, running_dashboard

ROOT = Path(__file__).resolve().parents[2]


def test_polling_while_a_writer_appends_hours(tmp_path: Path) -> None:
    path = build_state(tmp_path / "live.db", 10)
    writer = subprocess.Popen([sys.executable, "-m", "tests.dashboard.fixture", str(path), "--hours", "60",
                               "--delay", "0.05"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen_closed, seen_seq, n_polls, errors = [], [], 0, []
    prefix: list[dict[str, object]] = []
    with running_dashboard(path) as base:
        s = requests.Session()
        while True:
            done = writer.poll() is not None
            for url in ("/api/status", "/api/equity?limit=10000", "/api/hours?limit=5", "/api/signals", "/metrics",
                        "/api/interventions", "/api/positions"):
                r = s.get(base + url, timeout=30)
                if r.status_code != 200:
                    errors.append((url, r.status_code, r.text[:200]))
            st = s.get(base + "/api/status", timeout=30).json()
            points = s.get(base + "/api/equity?limit=10000", timeout=30).json()["points"]
            assert points[: len(prefix)] == prefix, "an hour already shown changed"
            prefix = points
            seen_closed.append(st["last_closed_hour"])
            seen_seq.append(st["audit_head"]["seq"])
            n_polls += 1
            if done:
                break
        _out, err = writer.communicate()
        assert writer.returncode == 0, err
        assert errors == []
        assert seen_closed == sorted(seen_closed) and seen_seq == sorted(seen_seq)
        assert len(set(seen_closed)) >= 5, f"the writer barely moved while polled: {sorted(set(seen_closed))}"
        final = check_against_db(base, path)
    assert final["status"]["next_hour"] == 1_704_067_200 + 3600 * 70
    print(f"\n{n_polls} polls x 9 requests while 60 hours were written; {len(set(seen_closed))} distinct hours seen")


def test_polling_while_the_paper_loop_replays_real_kraken_hours(tmp_path: Path) -> None:
    """The real writer: `paper_trade.py command=run` replaying recorded Kraken bars (a baseline policy)."""
    state = tmp_path / "paper.db"
    cmd = [sys.executable, "scripts/paper_trade.py", "command=run", "policy=baseline:equal_weight_daily",
           "feed=replay", f"feed.path={ROOT.parent / 'shared' / 'data' / 'kraken' / 'ohlcvt_1h'}",
           "feed.assets=[BTC,ETH,LTC]", "feed.history_start=2022-05-01", "feed.start=2022-06-01",
           "feed.end=2022-06-03T00:00:00Z", "feed.speed=0.02", f"state={state}", f"hydra.run.dir={tmp_path / 'run'}"]
    writer = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    closed: list[int] = []
    errors: list[tuple[str, int]] = []
    with running_dashboard(state) as base:
        s = requests.Session()
        while True:
            done = writer.poll() is not None
            r = s.get(base + "/api/status", timeout=30)
            if r.status_code == 503 and not closed:  # the loop has not created the state file yet
                continue
            if r.status_code != 200:
                errors.append(("/api/status", r.status_code))
            else:
                closed.append(r.json()["last_closed_hour"] or 0)
            for url in ("/api/equity?limit=10000", "/api/positions", "/api/fills?limit=50", "/metrics", "/api/config",
                        "/api/signals", "/api/interventions", "/api/confidence", "/api/allocation", "/"):
                code = s.get(base + url, timeout=30).status_code
                if code != 200:
                    errors.append((url, code))
            if done:
                break
        _out, err = writer.communicate()
        assert writer.returncode == 0, err[-2000:]
        assert errors == []
        assert closed == sorted(closed) and len(set(closed)) >= 3, sorted(set(closed))
        final = check_against_db(base, state)
    assert final["status"]["last_closed_hour"] == 1_654_214_400 - 3600  # 2022-06-02 23:00, the last decision hour
