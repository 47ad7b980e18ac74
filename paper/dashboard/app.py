"""The dashboard's FastAPI app: a read-only JSON API, one static page and ``/metrics``.

Every route is a GET. Nothing here writes to the state file or can change trading state
(the kill switch's reactivation stays in the ``paper_trade.py`` CLI). Time parameters take
Unix seconds or ISO 8601 UTC times; a bad parameter is a 422 naming it, a missing or
unreadable state file a 503.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from paper.dashboard import reader
from paper.dashboard.metrics import Metrics
from paper.dashboard.security import SecurityHeadersMiddleware, TokenMiddleware, check_bind
from paper.dashboard.views import PAYLOAD_KEYS
from paper.hours import HOUR_S
from paper.orders import ORDER_STATUSES

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
VENDORED_VERSION = {"uplot": "1.6.32"}
MAX_PAGE = 10_000

TimeParam = Annotated[str | None, Query(description="Unix seconds or ISO 8601 UTC (2024-01-31T00:00:00Z)",
                                        max_length=40)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="rows to skip")]


def parse_time(value: str | None, name: str) -> int | None:
    """Unix seconds (int) from ``value``: digits, or an ISO 8601 date/time (naive means UTC)."""
    if value is None or value == "":
        return None
    v = value.strip()
    if v.lstrip("-").isdigit():
        t = int(v)
    else:
        try:
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise HTTPException(422, f"{name}: {value!r} is neither Unix seconds nor an ISO 8601 time") from None
        t = int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp())
    if not 0 <= t < 2**33:
        raise HTTPException(422, f"{name}: {value!r} is out of range")
    return t


def time_range(start: str | None, end: str | None) -> tuple[int | None, int | None]:
    s, e = parse_time(start, "start"), parse_time(end, "end")
    if s is not None and e is not None and s > e:
        raise HTTPException(422, f"start ({start}) is after end ({end})")
    return s, e


class RequestMetricsMiddleware(BaseHTTPMiddleware):
    """Counts every request by route template, method and status, and times it."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        endpoint = getattr(route, "path", None) or ("/static" if request.url.path.startswith("/static/") else "other")
        self.metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
        self.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)
        return response


