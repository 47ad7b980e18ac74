"""The project's error hierarchy: every failure names the file, field, pair or value.

Library code raises these instead of bare ``ValueError`` so that callers (scripts,
paper trading) can tell bad input from bugs. Messages follow "expected X, got Y".
"""

from __future__ import annotations


class KrakenRLError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(KrakenRLError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class DataError(KrakenRLError, ValueError):
    """Market data is malformed: bad file, bad row, bad value, unknown pair."""


class OrderRejected(KrakenRLError):
    """An order violates an instrument rule (lot size, minimum volume or cost)."""


class ExchangeError(KrakenRLError):
    """Base class of errors coming from an exchange connection."""


class RetryableExchangeError(ExchangeError):
    """A transient exchange failure (timeout, rate limit): retry with backoff."""


class FatalExchangeError(ExchangeError):
    """A permanent exchange failure (authentication, bad request): do not retry."""


class StateError(KrakenRLError):
    """A persisted state file is missing, corrupted or inconsistent."""
