"""What the cost gate needs to decide whether a trade beats its costs.

The specification says every trade must beat its transaction costs. With an expected-return
signal the gate compares each order's expected gain with its round-trip cost:

    gain_i = d_i x r_i          d_i = w_i - current_i, r_i: expected return at the horizon
    cost_i = |d_i| x 2 x (fee + min(half_spread_i + k x sigma_i x sqrt(|d_i| x E / dvol_i), cap))

and makes the change only if ``gain_i > cost_i`` (the env's own slippage model, in
`envs.execution.slippage`, with bar t's spread, volatility and dollar volume: causal).
Where the signal is missing (NaN, e.g. before the first walk-forward fold) the no-trade
band applies. A decrease that the gate would skip is kept only where keeping the current
weight breaks no limit, so reductions forced by the ladder, caps, halt or kill switch are
never blocked (`risk.projection`).

`CostInputs.pack` is a (T, 4, N) float64 table read by the projection kernel: rows
``C_RETURN`` (NaN = no signal), ``C_HALF``, ``C_SIGMA``, ``C_DVOL``. ``lots`` (3, N) holds the
pairs' lot scale (10 ** lot_decimals), ``ordermin`` and ``costmin``, which the projection's
``order_minimum`` rule needs so that its target is one the exchange accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.execution.slippage import slippage_rate

C_RETURN, C_HALF, C_SIGMA, C_DVOL = range(4)


@dataclass(frozen=True, eq=False)
class CostInputs:
    """Per-bar cost-model inputs and the expected-return signal the gate reads."""

    pack: np.ndarray  # (T, 4, N) float64, rows C_*
    fee: float  # taker rate charged per side
    impact_k: float
    max_slippage: float
    signal: str | None = None  # name of the signal channel read, None if none
    lots: np.ndarray | None = None  # (3, N): lot scale, ordermin, costmin; None = no minimums
    min_order_fraction: float = 0.0  # the env sends no order for weight changes up to this

    def lot_table(self) -> np.ndarray:
        """(3, N) lot rules for the kernel; without rules: infinite scale, no minimums."""
        if self.lots is not None:
            return self.lots
        n = self.pack.shape[2]
        return np.stack([np.full(n, np.inf), np.zeros(n), np.zeros(n)])

    @property
    def has_signal(self) -> bool:
        return self.signal is not None

    def params(self) -> np.ndarray:
        return np.array([self.fee, self.impact_k, self.max_slippage, self.min_order_fraction], dtype=np.float64)

    @classmethod
    def none(cls, n_bars: int, n_assets: int) -> CostInputs:
        """No signal and no cost model: the gate uses the no-trade band only."""
        pack = np.zeros((n_bars, 4, n_assets))
        pack[:, C_RETURN] = np.nan
        pack.flags.writeable = False
        return cls(pack, 0.0, 0.0, 0.0, None)

    @classmethod
    def build(
        cls,
        half_spread: np.ndarray,
        sigma: np.ndarray,
        dollar_volume: np.ndarray,
        fee: float,
        impact_k: float,
        max_slippage: float,
        exp_return: np.ndarray | None = None,
        signal: str | None = None,
        lots: np.ndarray | None = None,
        min_order_fraction: float = 0.0,
    ) -> CostInputs:
        t, n = half_spread.shape
        pack = np.empty((t, 4, n))
        pack[:, C_RETURN] = np.nan if exp_return is None else exp_return
        pack[:, C_HALF] = half_spread
        pack[:, C_SIGMA] = sigma
        pack[:, C_DVOL] = dollar_volume
        pack.flags.writeable = False
        sig = signal if exp_return is not None else None
        table = None if lots is None else np.ascontiguousarray(lots, dtype=np.float64)
        return cls(pack, float(fee), float(impact_k), float(max_slippage), sig, table, float(min_order_fraction))


def signal_channel(names: Sequence[str], horizon: int) -> int | None:
    """Index of the expected-return channel at ``horizon`` hours (the meta-learner's first)."""
    suffix = f"_h{int(horizon)}_exp_return"
    for preferred in (f"meta{suffix}",):
        if preferred in names:
            return list(names).index(preferred)
    for k, name in enumerate(names):
        if name.endswith(suffix):
            return k
    return None


def cost_inputs_from_env(base: Any, horizon: int) -> CostInputs:
    """`CostInputs` of a KrakenSpot env: its cost arrays, taker fee and signal (if any).

    With Kraken's tiered fees the base tier's taker rate is used (the highest: the gate
    never assumes a discount the account may not have). An env without the KrakenSpot
    internals (``core``, ``config``) gets no cost inputs: the gate uses the band.
    """
    core, cfg = getattr(base, "core", None), getattr(base, "config", None)
    if core is None or cfg is None:
        return CostInputs.none(base.market.n_bars, base.market.n_assets)
    arrays = core.arrays
    fee = float(core.ledger.fee_table[2, 0])  # the fee model's base-tier taker rate (flat: its one row)
    exp_return, name = None, None
    if core.signals is not None:
        k = signal_channel(core.signal_names, horizon)
        if k is not None:
            sig = np.asarray(core.signals, dtype=np.float64)
            exp_return = np.where(sig[:, :, -1] > 0.5, sig[:, :, k], np.nan)
            name = core.signal_names[k]
    rules = core.rules
    lots = np.stack([rules.scale, rules.ordermin, rules.costmin])
    return CostInputs.build(
        arrays.half_spread, arrays.sigma, arrays.dollar_volume, fee, cfg.impact_k, cfg.max_slippage, exp_return, name,
        lots, cfg.min_order_fraction,
    )


def min_order_units(lots: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """(N,) smallest sell the exchange accepts at ``prices``, plus two lots of margin for the env's floor."""
    return np.maximum(lots[1], lots[2] / prices) + 2.0 / lots[0]


def dust(lots: np.ndarray, units: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """(N,) held positions too small to sell at all (below ordermin or costmin): they cannot trade."""
    return (units > 0.0) & ((units < lots[1]) | (units * prices < lots[2]))


def round_trip_cost(row: np.ndarray, change: np.ndarray, equity: float, params: np.ndarray) -> np.ndarray:
    """(N,) round-trip cost rate of changing each weight by ``change`` (numpy reference of the kernel)."""
    notional = np.abs(change) * equity
    rate = slippage_rate(row[C_HALF], row[C_SIGMA], notional, row[C_DVOL], params[1], params[2])
    return 2.0 * (params[0] + rate)