def create_app(
    state_path: str | Path,
    token: str | None = None,
    *,
    host: str = "127.0.0.1",
    refresh_s: float = 30.0,
    stale_after_s: float = 7200.0,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The dashboard over the state file at ``state_path`` (which may not exist yet: 503 until it does).

    ``host`` is where it will be served: a non-loopback host needs ``token`` (`check_bind`).
    ``stale_after_s``: data older than this (since the last audit write) is flagged stale.
    """
    check_bind(host, token)
    if refresh_s <= 0 or stale_after_s <= 0:
        raise ValueError(f"refresh_s and stale_after_s must be > 0, got {refresh_s}, {stale_after_s}")
    state = reader.StateReader(state_path)
    metrics = Metrics(state, clock, stale_after_s)
    app = FastAPI(
        title="krakenrl paper-trading dashboard",
        version="1",
        description="Read-only view of a paper-trading state file: account, risk, signals, orders, audit trail.",
    )
    app.state.reader = state
    app.state.metrics = metrics
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    if token:
        app.add_middleware(TokenMiddleware, token=token)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: 401/403 carry the headers too

    @app.exception_handler(reader.StateUnavailable)
    async def unavailable(request: Request, exc: reader.StateUnavailable) -> JSONResponse:
        return JSONResponse({"detail": f"state file unavailable: {exc}"}, status_code=503)

    def read(fn: Callable[..., Any], *args: Any) -> Any:
        with state.snapshot() as conn:
            try:
                return fn(conn, *args)
            except (ValueError, KeyError, TypeError, ArithmeticError) as exc:  # content this code cannot read
                log.exception("dashboard: %s could not read the state file", fn.__name__)
                raise reader.StateUnavailable(f"{fn.__name__}: unexpected content: {exc!r}") from None

    @app.get("/api/config", tags=["meta"], summary="Page settings: refresh interval, staleness threshold")
    def config() -> dict[str, Any]:
        return {"refresh_s": refresh_s, "stale_after_s": stale_after_s, "state_path": str(state.path),
                "vendored": VENDORED_VERSION, "payload_keys": {k: list(v) for k, v in PAYLOAD_KEYS.items()}}

    @app.get("/api/status", tags=["account"],
             summary="Equity, PnL, drawdown, ladder level, kill switch, last bar, staleness")
    def status() -> dict[str, Any]:
        return read(reader.status, clock(), stale_after_s)  # type: ignore[no-any-return]

    @app.get("/api/equity", tags=["account"], summary="Equity and drawdown per hour")
    def equity(start: TimeParam = None, end: TimeParam = None, limit: Limit = 5000, offset: Offset = 0) -> Any:
        return read(reader.equity_series, *time_range(start, end), limit, offset)

    @app.get("/api/positions", tags=["account"], summary="Current positions, marks and weights")
    def positions() -> Any:
        return read(reader.positions)

    @app.get("/api/allocation", tags=["account"], summary="Weights per asset over time")
    def allocation(start: TimeParam = None, end: TimeParam = None, limit: Limit = 5000, offset: Offset = 0) -> Any:
        return read(reader.allocation, *time_range(start, end), limit, offset)

    @app.get("/api/orders", tags=["trading"], summary="Simulated orders, newest first")
    def orders(start: TimeParam = None, end: TimeParam = None,
               status: Annotated[str | None, Query(description=f"one of {', '.join(ORDER_STATUSES)}")] = None,
               limit: Limit = 200, offset: Offset = 0) -> Any:
        if status is not None and status not in ORDER_STATUSES:
            raise HTTPException(422, f"status: {status!r} is not one of {', '.join(ORDER_STATUSES)}")
        return read(reader.orders, *time_range(start, end), status, limit, offset)

    @app.get("/api/fills", tags=["trading"], summary="Simulated fills, newest first")
    def fills(start: TimeParam = None, end: TimeParam = None, limit: Limit = 200, offset: Offset = 0) -> Any:
        return read(reader.fills, *time_range(start, end), limit, offset)

    @app.get("/api/signals", tags=["models"],
             summary="Latest predictions per asset and horizon, regime probabilities, proposed and executed weights")
    def signals() -> Any:
        return read(reader.signals)

    @app.get("/api/interventions", tags=["risk"], summary="Risk interventions by rule over time, and risk events")
    def interventions(start: TimeParam = None, end: TimeParam = None,
                      bucket_hours: Annotated[int, Query(ge=1, le=24 * 366)] = 24,
                      recent: Annotated[int, Query(ge=0, le=1000)] = 50) -> Any:
        return read(reader.interventions, *time_range(start, end), bucket_hours, recent)

    @app.get("/api/confidence", tags=["models"],
             summary="Distribution of the meta-learner's confidence |2 p_up - 1| over a window")
    def confidence(end: TimeParam = None, window_hours: Annotated[int, Query(ge=1, le=24 * 366)] = 168,
                   bins: Annotated[int, Query(ge=2, le=200)] = 20,
                   model: Annotated[str | None, Query(max_length=40)] = "meta",
                   horizon: Annotated[int | None, Query(ge=1, le=10_000)] = None,
                   asset: Annotated[str | None, Query(max_length=40)] = None) -> Any:
        return read(reader.confidence, parse_time(end, "end"), window_hours, bins, model or None, horizon, asset)

    @app.get("/api/hours", tags=["audit"], summary="Hours (cycles), newest first, with a link to each audit record")
    def hours(start: TimeParam = None, end: TimeParam = None, limit: Limit = 200, offset: Offset = 0) -> Any:
        return read(reader.hours, *time_range(start, end), limit, offset)

    @app.get("/api/audit/{hour}", tags=["audit"],
             summary="One hour in full: cycle, stage inputs, audit records (hashes re-checked), orders, fills, ledger")
    def audit(hour: Annotated[str, PathParam(max_length=40, description="Unix seconds or ISO 8601 UTC")]) -> Any:
        h = parse_time(hour, "hour")
        assert h is not None
        if h % HOUR_S:
            raise HTTPException(422, f"hour: {hour!r} is not on the hourly grid")
        out = read(reader.audit_hour, h)
        if out is None:
            raise HTTPException(404, f"hour {hour}: nothing recorded")
        return out

    @app.get("/metrics", tags=["meta"], summary="Prometheus metrics", response_class=Response)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
