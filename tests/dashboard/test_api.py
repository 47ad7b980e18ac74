"""The JSON API over a real uvicorn server: numbers against the state file, validation, read-only."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from paper import StateStore
from tests.dashboard.fixture import KILL_AT, KILL_HOURS, MISSED, T0, build_state
from tests.dashboard.server import ENDPOINTS, check_against_db, file_digest, get, running_dashboard


def test_every_endpoint_matches_the_state_file(server: str, state_db: Path) -> None:
    out = check_against_db(server, state_db)
    assert out["status"]["hours"] == {"traded": out["status"]["hours"]["traded"], "held": out["status"]["hours"]["held"],
                                      "halted": KILL_HOURS, "missed": len(MISSED)}
    assert out["status"]["initial_equity"] == "10000"


def test_signals_regime_interventions_and_confidence(server: str) -> None:
    s = requests.Session()
    sig = get(s, server + "/api/signals")
    assert sig["signals_hour"] == sig["hour"]
    assert {p["asset"] for p in sig["predictions"]} == {"BTC", "ETH", "SOL"}
    assert {p["horizon"] for p in sig["predictions"]} == {1, 4, 24}
    for p in sig["predictions"]:
        assert p["confidence"] == pytest.approx(abs(2 * p["p_up"] - 1))
    assert set(sig["regime"]) == {"BTC", "ETH", "SOL"}
    assert sum(sig["regime"]["BTC"].values()) == pytest.approx(1.0)
    assert set(sig["target"]) == {"BTC", "ETH", "SOL"}

    iv = get(s, server + "/api/interventions", params={"bucket_hours": 24})
    assert iv["totals"]["kill_switch"] == KILL_HOURS
    assert sum(iv["counts"]["kill_switch"]) == KILL_HOURS
    assert [e["kind"] for e in iv["events"]] == ["kill_switch", "reactivate"]
    assert iv["events"][0]["hour"] == T0 + 3600 * KILL_AT
    window = get(s, server + "/api/interventions",
                 params={"start": T0 + 3600 * KILL_AT, "end": T0 + 3600 * (KILL_AT + 5)})
    assert window["totals"]["kill_switch"] == 6 and window["hours_seen"] == 6

    conf = get(s, server + "/api/confidence", params={"window_hours": 24, "bins": 10})
    assert conf["n"] == 24 * 3 * 3  # hours x assets x horizons of the meta model
    assert sum(conf["counts"]) == conf["n"] and len(conf["edges"]) == 11
    one = get(s, server + "/api/confidence", params={"window_hours": 24, "horizon": 4, "asset": "ETH"})
    assert one["n"] == 24


def test_audit_hour_in_full(server: str, state_db: Path) -> None:
    s = requests.Session()
    h = T0 + 3600 * KILL_AT
    a = get(s, f"{server}/api/audit/{h}")
    assert a["cycle"]["outcome"] == "halted"
    assert [st["name"] for st in a["stages"]] == ["FETCHED", "DECIDED", "INTENTS", "FILLED", "LEDGER_COMMITTED",
                                                  "AUDIT_SEALED"]
    assert [r["kind"] for r in a["records"]] == ["kill_switch", "halted"]
    assert a["view"]["kill_switch"]["engaged_now"] is True
    with StateStore.open(state_db, readonly=True) as store:
        assert len(a["orders"]) == len(store.orders(hour=h)) and len(a["fills"]) == len(store.fills(hour=h))
    assert get(s, f"{server}/api/audit/2024-01-09T08:00:00Z")["hour"] == h
    missed = get(s, f"{server}/api/audit/{T0 + 3600 * MISSED[0]}")
    assert missed["cycle"]["outcome"] == "missed" and missed["ledger"] is None
    r = s.get(f"{server}/api/audit/{T0 - 3600}")
    assert r.status_code == 404 and "nothing recorded" in r.json()["detail"]


BAD = [
    ("/api/equity?limit=0", "limit"),
    ("/api/equity?limit=abc", "limit"),
    ("/api/equity?limit=100001", "limit"),
    ("/api/equity?offset=-1", "offset"),
    ("/api/equity?start=yesterday", "start"),
    ("/api/equity?start=2024-02-01&end=2024-01-01", "after end"),
    ("/api/allocation?end=99999999999999", "out of range"),
    ("/api/orders?status=pending", "status"),
    ("/api/fills?start=2024-13-01", "start"),
    ("/api/interventions?bucket_hours=0", "bucket_hours"),
    ("/api/confidence?bins=1", "bins"),
    ("/api/confidence?window_hours=x", "window_hours"),
    ("/api/confidence?horizon=-4", "horizon"),
    ("/api/hours?limit=-5", "limit"),
    ("/api/audit/abc", "hour"),
    ("/api/audit/1704067201", "hourly grid"),
    ("/api/audit/" + "9" * 50, "hour"),
]


@pytest.mark.parametrize(("url", "needle"), BAD)
def test_bad_parameters_get_422_with_a_message(server: str, url: str, needle: str) -> None:
    r = requests.get(server + url, timeout=10)
    assert r.status_code == 422, (url, r.status_code, r.text)
    assert needle in r.text


def test_paging_and_ranges(server: str) -> None:
    s = requests.Session()
    full = get(s, server + "/api/equity", params={"limit": 10000})["points"]
    pages = [get(s, server + "/api/equity", params={"limit": 37, "offset": o})["points"] for o in range(0, 300, 37)]
    assert [p for page in pages for p in page] == full
    sub = get(s, server + "/api/equity", params={"start": "2024-01-02T00:00:00Z", "end": T0 + 3600 * 47})
    assert [p["hour"] for p in sub["points"]] == list(range(T0 + 3600 * 24, T0 + 3600 * 48, 3600))
    assert get(s, server + "/api/orders", params={"status": "expired"})["orders"][0]["status"] == "expired"


def test_state_file_unchanged_after_a_session_of_calls(server: str, state_db: Path) -> None:
    before = file_digest(state_db)
    s = requests.Session()
    for _ in range(3):
        check_against_db(server, state_db, s)
        for url, _ in BAD:
            s.get(server + url, timeout=10)
        for h in range(T0, T0 + 3600 * 20, 3600):
            get(s, f"{server}/api/audit/{h}")
    assert file_digest(state_db) == before
    wal = Path(f"{state_db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_nothing_can_change_trading_state(server: str) -> None:
    from fastapi.routing import APIRoute

    from paper.dashboard import create_app

    app = create_app("/nonexistent.db")
    methods = {m for r in app.routes if isinstance(r, APIRoute) for m in r.methods}
    assert methods == {"GET"}
    for path in (*ENDPOINTS, "/api/audit/1704067200"):
        for method in ("post", "put", "delete", "patch"):
            assert requests.request(method, server + path, timeout=10).status_code in (404, 405), (method, path)
    schema = requests.get(server + "/openapi.json", timeout=10).json()
    assert {"/api/status", "/api/equity", "/api/positions", "/api/allocation", "/api/orders", "/api/fills",
            "/api/signals", "/api/interventions", "/api/confidence", "/api/hours", "/api/audit/{hour}",
            "/metrics"} <= set(schema["paths"])
    assert all(set(ops) == {"get"} for ops in schema["paths"].values())


def test_security_headers_on_every_kind_of_response(server: str) -> None:
    for path in ("/", "/api/status", "/static/app.js", "/api/audit/abc", "/metrics", "/nope"):
        h = requests.get(server + path, timeout=10).headers
        assert "default-src 'self'" in h["Content-Security-Policy"] and "frame-ancestors 'none'" in h[
            "Content-Security-Policy"], path
        assert h["X-Content-Type-Options"] == "nosniff" and h["X-Frame-Options"] == "DENY"
        assert h["Referrer-Policy"] == "no-referrer"
        assert "server" not in {k.lower() for k in h} or "uvicorn" not in h.get("server", "")


def test_metrics_match_the_state_file(server: str, state_db: Path) -> None:
    s = requests.Session()
    for _ in range(3):
        get(s, server + "/api/status")
    text = s.get(server + "/metrics", timeout=10).text
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    with StateStore.open(state_db, readonly=True) as store:
        last, risk = store.ledger_rows()[-1], store.risk_state()
    assert values["krakenrl_paper_state_up"] == 1.0
    assert values["krakenrl_paper_equity"] == float(last["equity"])
    assert values["krakenrl_paper_drawdown"] == pytest.approx(float(last["equity"] / risk.peak_equity - 1))
    assert values["krakenrl_paper_ladder_level"] == risk.ladder_level
    assert values["krakenrl_paper_kill_switch_engaged"] == float(risk.kill_switch_engaged)
    assert values["krakenrl_paper_bars_behind"] > 0  # a January 2024 run, read today
    assert values['krakenrl_dashboard_requests_total{endpoint="/api/status",method="GET",status="200"}'] == 3.0


def test_missing_state_file_is_503_then_served_once_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "later.db"
    with running_dashboard(path) as base:
        r = requests.get(base + "/api/status", timeout=10)
        assert r.status_code == 503 and "no such state file" in r.json()["detail"]
        assert "krakenrl_paper_state_up 0.0" in requests.get(base + "/metrics", timeout=10).text
        build_state(path, 3)
        assert get(requests.Session(), base + "/api/status")["hours"]["traded"] + get(
            requests.Session(), base + "/api/status")["hours"]["held"] == 3


def test_kill_switch_engaged_at_the_end(tmp_path: Path) -> None:
    path = build_state(tmp_path / "ks.db", KILL_AT + 3)
    with running_dashboard(path) as base:
        st = get(requests.Session(), base + "/api/status")
    assert st["kill_switch"] == {"engaged": True, "trigger": "drawdown_velocity", "since": T0 + 3600 * KILL_AT,
                                 "since_iso": "2024-01-09T08:00:00Z"}


def test_latency_under_a_loop_of_requests(server: str) -> None:
    from tests.dashboard.latency import URLS, measure

    measure(server, "/api/interventions", 2, 1)  # warm the sealed-hour view cache
    worst = {url: measure(server, url, 40, 1) for url in URLS}
    print("\n" + "\n".join(f"{u:36} {m['rps']:7.1f} req/s  p95 {m['p95_ms']:6.1f} ms" for u, m in worst.items()))
    assert all(m["p95_ms"] < 500 for m in worst.values()), worst  # generous: 2 shared cores in CI
