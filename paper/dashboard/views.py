"""Tolerant reading of what the loop records per hour: predictions, regimes, weights, interventions.

The hourly loop writes each hour's decision as the DECIDED stage input (``cycle_stages``) and
closes the hour with a terminal audit record whose payload may repeat or extend it. The
dashboard reads both, the terminal payload taking precedence, and never fails on a missing or
oddly shaped field: whatever it cannot read becomes ``None`` (or an empty list). The keys read
are listed in `PAYLOAD_KEYS` and documented in docs/dashboard.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

REGIME_NAMES = ("trend", "range", "high_vol", "crash")

# key in the merged view -> where it is looked up, first hit wins (dotted paths into the
# terminal payload, then into the DECIDED ``decision``)
PAYLOAD_KEYS: dict[str, tuple[str, ...]] = {
    "assets": ("assets", "decision.assets", "snapshot.bar.assets"),
    "predictions": ("predictions", "decision.predictions"),
    "regime": ("regime", "regimes", "decision.regime", "decision.regimes"),
    "proposed": ("proposed", "proposal", "decision.proposal", "decision.proposed", "decision.risk.proposed"),
    "target": ("target", "executed", "decision.target", "decision.risk.executed"),
    "interventions": ("interventions", "risk.interventions", "decision.interventions", "decision.risk.interventions"),
    "confidence": ("confidence", "decision.confidence"),
    "kill_switch": ("kill_switch", "risk.kill_switch", "decision.risk.kill_switch"),
    "ladder_level": ("ladder_level", "risk.ladder_level", "decision.risk.ladder_level"),
    "equity": ("equity",),
    "fees": ("fees",),
}


def lookup(root: Mapping[str, Any], path: str) -> Any:
    """``root["a"]["b"]`` for ``"a.b"``; None when any step is missing or not a mapping."""
    node: Any = root
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def num(value: Any) -> float | None:
    """A finite float from a number or numeric string; None otherwise (bools excluded)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def weights_map(value: Any, assets: Sequence[str] | None) -> dict[str, float | None] | None:
    """Weights as ``{asset: w}`` from a mapping, or from a list in ``assets`` order."""
    if isinstance(value, Mapping):
        return {str(k): num(v) for k, v in value.items()}
    if isinstance(value, list):
        names = list(assets) if assets and len(assets) == len(value) else [f"#{i}" for i in range(len(value))]
        return {n: num(v) for n, v in zip(names, value, strict=True)}
    return None


def _prediction(asset: Any, horizon: Any, rec: Mapping[str, Any]) -> dict[str, Any]:
    p_up = num(rec.get("p_up"))
    conf = num(rec.get("confidence"))
    if conf is None and p_up is not None:
        conf = abs(2.0 * p_up - 1.0)
    h = num(horizon)
    return {
        "asset": None if asset is None else str(asset),
        "horizon": None if h is None else int(h),
        "model": rec.get("model") if isinstance(rec.get("model"), str) else None,
        "p_up": p_up,
        "exp_return": num(rec.get("exp_return")),
        "confidence": conf,
    }


