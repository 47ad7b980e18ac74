"""How the paper feeds react to exchange failures: retry, retry once, or `FeedDown`.

One decision table, shared by every ccxt call a feed makes (`guarded_call`):

| ccxt error (Kraken cause)                                             | reaction                          |
|-----------------------------------------------------------------------|-----------------------------------|
| ``RequestTimeout``, ``NetworkError`` (connection reset), HTTP 504      | retry, capped backoff + jitter    |
| ``RateLimitExceeded`` (HTTP 429), ``DDoSProtection``                   | retry (``EAPI:Rate limit exceeded``, |
|                                                                        | ``EGeneral:Too many requests``)   |
| ``ExchangeNotAvailable`` (HTTP 5xx, ``EService:Unavailable``/``Busy``) | retry, within the same budget     |
| any of the above after ``retries`` retries                             | ``FeedDown("exchange_down")``     |
| ``OnMaintenance`` (``EService:Market in cancel_only mode``, ...)      | FeedDown at once: ``maintenance``, |
|                                                                        | ``cancel_only`` or ``post_only``  |
| ``BadResponse`` / ``NullResponse`` (garbled body, HTML page, no JSON)  | one retry, then FeedDown      |
|                                                                        | ``("bad_response")``              |
| ``AuthenticationError`` / ``PermissionDenied`` (never expected: no keys) | ``FeedDown("auth")``, no retry  |
| any other ccxt ``ExchangeError`` (``{"error": [...]}`` with HTTP 200)  | ``FeedDown("exchange_error")``    |

ccxt 4.5 returns the raw *text* of an HTTP-200 body that is not JSON (a truncated
payload, a Cloudflare page) instead of raising, so `check_result` turns any response
that is not ``{"error": [], "result": {...}}`` into ``ccxt.BadResponse`` inside the retried
call. Why one retry for a garbled body: a single truncated transfer is common and
harmless, two in a row mean something between us and Kraken is broken, and the loop
should stop trading rather than act on data it cannot read.

The exchange status (``SystemStatus``) is a separate check: ``online`` passes;
``maintenance``, ``cancel_only`` and ``post_only`` raise `FeedDown` with that reason (in
post-only mode the backtest's market-order fallback cannot happen, so the paper fills
would not be the ones the live system could get); any other value raises
``FeedDown("exchange_status")``. The retries reuse `envs.data.exchanges.call_with_retry`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from envs.data.exchanges import call_with_retry
from envs.errors import ConfigError, FatalExchangeError, RetryableExchangeError
from paper.feeds.base import FeedDown

T = TypeVar("T")

HALT_STATUSES = ("maintenance", "cancel_only", "post_only")


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff budget of one feed call: ``retries`` retries, waits ``backoff_s * 2**k`` capped and jittered."""

    retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    jitter: float = 0.5  # each wait is shortened by up to this fraction (never lengthened: the cap holds)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ConfigError(f"feed.retries: expected >= 0, got {self.retries}")
        if not (0 < self.backoff_s <= self.max_backoff_s):
            raise ConfigError(f"feed.backoff_s: expected 0 < backoff_s <= max_backoff_s, got {self.backoff_s}, "
                              f"{self.max_backoff_s}")  # fmt: skip
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"feed.jitter: expected a fraction in [0, 1), got {self.jitter}")


def feed_down(reason: str, detail: str) -> FeedDown:
    """A `FeedDown` with ``reason``; ``detail`` (what failed, how often) is attached as a note."""
    exc = FeedDown(reason)
    exc.add_note(detail)
    return exc


def reason_of(exc: FatalExchangeError) -> str:
    """The `FeedDown` reason of a non-retried ccxt failure (see the module table)."""
    import ccxt

    cause = exc.__cause__
    if isinstance(cause, ccxt.OnMaintenance):  # Kraken: "EService:Market in cancel_only mode" and the like
        text = str(cause)
        return next((s for s in ("cancel_only", "post_only") if s in text), "maintenance")
    if isinstance(cause, ccxt.BadResponse):
        return "bad_response"
    if isinstance(cause, ccxt.AuthenticationError | ccxt.PermissionDenied | ccxt.AccountSuspended):
        return "auth"
    return "exchange_error"


def check_result(resp: Any, what: str) -> dict[str, Any]:
    """Kraken's ``result`` object of a response; ccxt.BadResponse for anything else (retried once)."""
    import ccxt

    if not isinstance(resp, dict) or not isinstance(resp.get("result"), dict):
        shown = resp if isinstance(resp, str) else type(resp).__name__
        raise ccxt.BadResponse(f"{what}: expected a JSON object with a 'result' object, got {str(shown)[:80]!r}")
    result: dict[str, Any] = resp["result"]
    return result


def guarded_call(
    fn: Callable[[], T],
    what: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] | None = None,
) -> T:
    """``fn()`` under the module's decision table: its value, or `FeedDown` naming the reason."""
    import ccxt

    try:
        return call_with_retry(
            fn, retries=policy.retries, backoff_s=policy.backoff_s, max_backoff_s=policy.max_backoff_s,
            sleep=sleep, what=what, jitter=policy.jitter, rng=rng,
            retry_once=(ccxt.BadResponse,), no_retry=(ccxt.OnMaintenance,),
        )  # fmt: skip
    except RetryableExchangeError as exc:
        raise feed_down("exchange_down", str(exc)) from exc
    except FatalExchangeError as exc:
        raise feed_down(reason_of(exc), str(exc)) from exc


def status_reason(status: Any) -> str | None:
    """None for an ``online`` exchange, else the `FeedDown` reason of its SystemStatus value."""
    if status == "online":
        return None
    if status in HALT_STATUSES:
        return str(status)
    return "exchange_status"
