"""Seeded synthetic crypto market: the built-in default data and the test bed for edges.

Model (hourly, per bar t, assets i; every random draw from ``np.random.default_rng(seed)``):

1. **Regime chain.** A market-wide hidden Markov chain ``s_t`` over ``REGIME_NAMES``
   (0 trend, 1 range, 2 high_vol, 3 crash). The chain stays with probability
   ``1 - 1/D_s`` where ``D_s`` is the regime's expected duration in hours
   (trend 240, range 240, high_vol 96, crash 24, all times ``regime_persistence``;
   long-run occupancy about 36 / 42 / 19 / 2.5 %) and
   otherwise jumps by a fixed row of ``_JUMP``. Labels go to ``MarketData.regimes`` (int8).
   Per regime: factor drift ``mu_s`` (log-return per hour: trend +0.00025, range 0,
   high_vol 0, crash -0.003) and volatility multipliers (factor 0.8 / 0.65 / 1.8 / 2.6,
   idiosyncratic 0.9 / 0.8 / 1.6 / 2.0). Range has no price mean-reversion term: that
   would be a predictable component in the null market.
2. **Volatility clustering.** GARCH(1,1) on the standardised shocks of the factor and of
   every asset's idiosyncratic part: ``h_t = (1 - a - b) + a e_{t-1}^2 + b h_{t-1}``
   (``garch_alpha`` a, ``garch_beta`` b; unconditional mean 1), run with
   ``scipy.signal.lfilter`` over time, vectorised over assets.
3. **Fat tails.** Shocks ``e`` are Student-t with ``tail_dof`` degrees of freedom,
   rescaled to unit variance and clipped at +-10 sd.
4. **BTC-led factor.** Factor return ``f_t = mu_s + 0.0055 m_s sqrt(h_t) e_t``; asset
   return ``r_it = beta_i f_t + v_i m'_s sqrt(h_it) e_it (+ edge)``. BTC is the factor
   asset (beta 1, small idiosyncratic vol); the other betas are 1.0-1.45 (``_PROFILES``).
5. **Planted edge** (only when ``edge_strength != 0``). Signal observable at the close of
   bar t: the asset's own 4-hour log momentum ``M_it = log(close_it / close_i,t-4)``,
   standardised as ``z_it = clip(M_it / (2 v_i), -3, 3)`` where ``v_i`` is the asset's
   long-run hourly vol (``2 v_i`` = vol of a 4h return). Each of the next
   ``edge_horizon`` hours carries ``k * edge_strength * sigma_i,t+h * z_it / edge_horizon``
   (``k = EDGE_SCALE``, ``sigma`` the bar's conditional vol), i.e. bar t+1's return gets
   ``k * edge_strength * sigma * mean(z_i,t-H+1..t)``. The momentum is computed from
   the generated prices, edge included, so what a causal feature sees is exactly the
   signal. ``edge_strength = 1`` gives a next-hour up/down AUC of about 0.57 for a
   logistic fit on ``M`` (see tests/data/test_data_synthetic.py). With
   ``edge_strength = 0`` the innovations are the same draws and no edge term exists:
   apart from volatility clustering, the only conditional-mean variation is the
   latent regime drift (small next to the hourly vol).
6. **Bars.** ``open_t = close_{t-1} * exp(g)`` with a tiny gap ``g ~ N(0, (0.02 sigma)^2)``;
   high/low extend past ``max/min(open, close)`` by ``0.5 sigma Exp(1)`` each; prices are
   ``exp`` of a log path, hence always positive.
7. **Volume / trades / spread.** Dollar volume per hour is the asset's base level times
   ``exp(0.45 min(|r|/sigma_bar, 6))`` (tied to absolute returns), a regime factor (1, 0.8, 1.6,
   2.4), an hour-of-day cycle and log-normal noise; ``volume = dollars / close``
   (base units); ``trades ~ Poisson(dollars / avg trade size)``. The relative spread is
   ``s_i (sigma_t / v_i)^0.8 exp(0.15 n)`` floored at one tick / price: it widens with
   volatility.

Generation of 12 assets x 8760 bars takes well under a second (see the test's printout).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from scipy.signal import lfilter

from envs.data.market import HOUR, MarketData, PairInfo
from envs.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_UNIVERSE: tuple[str, ...] = (
    "BTC", "ETH", "SOL", "ADA", "XRP", "DOT", "LINK", "LTC", "BCH", "ATOM", "AVAX", "XLM",
)
REGIME_NAMES: tuple[str, ...] = ("trend", "range", "high_vol", "crash")
EDGE_SCALE = 0.12  # k in the module docstring: edge_strength=1 -> AUC ~0.57
MOMENTUM_BARS = 4  # the planted signal's look-back (hours)

_DURATION_H = np.array([240.0, 240.0, 96.0, 24.0])
# Where the chain goes when it leaves a regime (rows: from, columns: to; diagonal 0).
_JUMP = np.array([
    [0.00, 0.50, 0.40, 0.10],
    [0.45, 0.00, 0.45, 0.10],
    [0.30, 0.35, 0.00, 0.35],
    [0.10, 0.30, 0.60, 0.00],
])
_DRIFT = np.array([0.00025, 0.0, 0.0, -0.003])
_FACTOR_VOL_MULT = np.array([0.8, 0.65, 1.8, 2.6])
_IDIO_VOL_MULT = np.array([0.9, 0.8, 1.6, 2.0])
_VOLUME_MULT = np.array([1.0, 0.8, 1.6, 2.4])
_FACTOR_VOL = 0.0055  # hourly factor (BTC) vol at multiplier 1
_SHOCK_CAP = 10.0  # standardised shocks are clipped at +-10 sd (no 50-sigma hours)
_VOLUME_Z_CAP = 6.0  # |r| / vol above this adds no further volume


@dataclass(frozen=True)
class _Profile:
    """Per-asset constants: start price, factor beta, idiosyncratic hourly vol,
    daily USD volume, base relative spread, average trade size (USD), price tick."""

    price: float
    beta: float
    idio_vol: float
    daily_usd: float
    spread: float
    trade_usd: float
    tick: float


_PROFILES: dict[str, _Profile] = {
    "BTC": _Profile(40000.0, 1.00, 0.0012, 150e6, 0.00010, 2500.0, 0.1),
    "ETH": _Profile(3000.0, 1.10, 0.0030, 60e6, 0.00015, 1800.0, 0.01),
    "SOL": _Profile(100.0, 1.40, 0.0060, 20e6, 0.00030, 1000.0, 0.01),
    "ADA": _Profile(1.2, 1.20, 0.0050, 5e6, 0.00050, 600.0, 0.000001),
    "XRP": _Profile(0.8, 1.10, 0.0050, 15e6, 0.00040, 800.0, 0.00001),
    "DOT": _Profile(20.0, 1.25, 0.0055, 3e6, 0.00070, 500.0, 0.0001),
    "LINK": _Profile(18.0, 1.30, 0.0055, 4e6, 0.00060, 500.0, 0.00001),
    "LTC": _Profile(130.0, 1.00, 0.0040, 4e6, 0.00050, 600.0, 0.01),
    "BCH": _Profile(350.0, 1.05, 0.0045, 2e6, 0.00070, 500.0, 0.01),
    "ATOM": _Profile(25.0, 1.30, 0.0060, 1.5e6, 0.00090, 400.0, 0.0001),
    "AVAX": _Profile(80.0, 1.45, 0.0065, 3e6, 0.00080, 500.0, 0.01),
    "XLM": _Profile(0.2, 1.00, 0.0050, 1.5e6, 0.00080, 400.0, 0.000001),
}
_DEFAULT_PROFILE = _Profile(10.0, 1.2, 0.0060, 1e6, 0.0010, 400.0, 0.0001)


def _parse_start(start: str | int) -> int:
    if isinstance(start, (int, np.integer)) and not isinstance(start, bool):
        ts = int(start)
    elif isinstance(start, str):
        try:
            dt = datetime.fromisoformat(start.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(f"start: expected an ISO-8601 UTC time or Unix seconds, got {start!r}") from exc
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        ts = int(dt.timestamp())
    else:
        raise ConfigError(f"start: expected an ISO-8601 string or Unix seconds, got {start!r}")
    if ts % HOUR:
        raise ConfigError(f"start: expected a time on the hour, got {start!r} ({ts} s)")
    return ts


def _check_args(assets: Sequence[str], n_bars: int, edge_horizon: int, regime_persistence: float,
                tail_dof: float, garch_alpha: float, garch_beta: float, edge_strength: float) -> None:
    if len(assets) == 0 or len(set(assets)) != len(assets):
        raise ConfigError(f"assets: expected a non-empty list of distinct tickers, got {list(assets)}")
    if int(n_bars) < 2:
        raise ConfigError(f"n_bars: expected >= 2, got {n_bars}")
    if int(edge_horizon) < 1:
        raise ConfigError(f"edge_horizon: expected >= 1, got {edge_horizon}")
    if not regime_persistence > 0:
        raise ConfigError(f"regime_persistence: expected > 0, got {regime_persistence}")
    if not tail_dof > 2:
        raise ConfigError(f"tail_dof: expected > 2 (finite variance), got {tail_dof}")
    if not (garch_alpha >= 0 and garch_beta >= 0 and garch_alpha + garch_beta < 1):
        raise ConfigError(
            f"garch_alpha, garch_beta: expected >= 0 with sum < 1, got {garch_alpha}, {garch_beta}"
        )
    if not np.isfinite(edge_strength):
        raise ConfigError(f"edge_strength: expected a finite number, got {edge_strength}")


def _regime_chain(rng: np.random.Generator, n: int, persistence: float) -> np.ndarray:
    stay = 1.0 - 1.0 / (_DURATION_H * persistence)
    cum_jump = np.cumsum(_JUMP, axis=1)
    u_stay = rng.random(n)
    u_jump = rng.random(n)
    out = np.empty(n, dtype=np.int8)
    s = int(rng.choice(4, p=[0.36, 0.42, 0.195, 0.025]))
    for t in range(n):
        if t and u_stay[t] >= stay[s]:
            s = int(np.searchsorted(cum_jump[s], u_jump[t], side="right"))
            s = min(s, 3)
        out[t] = s
    return out


def _garch(e: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Conditional variance multipliers h (mean 1) for shocks ``e`` (T, K)."""
    x = np.empty_like(e)
    x[0] = 1.0 - beta  # makes h_0 = 1 with the initial state below
    x[1:] = (1.0 - alpha - beta) + alpha * e[:-1] ** 2
    zi = np.full((1, e.shape[1]), beta * 1.0)
    h, _ = lfilter([1.0], [1.0, -beta], x, axis=0, zi=zi)
    return np.asarray(h)


