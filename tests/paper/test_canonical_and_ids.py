"""Canonical JSON (what audit hashes cover) and deterministic client order ids."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest

from paper import CanonicalEncodingError, OrderIntent, canonical_json, client_order_id, content_hash
from paper.hours import as_hour
from tests.paper.helpers import T0


def test_keys_sorted_no_whitespace_ascii() -> None:
    assert canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"\\u00e9"],"b":1}'


def test_decimal_is_fixed_point_text_and_keeps_its_quantum() -> None:
    assert canonical_json([Decimal("0.10"), Decimal("1E+2"), Decimal("-0.0004000")]) == '["0.10","100","-0.0004000"]'
    assert canonical_json(Decimal("0.10")) != canonical_json(Decimal("0.1"))


def test_float_is_shortest_repr_and_float32_widens_exactly() -> None:
    assert canonical_json([0.1, 1.0, 1e-7]) == "[0.1,1.0,1e-07]"
    assert canonical_json(np.float32(0.1)) == repr(float(np.float32(0.1))) == "0.10000000149011612"
    assert canonical_json(np.array([1, 2], dtype=np.int64)) == "[1,2]"


@pytest.mark.parametrize(
    "bad",
    [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity"), datetime(2024, 1, 1), {1: "x"}, {"a"}, b"x"],
)
def test_values_without_a_canonical_form_are_refused(bad: object) -> None:
    with pytest.raises(CanonicalEncodingError, match=r"^\$"):
        canonical_json(bad)


def test_error_names_the_path_of_the_bad_value() -> None:
    with pytest.raises(CanonicalEncodingError, match=r"\$\.fills\[1\]\.price"):
        canonical_json({"fills": [{"price": 1.0}, {"price": float("nan")}]})


def test_datetimes_become_utc_z_strings() -> None:
    cet = timezone(timedelta(hours=1))
    assert canonical_json(datetime(2024, 1, 1, 1, tzinfo=cet)) == '"2024-01-01T00:00:00Z"'
    assert canonical_json(datetime(2024, 1, 1, 0, 0, 0, 5, tzinfo=UTC)) == '"2024-01-01T00:00:00.000005Z"'


def test_content_hash_is_pinned() -> None:
    # a change of the encoding must be deliberate: it would break every existing chain
    doc = {"equity": Decimal("999.96"), "w": [0.25, 0.75], "hour": T0, "ok": True}
    text = '{"equity":"999.96","hour":1700002800,"ok":true,"w":[0.25,0.75]}'
    assert canonical_json(doc) == text
    assert content_hash(doc) == hashlib.sha256(text.encode()).hexdigest()


def test_client_order_id_is_deterministic_and_pinned() -> None:
    a = client_order_id("run-1", T0, "XBTUSD", "buy", 0)
    assert a == client_order_id("run-1", T0, "XBTUSD", "buy", 0)
    assert len(a) == 32 and int(a, 16) >= 0
    text = '["run-1",1700002800,"XBTUSD","buy",0]'
    assert a == hashlib.sha256(f"krakenrl/paper/order/v1\n{text}".encode()).hexdigest()[:32]


def test_client_order_id_changes_with_every_field() -> None:
    base = ("run-1", T0, "XBTUSD", "buy", 0)
    variants = [
        ("run-2", T0, "XBTUSD", "buy", 0),
        ("run-1", T0 + 3600, "XBTUSD", "buy", 0),
        ("run-1", T0, "ETHUSD", "buy", 0),
        ("run-1", T0, "XBTUSD", "sell", 0),
        ("run-1", T0, "XBTUSD", "buy", 1),
    ]
    ids = {client_order_id(*v) for v in [base, *variants]}
    assert len(ids) == 6
    # fields cannot run into each other
    assert client_order_id("a", T0, "bc", "buy", 0) != client_order_id("ab", T0, "c", "buy", 0)


@pytest.mark.parametrize(
    "args",
    [("", T0, "X", "buy", 0), ("r", T0 + 1, "X", "buy", 0), ("r", T0, "", "buy", 0), ("r", T0, "X", "long", 0),
     ("r", T0, "X", "buy", -1), ("r", T0, "X", "buy", True)],
)
def test_client_order_id_refuses_bad_fields(args: tuple) -> None:
    with pytest.raises((ValueError, TypeError)):
        client_order_id(*args)


def test_hours_accept_aware_datetimes_only_on_the_grid() -> None:
    assert as_hour(datetime.fromtimestamp(T0, tz=UTC)) == T0
    with pytest.raises(ValueError, match="naive"):
        as_hour(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="hourly grid"):
        as_hour(T0 + 60)
    with pytest.raises(TypeError):
        as_hour(float(T0))  # type: ignore[arg-type]


def test_money_refuses_floats() -> None:
    with pytest.raises(TypeError, match="money must be Decimal"):
        OrderIntent("BTC", "buy", 0.1, "market")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit order needs a limit_price"):
        OrderIntent("BTC", "buy", Decimal("0.1"), "limit")
