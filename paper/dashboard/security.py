"""Who may talk to the dashboard, and the headers every response carries.

The dashboard binds to loopback by default. Any other bind needs a token (`check_bind`); when a
token is configured every request (API, page, static files, OpenAPI, metrics) must present it:
``Authorization: Bearer <token>``, the ``krakenrl_dashboard`` cookie, or ``?token=`` once (which
sets that cookie, HttpOnly and SameSite=Strict, so the page's own fetches carry it). Tokens are
compared with `hmac.compare_digest` (constant time). No credentials: 401; wrong ones: 403.
"""

from __future__ import annotations

import hmac
import ipaddress

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

COOKIE = "krakenrl_dashboard"
TOKEN_ENV = "KRAKENRL_DASHBOARD_TOKEN"
MIN_TOKEN_LENGTH = 16

# the page needs nothing from elsewhere; FastAPI's /docs page loads Swagger UI from its CDN
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cache-Control": "no-store",
}


class BindError(ValueError):
    """A non-loopback bind without a token, or a token too short to be one."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond loopback without a token; refuse short tokens anywhere."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise BindError(f"dashboard.token: at least {MIN_TOKEN_LENGTH} characters, got {len(token)}")
    if not is_loopback(host) and not token:
        raise BindError(
            f"dashboard.host={host!r} is not a loopback address: set dashboard.token or {TOKEN_ENV} "
            "(every request must then carry it)"
        )


def presented_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.cookies.get(COOKIE) or request.query_params.get("token")


class TokenMiddleware(BaseHTTPMiddleware):
    """401 without a token, 403 with a wrong one; a valid ``?token=`` sets the session cookie."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        super().__init__(app)
        self._token = token.encode()

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        given = presented_token(request)
        if not given:
            return JSONResponse({"detail": "authentication required: a dashboard token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.encode(), self._token):
            return JSONResponse({"detail": "invalid dashboard token"}, status_code=403)
        response = await call_next(request)
        if request.query_params.get("token") and request.cookies.get(COOKIE) != given:
            response.set_cookie(COOKIE, given, httponly=True, samesite="strict", path="/")
        return response


class SecurityHeadersMiddleware(BaseHTTPMiddleware):
    """CSP, nosniff, DENY framing, no referrer, no caching, on every response."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for k, v in HEADERS.items():
            response.headers.setdefault(k, v)
        docs = request.url.path in ("/docs", "/redoc")
        response.headers["Content-Security-Policy"] = DOCS_CSP if docs else CSP
        return response
