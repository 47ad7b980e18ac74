"""Prometheus metrics: the paper account's health read at scrape time, and request counts.

Each app has its own `CollectorRegistry`, so several apps (tests) never collide. The account
gauges are computed from the state file when ``/metrics`` is scraped (no background thread);
``krakenrl_paper_state_up`` is 0 when the file cannot be read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from paper.dashboard import reader

GAUGES = {
    "equity": "Account equity at the last committed hour (quote currency)",
    "drawdown": "Equity / peak equity - 1 (risk state's peak), <= 0",
    "ladder_level": "Drawdown ladder level (0 normal .. 3 halt)",
    "kill_switch": "1 while the kill switch is engaged",
    "bars_behind": "Closed hourly bars not yet processed (wall clock vs last closed hour)",
    "seconds_since_last_write": "Seconds since the last audit record was written",
    "last_closed_hour": "Open time (Unix s) of the last closed hour",
}


class StateCollector(Collector):
    def __init__(self, state: reader.StateReader, clock: Callable[[], float], stale_after_s: float) -> None:
        self.state, self.clock, self.stale_after_s = state, clock, stale_after_s

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.state.snapshot() as conn:
                values = reader.metrics_snapshot(conn, self.clock(), self.stale_after_s)
            up = 1.0
        except reader.StateUnavailable:
            values, up = {}, 0.0
        yield GaugeMetricFamily("krakenrl_paper_state_up", "1 when the state file could be read", value=up)
        for name, doc in GAUGES.items():
            if name in values:
                metric = "krakenrl_paper_kill_switch_engaged" if name == "kill_switch" else f"krakenrl_paper_{name}"
                yield GaugeMetricFamily(metric, doc, value=values[name])


class Metrics:
    """The registry, the request counter and latency histogram of one app."""

    def __init__(self, state: reader.StateReader, clock: Callable[[], float] = time.time,
                 stale_after_s: float = 7200.0) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("krakenrl_dashboard_requests", "HTTP requests served",
                                ("endpoint", "method", "status"), registry=self.registry)
        self.latency = Histogram("krakenrl_dashboard_request_seconds", "Request handling time",
                                 ("endpoint",), registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
        self.registry.register(StateCollector(state, clock, stale_after_s))
