"""The execution account (`envs.execution.AccountState`) as exact JSON, and the policy's own state.

Floats round-trip exactly through canonical JSON (shortest repr), so an account saved in the
store and read back after a restart is the same account bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.data.market import MarketData
from envs.execution.execute import AccountState
from envs.execution.ledger import FEE_WINDOW

POLICY_STATE_KEYS = ("phase", "target", "decisions")  # HierarchicalPolicy, baselines' act() counter


def account_to_dict(s: AccountState) -> dict[str, Any]:
    return {
        "cash": float(s.cash), "units": np.asarray(s.units, dtype=np.float64).tolist(),
        "pending": np.asarray(s.pending, dtype=np.float64).tolist(),
        "pending_price": np.asarray(s.pending_price, dtype=np.float64).tolist(),
        "age": [int(a) for a in np.asarray(s.age).tolist()], "equity": float(s.equity),
        "peak_equity": float(s.peak_equity), "volume_30d": float(s.volume_30d),
        "traded_window": np.asarray(s.traded_window, dtype=np.float64).tolist(), "hours": int(s.hours),
        "last_trade": int(s.last_trade),
    }


def account_from_dict(d: dict[str, Any]) -> AccountState:
    return AccountState(
        float(d["cash"]), np.array(d["units"], dtype=np.float64), np.array(d["pending"], dtype=np.float64),
        np.array(d["pending_price"], dtype=np.float64), np.array(d["age"], dtype=np.int64), float(d["equity"]),
        float(d["peak_equity"]), float(d["volume_30d"]), np.array(d["traded_window"], dtype=np.float64),
        int(d["hours"]), int(d["last_trade"]),
    )


def expire_hours(ring: np.ndarray, volume: float, hours: int, gap: int) -> tuple[np.ndarray, float]:
    """The 30-day traded-volume ring and its sum after ``gap`` hours that traded nothing (a copy)."""
    ring = np.asarray(ring, dtype=np.float64).copy()
    for h in range(hours, hours + gap):
        volume -= ring[h % FEE_WINDOW]
        ring[h % FEE_WINDOW] = 0.0
    return ring, max(volume, 0.0)


def remark_after_gap(s: AccountState, market: MarketData, t: int, gap: int) -> AccountState:
    """The account after ``gap`` hours the process was down, deciding at bar ``t``: never filled retroactively.

    Resting orders are cancelled (nothing executed while down), the positions are re-marked
    at the close of bar ``t`` (last known price where it has none), and the traded-volume ring
    expires the skipped hours as if they traded nothing.
    """
    ring, vol = expire_hours(s.traded_window, float(s.volume_30d), s.hours, gap)
    close = market.close[: t + 1]
    marks = np.array([c[np.isfinite(c)][-1] if np.isfinite(c).any() else 0.0 for c in close.T])
    equity = float(s.cash + np.sum(np.asarray(s.units) * marks))
    n = len(s.units)
    return AccountState(s.cash, np.asarray(s.units).copy(), np.zeros(n), np.zeros(n), np.zeros(n, np.int64), equity,
                        max(float(s.peak_equity), equity), vol, ring, s.hours + gap, s.last_trade)


def policy_state(policy: Any) -> dict[str, Any]:
    """The attributes that carry a policy's memory between hours (`POLICY_STATE_KEYS`), as JSON."""
    out: dict[str, Any] = {}
    for key in POLICY_STATE_KEYS:
        if hasattr(policy, key):
            v = getattr(policy, key)
            out[key] = np.asarray(v, dtype=np.float64).tolist() if isinstance(v, np.ndarray) else int(v)
    return out


def load_policy_state(policy: Any, state: dict[str, Any]) -> None:
    for key, v in state.items():
        setattr(policy, key, np.array(v, dtype=np.float64) if isinstance(v, list) else int(v))


def check_policy_supported(policy: Any) -> None:
    """Refuse a policy whose memory the loop cannot persist (a restart would silently change it)."""
    if hasattr(policy, "_positions") or hasattr(policy, "events"):
        raise ValueError(f"paper trading: policy {getattr(policy, 'name', type(policy).__name__)!r} keeps state "
                         f"the loop cannot persist across restarts (supported: {POLICY_STATE_KEYS})")


__all__ = ["account_from_dict", "account_to_dict", "check_policy_supported", "expire_hours", "load_policy_state",
           "policy_state",
           "remark_after_gap"]
