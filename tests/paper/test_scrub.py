"""Secrets never reach configs or logs written by paper trading (SEC-3)."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import random

import pytest
from omegaconf import OmegaConf

from paper import ScrubFilter, scrub_config, scrub_text
from paper.scrub import REDACTED, is_secret_name, looks_like_token

RNG = random.Random(12)
API_KEY = base64.b64encode(RNG.randbytes(42)).decode()  # 56 characters, like a Kraken API key
API_SECRET = base64.b64encode(RNG.randbytes(64)).decode()  # 88 characters, like a Kraken private key
SHA = hashlib.sha256(b"config").hexdigest()


def test_fixture_keys_have_the_real_shape() -> None:
    assert len(API_KEY) == 56 and len(API_SECRET) == 88 and API_SECRET.endswith("==")
    assert looks_like_token(API_KEY) and looks_like_token(API_SECRET)


@pytest.mark.parametrize(
    "name", ["apiKey", "api_key", "secret", "privateKey", "token", "password", "passwd", "passphrase",
             "API-Sign", "API-Key", "Authorization", "credentials", "walletSecret"],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["pairs", "fee_rate", "run_id", "config_hash", "design", "timeout", "rateLimit"])
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


def test_config_values_under_secret_names_are_redacted() -> None:
    config = {
        "feed": {"exchange": {"id": "kraken", "apiKey": API_KEY, "secret": API_SECRET, "password": "", "uid": None,
                              "enableRateLimit": True, "rateLimit": 1000}},
        "credentials": {"kraken": {"region": "eu", "key": "k", "tiers": [1, 2]}},
        "run_id": "run-2024-01-01", "config_hash": SHA, "pairs": ["XBTUSD", "ETHUSD"],
        "note": f"use {API_KEY} for live",
        "path": "/work/shared/data/kraken/api_fixtures/XBTUSD_60_2025Q1SampleTrades",
    }
    out = scrub_config(config)
    ex = out["feed"]["exchange"]
    assert ex["apiKey"] == REDACTED and ex["secret"] == REDACTED
    assert ex["password"] == "" and ex["uid"] is None  # empty stays visible: no key configured
    assert ex["rateLimit"] == 1000 and ex["enableRateLimit"] is True and ex["id"] == "kraken"
    assert out["credentials"] == {"kraken": {"region": REDACTED, "key": REDACTED, "tiers": [REDACTED, REDACTED]}}
    assert out["run_id"] == "run-2024-01-01" and out["config_hash"] == SHA and out["pairs"] == ["XBTUSD", "ETHUSD"]
    assert out["note"] == f"use {REDACTED} for live"
    assert out["path"] == config["path"]
    assert API_KEY not in repr(out) and API_SECRET not in repr(out)
    assert config["feed"]["exchange"]["apiKey"] == API_KEY  # the input is not modified


def test_omegaconf_configs_are_scrubbed_to_plain_containers() -> None:
    cfg = OmegaConf.create({"feed": {"apiKey": API_KEY, "pairs": ["XBTUSD"]}, "state": "paper.db"})
    out = scrub_config(cfg)
    assert out == {"feed": {"apiKey": REDACTED, "pairs": ["XBTUSD"]}, "state": "paper.db"}
    assert OmegaConf.to_yaml(OmegaConf.create(out)).count(REDACTED) == 1


@pytest.mark.parametrize(
    "line",
    [
        f"creating exchange apiKey={API_KEY} secret={API_SECRET}",
        f'{{"apiKey": "{API_KEY}", "secret": "{API_SECRET}"}}',
        f"headers: API-Key: {API_KEY}, API-Sign: {API_SECRET}",
        f"Authorization: Bearer {API_KEY}",
        f"password='hunter2 two words' token=abc secret: {API_SECRET}",
        f"ccxt.base.errors.AuthenticationError: kraken {API_KEY} EAPI:Invalid key",
    ],
)
def test_log_lines_are_scrubbed(line: str) -> None:
    out = scrub_text(line)
    assert API_KEY not in out and API_SECRET not in out and "hunter2" not in out
    assert REDACTED in out
    assert scrub_text(out) == out  # idempotent


def test_ordinary_log_lines_are_kept() -> None:
    line = (f"hour 2024-01-01T05:00:00Z traded equity=10012.5034 config_hash={SHA} "
            "order 689dd0b1f86adb5ef0c6a40331f40c53 uuid 123e4567-e89b-12d3-a456-426614174000 "
            "store=/work/shared/data/kraken/XBTUSD_60_2025Q1SampleTradesFiles")
    assert scrub_text(line) == line


def test_the_logging_filter_scrubs_messages_args_and_exceptions() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ScrubFilter())
    log = logging.getLogger("paper.test.scrub")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("exchange config %s", {"apiKey": API_KEY})
        try:
            raise RuntimeError(f"signing failed with secret={API_SECRET}")
        except RuntimeError:
            log.exception("private call")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert API_KEY not in text and API_SECRET not in text
    assert text.count(REDACTED) >= 2 and "Traceback" in text and "RuntimeError: signing failed" in text
