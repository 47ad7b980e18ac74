"""ccxt exchange objects, symbol mapping across exchanges, and retry with backoff.

The same base under three names: Kraken ``XBT/USD`` (altname ``XBTUSD``), Binance
``BTC/USDT`` (id ``BTCUSDT``), Coinbase ``BTC-USD``; ccxt's unified symbols are
``BTC/USD``, ``BTC/USDT`` and ``BTC/USD``. `symbol_map` gives all of them for one asset.
Every exchange is built with ccxt's own rate limiter on (``enableRateLimit``); transient
errors (ccxt ``NetworkError``: timeouts, ``ExchangeNotAvailable``, ``DDoSProtection``,
``RateLimitExceeded``) are retried with exponential backoff by `call_with_retry`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from envs.data.pairs import canonical_asset, pair_info
from envs.errors import ConfigError, DataError, FatalExchangeError, RetryableExchangeError

log = logging.getLogger(__name__)

T = TypeVar("T")

QUOTES = {"kraken": "USD", "binance": "USDT", "coinbase": "USD"}
EXCHANGES = tuple(QUOTES)
# ccxt options that keep market loading to the spot markets this project uses
_OPTIONS: dict[str, dict[str, Any]] = {"binance": {"fetchMarkets": ["spot"]}, "kraken": {}, "coinbase": {}}


def check_exchange(name: str) -> str:
    if name not in QUOTES:
        raise ConfigError(f"exchange {name!r}: expected one of {list(EXCHANGES)}")
    return name


def asset_of(pair: str) -> str:
    """The Kraken-listed asset of a user pair name (``XBT/USD``, ``XBTUSD``, ``BTC``, ``BTC-USD``, ``BTC/USDT``).

    Raises DataError for a base Kraken does not list in ``kraken_pairs.json``.
    """
    return canonical_asset(pair_info(pair).asset)  # DataError naming the pair and the known ones


def native_symbol(exchange: str, asset: str) -> str:
    """The exchange's own name of the asset's pair: ``XBT/USD``, ``BTCUSDT``, ``BTC-USD``."""
    check_exchange(exchange)
    if exchange == "kraken":
        return pair_info(asset).wsname
    if exchange == "binance":
        return f"{asset}USDT"
    return f"{asset}-USD"


def ccxt_symbol(exchange: str, asset: str) -> str:
    """ccxt's unified symbol of the asset's pair (ccxt maps Kraken's XBT to BTC, XDG to DOGE)."""
    return f"{asset}/{QUOTES[check_exchange(exchange)]}"


def symbol_map(asset: str) -> dict[str, dict[str, str]]:
    """Per exchange: its native pair name, ccxt's unified symbol and the store's pair key."""
    from envs.data.store import pair_key

    return {
        ex: {"native": native_symbol(ex, asset), "ccxt": ccxt_symbol(ex, asset), "store": pair_key(asset, q)}
        for ex, q in QUOTES.items()
    }


def make_exchange(name: str, session: Any = None, **config: Any) -> Any:
    """A ccxt exchange with the rate limiter on; ``session`` replaces its HTTP session (tests, proxies)."""
    import ccxt

    check_exchange(name)
    params = {"enableRateLimit": True, "options": dict(_OPTIONS[name]), **config}
    exchange = getattr(ccxt, name)(params)
    if session is not None:
        exchange.session = session
    return exchange


def call_with_retry(
    fn: Callable[..., T],
    *args: Any,
    retries: int = 5,
    backoff_s: float = 1.0,
    max_backoff_s: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "",
    jitter: float = 0.0,
    rng: Callable[[], float] | None = None,
    retry_once: tuple[type[BaseException], ...] = (),
    no_retry: tuple[type[BaseException], ...] = (),
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)``, retrying ccxt's transient errors with exponential backoff.

    Waits ``backoff_s * 2**k`` (capped at ``max_backoff_s``) after the k-th failure, shortened
    by a random fraction up to ``jitter`` (``rng()`` in [0, 1); so that restarted clients do
    not retry in step, and the cap still holds); after ``retries`` retries raises
    RetryableExchangeError. ``retry_once`` names non-transient ccxt errors worth exactly one
    more try (a garbled response); ``no_retry`` names transient-looking ones that must not
    be retried (``OnMaintenance``). Permanent ccxt errors (bad symbol, authentication)
    raise FatalExchangeError at once; every error names ``what``.
    """
    import random

    import ccxt

    draw = rng or random.random
    attempt = 0
    once_used = False

    def wait(exc: BaseException) -> None:
        nonlocal attempt
        delay = min(backoff_s * 2**attempt, max_backoff_s)
        if jitter:
            delay *= 1.0 - jitter * draw()
        log.warning("%s: %s (%s), retry %d/%d in %.1f s", what, type(exc).__name__, exc, attempt + 1, retries, delay)
        sleep(delay)
        attempt += 1

    while True:
        try:
            return fn(*args, **kwargs)
        except no_retry as exc:
            raise FatalExchangeError(f"{what}: {type(exc).__name__}: {exc}") from exc
        except ccxt.NetworkError as exc:
            if attempt >= retries:
                raise RetryableExchangeError(
                    f"{what}: gave up after {retries} retries: {type(exc).__name__}: {exc}"
                ) from exc
            wait(exc)
        except retry_once as exc:
            if once_used or attempt >= retries:
                raise FatalExchangeError(f"{what}: {type(exc).__name__} twice: {exc}") from exc
            once_used = True
            wait(exc)
        except ccxt.BadSymbol as exc:
            raise DataError(f"{what}: the exchange does not list this pair: {exc}") from exc
        except ccxt.BaseError as exc:
            raise FatalExchangeError(f"{what}: {type(exc).__name__}: {exc}") from exc
