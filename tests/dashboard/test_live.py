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