def _plant_edge(base: np.ndarray, sigma: np.ndarray, idio_vol: np.ndarray, coef: float,
                horizon: int) -> np.ndarray:
    """Add ``coef * sigma_t * mean(z_{t-H..t-1})`` to returns, z from realised 4h momentum."""
    n, _ = base.shape
    r = base.copy()
    z_hist = np.zeros((horizon, base.shape[1]))
    mom = np.zeros(base.shape[1])
    scale = 1.0 / (np.sqrt(MOMENTUM_BARS) * idio_vol)
    for t in range(1, n):
        r[t] += coef * sigma[t] * z_hist.mean(axis=0)
        mom += r[t]
        if t > MOMENTUM_BARS:
            mom -= r[t - MOMENTUM_BARS]
        z = np.clip(mom * scale, -3.0, 3.0) if t >= MOMENTUM_BARS else np.zeros_like(mom)
        z_hist[t % horizon] = z
    return r


def generate_synthetic_market(
    assets: Sequence[str] = DEFAULT_UNIVERSE,
    n_bars: int = 8760,
    start: str | int = "2022-01-01T00:00:00Z",
    seed: int = 7,
    edge_strength: float = 0.0,
    edge_horizon: int = 1,
    regime_persistence: float = 1.0,
    tail_dof: float = 4.0,
    garch_alpha: float = 0.06,
    garch_beta: float = 0.90,
    end: str | None = None,
    drift_scale: float = 1.0,
) -> MarketData:
    """A deterministic synthetic market (see the module docstring for the model).

    Args:
        assets: tickers; known ones (the default universe) get realistic price levels,
            betas, volumes and spreads, others a generic alt-coin profile.
        n_bars: number of hourly bars.
        start: first bar's start, ISO-8601 UTC (``"2022-01-01T00:00:00Z"``) or Unix seconds;
            must be on the hour.
        seed: seed of the only RNG used (``np.random.default_rng``); same seed -> same bits.
        edge_strength: size of the planted momentum edge (0 = null market, 1 ~ AUC 0.57;
            a negative value plants a reversal instead).
        edge_horizon: hours over which each signal value is spread (bar t+1 uses the
            mean of the last ``edge_horizon`` signals).
        regime_persistence: multiplies every regime's expected duration.
        tail_dof: Student-t degrees of freedom of the shocks (> 2; lower = fatter tails).
        garch_alpha: GARCH(1,1) reaction to the last shock (``garch_alpha + garch_beta < 1``).
        garch_beta: GARCH(1,1) persistence of the variance.
        end: ISO-8601 UTC: keep only the bars starting at or before it. The market is
            generated in full (``n_bars``) first, so a market cut at ``end`` is exactly the
            prefix of the uncut one: a training run (``data.end``) and a later evaluation
            (a later ``data.end``) see the same history.
        drift_scale: multiplies the regimes' factor drifts (1 = the model above). With
            ``drift_scale=0`` and ``edge_strength=0`` no conditional mean is left: log
            prices are martingales with volatility clustering, the null market on which a
            pipeline must not report an edge (the same random draws, so only the drift
            term differs from the default market).
    """
    assets = tuple(str(a) for a in assets)
    _check_args(assets, n_bars, edge_horizon, regime_persistence, tail_dof, garch_alpha, garch_beta,
                edge_strength)
    n, k = int(n_bars), len(assets)
    t0 = _parse_start(start)
    rng = np.random.default_rng(seed)
    prof = [_PROFILES.get(a.upper(), _DEFAULT_PROFILE) for a in assets]
    beta = np.array([p.beta for p in prof])
    idio = np.array([p.idio_vol for p in prof])

    regimes = _regime_chain(rng, n, float(regime_persistence))
    shocks = rng.standard_t(tail_dof, size=(n, k + 1)) * np.sqrt((tail_dof - 2.0) / tail_dof)
    shocks = np.clip(shocks, -_SHOCK_CAP, _SHOCK_CAP)
    h = _garch(shocks, garch_alpha, garch_beta)

    sig_f = _FACTOR_VOL * _FACTOR_VOL_MULT[regimes] * np.sqrt(h[:, 0])
    if not (np.isfinite(drift_scale) and drift_scale >= 0.0):
        raise ConfigError(f"drift_scale: expected a finite number >= 0, got {drift_scale}")
    factor = float(drift_scale) * _DRIFT[regimes] + sig_f * shocks[:, 0]
    sig_i = idio[None, :] * _IDIO_VOL_MULT[regimes][:, None] * np.sqrt(h[:, 1:])
    sigma = np.sqrt((beta[None, :] * sig_f[:, None]) ** 2 + sig_i**2)  # conditional vol per bar
    ret = beta[None, :] * factor[:, None] + sig_i * shocks[:, 1:]
    long_run_vol = np.sqrt((beta * _FACTOR_VOL) ** 2 + idio**2)
    if edge_strength != 0.0:
        ret = _plant_edge(ret, sigma, long_run_vol, EDGE_SCALE * float(edge_strength), int(edge_horizon))
    ret[0] = 0.0

    # Prices: log path from realistic levels; open = previous close with a tiny gap.
    start_px = np.array([p.price for p in prof])
    log_close = np.log(start_px)[None, :] + np.cumsum(ret, axis=0)
    gap = rng.normal(0.0, 1.0, size=(n, k)) * 0.02 * sigma
    log_open = np.vstack([np.log(start_px)[None, :], log_close[:-1]]) + gap
    ext = rng.exponential(1.0, size=(2, n, k)) * 0.5 * sigma[None]
    close = np.exp(log_close)
    open_ = np.exp(log_open)
    high = np.exp(np.maximum(log_open, log_close) + ext[0])
    low = np.exp(np.minimum(log_open, log_close) - ext[1])

    # Volume tied to |return|, regime and hour of day; trades ~ Poisson(dollars / ticket).
    timestamps = t0 + HOUR * np.arange(n, dtype=np.int64)
    hour = (timestamps // HOUR) % 24
    intraday = 1.0 + 0.35 * np.sin(2.0 * np.pi * (hour - 8) / 24.0)
    abs_z = np.abs(ret) / long_run_vol[None, :]
    noise = rng.normal(0.0, 0.35, size=(n, k))
    daily_usd = np.array([p.daily_usd for p in prof])
    activity = np.exp(0.45 * np.minimum(abs_z, _VOLUME_Z_CAP) - 0.36 + noise - 0.06)
    dollars = (daily_usd / 24.0)[None, :] * activity * _VOLUME_MULT[regimes][:, None] * intraday[:, None]
    volume = dollars / close
    ticket = np.array([p.trade_usd for p in prof])
    trades = np.maximum(rng.poisson(dollars / ticket[None, :]), 1).astype(np.float64)

    # Relative spread widens with conditional vol; never below one tick.
    base_spread = np.array([p.spread for p in prof])
    tick = np.array([p.tick for p in prof])
    spread = base_spread[None, :] * (sigma / long_run_vol[None, :]) ** 0.8 \
        * np.exp(0.15 * rng.normal(size=(n, k)))
    spread = np.maximum(spread, tick[None, :] / close)

    pairs = _pairs_for(assets)
    market = MarketData(
        assets=assets,
        timestamps=timestamps,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        tradable=np.ones((n, k), dtype=bool),
        filled=np.zeros((n, k), dtype=bool),
        trades=trades,
        spread=spread,
        regimes=regimes,
        pairs=pairs,
        source=f"synthetic(seed={seed}, edge_strength={edge_strength}, edge_horizon={edge_horizon})",
    )
    if end is None:
        return market
    import pandas as pd

    stamp = pd.Timestamp(end)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    cut = market.between(None, int(stamp.timestamp()))
    if cut.n_bars < 2:
        raise ConfigError(f"end: {end} leaves {cut.n_bars} bars of the synthetic market (it starts {start})")
    return cut


def _pairs_for(assets: Sequence[str]) -> dict[str, PairInfo]:
    """Kraken rules for the assets that have a USD pair in the metadata file."""
    from envs.data.pairs import load_pairs  # local import keeps module import cheap

    known = load_pairs()
    missing = [a for a in assets if a not in known]
    if missing:
        logger.info("synthetic market: no Kraken pair metadata for %s", missing)
    return {a: known[a] for a in assets if a in known}
