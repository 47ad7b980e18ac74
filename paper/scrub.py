"""Remove anything that looks like a secret before a config or a log line is written (SEC-3).

Paper mode holds no API keys, but a config composed by Hydra, an MLflow param or a logged
exception can still carry one (an environment-provided ``apiKey``, an ``Authorization``
header). Two rules, both applied everywhere:

- by name: a value under a key whose name contains ``key``, ``secret``, ``token``,
  ``password``, ``passwd``, ``passphrase``, ``credential``, ``auth`` or ``signature``, or ends
  in ``-sign`` (case-insensitive; ``apiKey``, ``api_key``, ``API-Sign``…) is replaced by
  `REDACTED` (everything below it, for a nested mapping), unless it is empty (``""``/``None``
  stays visible: it shows that no key is configured); in free text the same names are
  recognised as ``name=value`` / ``name: value`` / ``"name": "value"``;
- by shape: a long base64/base64url run (>= 32 characters from that alphabet with at least
  three upper-case and three lower-case letters and two digits, not starting with ``/``:
  Kraken's 56-character API keys and 88-character secrets) is redacted wherever it appears.
  Lower-case hex digests (config hashes, order ids), UUIDs and absolute paths are kept.

Over-redaction is the safe error: a key named ``sort_keys`` loses its value in the log, an
API secret never reaches the disk.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

REDACTED = "***REDACTED***"

SECRET_NAME = re.compile(
    r"key|secret|token|passw(?:or)?d|passphrase|credential|auth|signature|(?:^|[-_.])sign$", re.IGNORECASE
)
_B64_CHARS = r"A-Za-z0-9+/_\-"
TOKEN_SHAPE = re.compile(rf"(?<![{_B64_CHARS}])[{_B64_CHARS}]{{32,}}={{0,2}}(?![{_B64_CHARS}=])")
# "name=value", "name: value", '"name": "value"' for secret-looking names in free text
_NAME = r"[\w\-.]*(?:key|secret|token|passw(?:or)?d|passphrase|credential|auth|signature|[-_.]sign)[\w\-.]*"
TEXT_PAIR = re.compile(
    rf"""(?P<name>["']?{_NAME}["']?)(?P<sep>\s*[:=]\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|(?:Bearer|Basic)\s+[^\s"',;}]+|[^\s"',;}]+)""",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """True for key names that hold credentials (``apiKey``, ``secret``, ``API-Sign`` …)."""
    return bool(SECRET_NAME.search(name))


def _token_like(s: str) -> bool:
    """Random-looking: several upper- and lower-case letters and digits, and not a file path."""
    if s.startswith("/"):
        return False
    upper = sum(c.isupper() for c in s)
    lower = sum(c.islower() for c in s)
    digits = sum(c.isdigit() for c in s)
    return upper >= 3 and lower >= 3 and digits >= 2


def looks_like_token(value: str) -> bool:
    """True for a long base64-ish run with mixed case and digits (a key or secret's shape)."""
    return any(_token_like(m.group(0)) for m in TOKEN_SHAPE.finditer(value))


def _scrub_tokens(text: str) -> str:
    return TOKEN_SHAPE.sub(lambda m: REDACTED if _token_like(m.group(0)) else m.group(0), text)


def scrub_config(config: Any) -> Any:
    """A copy of a config (mappings, sequences, scalars) with secret-looking values redacted.

    Accepts plain containers and OmegaConf ``DictConfig``/``ListConfig`` (they are Mapping and
    Sequence); returns plain dicts and lists.
    """
    if isinstance(config, Mapping):
        out: dict[Any, Any] = {}
        for k, v in config.items():
            if isinstance(k, str) and is_secret_name(k) and v not in (None, ""):
                out[k] = REDACTED if not isinstance(v, Mapping | list | tuple) else scrub_config(_redact_all(v))
            else:
                out[k] = scrub_config(v)
        return out
    if isinstance(config, Sequence) and not isinstance(config, str | bytes):
        return [scrub_config(v) for v in config]
    if isinstance(config, str):
        return scrub_text(config)
    return config


def _redact_all(value: Any) -> Any:
    """Everything under a secret-named key is secret (``credentials: {kraken: {...}}``)."""
    if isinstance(value, Mapping):
        return {k: _redact_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_all(v) for v in value]
    return value if value in (None, "") else REDACTED


def scrub_text(text: str) -> str:
    """A log line with ``name=value`` secrets and token-shaped strings redacted."""

    def repl(m: re.Match[str]) -> str:
        value = m.group("value")
        quote = value[0] if value[:1] in ("'", '"') else ""
        if value.strip("'\"") == REDACTED:
            return m.group(0)
        return f"{m.group('name')}{m.group('sep')}{quote}{REDACTED}{quote}"

    return _scrub_tokens(TEXT_PAIR.sub(repl, text))


class ScrubFilter(logging.Filter):
    """A logging filter that scrubs each record's final message (attach it to handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_text(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and record.exc_info[1] is not None:
            # the traceback is formatted here, once, so that the handler prints the scrubbed text
            record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
