"""Token-guarded serving beyond loopback, and the script's refusal to serve unguarded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from paper.dashboard import BindError, check_bind, create_app
from paper.dashboard.security import COOKIE
from tests.dashboard.server import ENDPOINTS, free_port, running_dashboard

TOKEN = "s3cret-dashboard-token-0123456789"
ROOT = Path(__file__).resolve().parents[2]


def test_non_loopback_bind_needs_a_real_token() -> None:
    with pytest.raises(BindError, match="not a loopback address"):
        create_app("x.db", host="0.0.0.0")
    with pytest.raises(BindError, match="at least 16"):
        check_bind("0.0.0.0", "short")
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, None)
    check_bind("10.0.0.5", TOKEN)


def test_every_request_is_refused_without_the_token(state_db: Path) -> None:
    with running_dashboard(state_db, TOKEN, host="0.0.0.0") as base:
        paths = [*ENDPOINTS, "/docs", "/api/audit/1704067200", "/static/vendor/uplot/uPlot.iife.min.js", "/nope"]
        for path in paths:
            r = requests.get(base + path, timeout=10)
            assert r.status_code == 401, (path, r.status_code)
            assert r.headers["X-Frame-Options"] == "DENY"
            r = requests.get(base + path, headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"}, timeout=10)
            assert r.status_code == 403, (path, r.status_code)
            assert requests.get(base + path, cookies={COOKIE: "wrong"}, timeout=10).status_code == 403
        ok = requests.get(base + "/api/status", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert ok.status_code == 200 and ok.json()["run_id"] == "dash-fixture"
        # the page's way in: ?token= once sets an HttpOnly, SameSite=Strict cookie; the cookie alone then works
        s = requests.Session()
        page = s.get(base + "/?token=" + TOKEN, timeout=10)
        assert page.status_code == 200 and "set-cookie" in page.headers
        assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=strict" in page.headers["set-cookie"]
        assert s.get(base + "/api/positions", timeout=10).status_code == 200
        assert s.get(base + "/metrics", timeout=10).status_code == 200


def test_script_refuses_an_unguarded_public_bind(state_db: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KRAKENRL_DASHBOARD_TOKEN"} | {"PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "scripts/dashboard.py", "dashboard.host=0.0.0.0", f"dashboard.state={state_db}",
                        f"hydra.run.dir={tmp_path}/run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "not a loopback address" in p.stderr


def test_script_serves_with_the_token_from_the_environment(state_db: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "KRAKENRL_DASHBOARD_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "scripts/dashboard.py", "dashboard.host=0.0.0.0", f"dashboard.port={port}",
                          f"state={state_db}", f"hydra.run.dir={tmp_path}/run"],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 90
        while True:
            try:
                r = requests.get(base + "/api/status", timeout=5)
                break
            except requests.ConnectionError:
                assert p.poll() is None, p.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.3)
        assert r.status_code == 401
        ok = requests.get(base + "/api/status", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert ok.status_code == 200 and ok.json()["run_id"] == "dash-fixture"
    finally:
        p.terminate()
        p.wait(20)
