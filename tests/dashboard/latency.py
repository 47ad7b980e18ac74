"""API latency under a loop of requests: requests per second and p50/p95 per endpoint.

    python -m tests.dashboard.latency STATE [--n 200] [--threads 1]

Real uvicorn server on loopback (one worker, as scripts/dashboard.py runs it), a keep-alive
`requests.Session` per client thread, each request timed end to end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

from tests.dashboard.server import running_dashboard

URLS = ("/api/status", "/api/equity?limit=10000", "/api/positions", "/api/allocation?limit=10000",
        "/api/signals", "/api/interventions", "/api/confidence?window_hours=168", "/api/hours?limit=24",
        "/api/fills?limit=20", "/metrics")


def p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(0.95 * (len(s) - 1) + 0.5))]


def measure(base: str, url: str, n: int, threads: int) -> dict[str, float]:
    times: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        s = requests.Session()
        mine = []
        for _ in range(n // threads):
            t = time.perf_counter()
            r = s.get(base + url, timeout=60)
            mine.append(time.perf_counter() - t)
            assert r.status_code == 200, (url, r.status_code)
        with lock:
            times.extend(mine)

    t0 = time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    return {"rps": len(times) / wall, "p50_ms": 1000 * statistics.median(times), "p95_ms": 1000 * p95(times)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("state", type=Path)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    with running_dashboard(args.state) as base:
        print(f"{'endpoint':36} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
        for url in URLS:
            m = measure(base, url, args.n, args.threads)
            print(f"{url:36} {m['rps']:8.1f} {m['p50_ms']:8.2f} {m['p95_ms']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
