"""Tolerant reading of per-hour payloads: every documented shape, and nothing at all."""

from __future__ import annotations

import pytest

from paper.dashboard.views import PAYLOAD_KEYS, hour_view

EMPTY = {"assets": None, "predictions": [], "regime": None, "proposed": None, "target": None, "interventions": [],
         "kill_switch": None, "ladder_level": None, "equity": None, "fees": None}


@pytest.mark.parametrize("payload", [None, {}, {"equity": "NaN"}, {"predictions": "junk", "regime": 3,
                                                                     "interventions": [{"no_rule": 1}, 5]}])
def test_missing_or_odd_fields_become_null(payload: object) -> None:
    assert hour_view(payload, None, None) == EMPTY
    assert set(EMPTY) == set(PAYLOAD_KEYS) - {"confidence"}


def test_the_loops_decision_shape_with_list_weights_named_by_the_snapshot() -> None:
    decision = {"proposal": [0.2, 0.1], "target": [0.15, 0.0],
                "risk": {"interventions": [{"rule": "asset_cap", "assets": ["BTC"], "amount": 0.05, "detail": ""}],
                         "ladder_level": 1, "kill_switch": {"engaged": False, "reasons": [], "engaged_now": False}}}
    v = hour_view({"equity": "101.5", "fees": "0.25"}, decision, {"bar": {"assets": ["BTC", "ETH"]}})
    assert v["proposed"] == {"BTC": 0.2, "ETH": 0.1} and v["target"] == {"BTC": 0.15, "ETH": 0.0}
    assert v["interventions"] == [{"rule": "asset_cap", "assets": ["BTC"], "amount": 0.05, "detail": ""}]
    assert v["ladder_level"] == 1 and v["kill_switch"]["engaged"] is False
    assert v["equity"] == 101.5 and v["fees"] == 0.25


def test_nested_predictions_market_regime_and_explicit_confidence() -> None:
    payload = {"predictions": {"BTC": {"4": {"p_up": 0.7, "exp_return": 0.01}, "24": {"p_up": "0.4"}}},
               "regime": {"p_trend": 0.5, "p_range": 0.2, "p_high_vol": 0.2, "p_crash": 0.1},
               "confidence": [0.9]}
    v = hour_view(payload, {"predictions": "ignored: the payload wins"}, None)
    assert [(p["asset"], p["horizon"], p["p_up"]) for p in v["predictions"]] == [("BTC", 4, 0.7), ("BTC", 24, 0.4)]
    assert v["predictions"][0]["confidence"] == 0.9  # explicit
    assert v["predictions"][1]["confidence"] == pytest.approx(0.2)  # |2 p_up - 1|
    assert v["regime"] == {"market": {"trend": 0.5, "range": 0.2, "high_vol": 0.2, "crash": 0.1}}


def test_regimes_as_lists_per_asset() -> None:
    v = hour_view({"assets": ["A", "B"], "regimes": [[0.1, 0.2, 0.3, 0.4], [1, 0, 0, 0]]}, None, None)
    assert v["regime"] == {"A": {"trend": 0.1, "range": 0.2, "high_vol": 0.3, "crash": 0.4},
                           "B": {"trend": 1.0, "range": 0.0, "high_vol": 0.0, "crash": 0.0}}