def predictions_list(value: Any, assets: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Predictions as records ``{asset, horizon, model, p_up, exp_return, confidence}``.

    Accepts a list of such records, or ``{asset: {horizon: {p_up, exp_return, ...}}}``.
    ``confidence`` defaults to ``|2 p_up - 1|`` (how far from a coin flip the call is).
    """
    out: list[dict[str, Any]] = []
    if isinstance(value, list):
        for rec in value:
            if isinstance(rec, Mapping):
                out.append(_prediction(rec.get("asset"), rec.get("horizon"), rec))
    elif isinstance(value, Mapping):
        for asset, per_h in value.items():
            if isinstance(per_h, Mapping):
                for h, rec in per_h.items():
                    if isinstance(rec, Mapping):
                        out.append(_prediction(asset, h, rec))
    return out


def regime_map(value: Any, assets: Sequence[str] | None = None) -> dict[str, dict[str, float | None]] | None:
    """Regime probabilities as ``{scope: {trend, range, high_vol, crash}}`` (scope: asset or ``"market"``)."""

    def probs(v: Any) -> dict[str, float | None] | None:
        if isinstance(v, Mapping):
            return {str(k).removeprefix("p_"): num(x) for k, x in v.items()}
        if isinstance(v, list) and len(v) == len(REGIME_NAMES) and not any(isinstance(x, list) for x in v):
            return {n: num(x) for n, x in zip(REGIME_NAMES, v, strict=True)}
        return None

    if isinstance(value, Mapping):
        if all(str(k).removeprefix("p_") in REGIME_NAMES for k in value):
            p = probs(value)
            return None if p is None else {"market": p}
        out = {str(k): probs(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None} or None
    if isinstance(value, list):
        if value and all(isinstance(v, list) for v in value):
            names = list(assets) if assets and len(assets) == len(value) else [f"#{i}" for i in range(len(value))]
            out = {n: probs(v) for n, v in zip(names, value, strict=True)}
            return {k: v for k, v in out.items() if v is not None} or None
        p = probs(value)
        return None if p is None else {"market": p}
    return None


def interventions_list(value: Any) -> list[dict[str, Any]]:
    """Risk interventions as ``{rule, assets, amount, detail}`` (entries without a rule dropped)."""
    out: list[dict[str, Any]] = []
    if isinstance(value, list):
        for iv in value:
            if isinstance(iv, Mapping) and isinstance(iv.get("rule"), str):
                assets = iv.get("assets")
                out.append({
                    "rule": iv["rule"],
                    "assets": [str(a) for a in assets] if isinstance(assets, list) else [],
                    "amount": num(iv.get("amount")),
                    "detail": iv.get("detail") if isinstance(iv.get("detail"), str) else None,
                })
    return out


def hour_view(payload: Any, decision: Any, snapshot: Any) -> dict[str, Any]:
    """The normalised per-hour view: every key of `PAYLOAD_KEYS`, missing ones as None/empty."""
    root = {
        **(payload if isinstance(payload, Mapping) else {}),
        "decision": decision if isinstance(decision, Mapping) else {},
        "snapshot": snapshot if isinstance(snapshot, Mapping) else {},
    }
    raw: dict[str, Any] = {}
    for key, paths in PAYLOAD_KEYS.items():
        raw[key] = next((v for v in (lookup(root, p) for p in paths) if v is not None), None)
    assets = raw["assets"] if isinstance(raw["assets"], list) else None
    ks = raw["kill_switch"] if isinstance(raw["kill_switch"], Mapping) else None
    ladder = num(raw["ladder_level"])
    preds = predictions_list(raw["predictions"], assets)
    conf = raw["confidence"]
    if isinstance(conf, list):  # explicit confidences override the derived ones, record by record
        for rec, c in zip(preds, conf, strict=False):
            rec["confidence"] = num(c)
    return {
        "assets": [str(a) for a in assets] if assets else None,
        "predictions": preds,
        "regime": regime_map(raw["regime"], assets),
        "proposed": weights_map(raw["proposed"], assets),
        "target": weights_map(raw["target"], assets),
        "interventions": interventions_list(raw["interventions"]),
        "kill_switch": None if ks is None else {
            "engaged": bool(ks.get("engaged")),
            "reasons": [str(r) for r in ks.get("reasons") or []] if isinstance(ks.get("reasons"), list) else [],
            "engaged_now": bool(ks.get("engaged_now")),
        },
        "ladder_level": None if ladder is None else int(ladder),
        "equity": num(raw["equity"]),
        "fees": num(raw["fees"]),
    }


__all__ = ["PAYLOAD_KEYS", "REGIME_NAMES", "hour_view", "interventions_list", "lookup", "num",
           "predictions_list", "regime_map", "weights_map"]
