"""Performance statistics of a return series: plain functions on numpy arrays.

Units and conventions (the same for every function here):

- ``returns`` are **per-period simple returns** ``E_t / E_{t-1} - 1`` (one per env step:
  hourly for the KrakenSpot env), as a 1-D array of finite floats, each ``>= -1``.
- A statistic is **per period** unless its name or a ``periods_per_year`` argument says
  otherwise. Hourly crypto trades around the clock: it annualises with
  ``HOURS_PER_YEAR = 365 * 24 = 8760`` periods. ``sharpe_ratio(r)`` is per hour,
  ``sharpe_ratio(r, HOURS_PER_YEAR)`` is annualised (x sqrt(8760)).
- No risk-free rate (crypto cash earns nothing in the env): Sharpe and Sortino use the raw
  returns. Standard deviations are sample ones (``ddof=1``); the Sortino downside
  deviation averages over *all* periods (Sortino & Price 1994), as empyrical does.
- Compounding is geometric: ``total_return = prod(1 + r) - 1``,
  ``cagr = (1 + total_return) ** (periods_per_year / n) - 1``.
- Drawdowns are positive fractions of the running peak, the initial equity (1) counting
  as a peak: a first-period loss of 5 % is a 0.05 drawdown.
- ``kurtosis`` is the **raw** fourth standardised moment (3 for a normal), not the excess.

Bad input raises ``ValueError`` naming the argument and the problem: empty input, NaN or
inf, a return below -1, wrong dimensions. Where a statistic is mathematically undefined
for valid input it returns NaN (documented per function): a Sharpe ratio of a series with
zero variance or a single observation, a Calmar ratio without a drawdown. `json_safe`
turns NaN/inf into ``None`` for ``metrics.json``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

HOURS_PER_YEAR = 365 * 24  # 8760: crypto trades every hour of every day
EULER_GAMMA = 0.5772156649015329  # Euler–Mascheroni constant (expected maximum of N normals)
DEFAULT_BLOCK = 24  # mean block length (hours) of the stationary bootstrap: one day


# ------------------------------------------------------------------ validation
def as_values(values: Any, name: str, *, allow_empty: bool = False, what: str = "values") -> np.ndarray:
    """``values`` as a 1-D float64 array of finite numbers: ValueError naming what is wrong."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected numeric {what}, got {type(values).__name__}") from None
    if arr.ndim != 1:
        got = "a scalar" if arr.ndim == 0 else f"shape {arr.shape}"
        raise ValueError(f"{name}: expected a 1-D array of {what}, got {got}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name}: expected at least one value, got an empty array")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.argmax(bad))
        kind = "NaN" if np.isnan(arr[first]) else "inf"
        raise ValueError(
            f"{name}: expected finite {what}, got {int(bad.sum())} NaN/inf value(s) (first: {kind} at index {first})"
        )
    return arr


def as_returns(returns: Any, name: str = "returns", *, allow_empty: bool = False) -> np.ndarray:
    """``returns`` as a 1-D float64 array, checked: ValueError naming what is wrong.

    Rejects: non-numeric values, more than one dimension, an empty array (unless
    ``allow_empty``), NaN or inf (with their count and first position) and simple
    returns below -1 (a long-only account cannot lose more than everything).
    """
    arr = as_values(returns, name, allow_empty=allow_empty, what="per-period returns")
    below = arr < -1.0
    if below.any():
        first = int(np.argmax(below))
        raise ValueError(f"{name}: expected simple returns >= -1, got {float(arr[first])!r} at index {first}")
    return arr


def _ppy(periods_per_year: float | None) -> float | None:
    if periods_per_year is None:
        return None
    ppy = float(periods_per_year)
    if not (math.isfinite(ppy) and ppy > 0):
        raise ValueError(
            f"periods_per_year: expected a positive number (8760 for hourly crypto), got {periods_per_year!r}"
        )
    return ppy


def _finite(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return v


def _constant(arr: np.ndarray) -> bool:
    return bool(np.all(arr == arr[0]))


# ------------------------------------------------------------------ returns and risk
def total_return(returns: Any) -> float:
    """Compounded return over the whole series, ``prod(1 + r) - 1``."""
    r = as_returns(returns)
    return float(np.prod(1.0 + r) - 1.0)


def equity_curve(returns: Any, initial: float = 1.0) -> np.ndarray:
    """(n + 1,) equity path starting at ``initial``: ``initial * cumprod(1 + r)``."""
    r = as_returns(returns, allow_empty=True)
    return np.concatenate([[float(initial)], float(initial) * np.cumprod(1.0 + r)])


def drawdown_series(returns: Any) -> np.ndarray:
    """(n,) drawdown after each period: ``1 - E_t / max(E_0..E_t)``, with ``E_0 = 1`` a peak."""
    eq = equity_curve(as_returns(returns))
    peak = np.maximum.accumulate(eq)
    return (1.0 - eq / peak)[1:]


def max_drawdown(returns: Any) -> float:
    """Largest peak-to-trough loss as a positive fraction (0.2 = 20 %); 0 for a rising series."""
    return float(np.max(drawdown_series(returns)))


def cagr(returns: Any, periods_per_year: float = HOURS_PER_YEAR) -> float:
    """Compound annual growth rate: ``(1 + total_return) ** (periods_per_year / n) - 1``.

    A series shorter than a year is extrapolated geometrically, as empyrical does.
    """
    r = as_returns(returns)
    ppy = _ppy(periods_per_year)
    assert ppy is not None
    growth = float(np.prod(1.0 + r))
    return float(growth ** (ppy / r.size) - 1.0)


def annualised_volatility(returns: Any, periods_per_year: float = HOURS_PER_YEAR) -> float:
    """Sample standard deviation (ddof=1) x sqrt(periods_per_year); NaN for one observation."""
    r = as_returns(returns)
    ppy = _ppy(periods_per_year)
    assert ppy is not None
    if r.size < 2:
        return math.nan
    return float(np.std(r, ddof=1) * math.sqrt(ppy))


def sharpe_ratio(returns: Any, periods_per_year: float | None = None) -> float:
    """Mean / sample standard deviation (ddof=1), no risk-free rate.

    Per period when ``periods_per_year`` is None; annualised (x sqrt(periods_per_year))
    otherwise. NaN when undefined: one observation, or zero variance (e.g. all cash).
    """
    r = as_returns(returns)
    ppy = _ppy(periods_per_year)
    if r.size < 2 or _constant(r):
        return math.nan
    sr = float(np.mean(r) / np.std(r, ddof=1))
    return sr * math.sqrt(ppy) if ppy is not None else sr


def downside_deviation(returns: Any, target: float = 0.0) -> float:
    """``sqrt(mean(min(r - target, 0) ** 2))`` over all periods (per period)."""
    r = as_returns(returns)
    d = np.minimum(r - _finite("target", target), 0.0)
    return float(np.sqrt(np.mean(d * d)))


def sortino_ratio(returns: Any, periods_per_year: float | None = None, target: float = 0.0) -> float:
    """Mean excess over ``target`` / downside deviation (Sortino & Price 1994).

    Per period when ``periods_per_year`` is None, else annualised x sqrt(periods_per_year).
    Without any period below ``target`` the ratio is +inf if the mean excess is positive
    and NaN if it is zero (e.g. all cash), as in empyrical.
    """
    r = as_returns(returns)
    ppy = _ppy(periods_per_year)
    excess = float(np.mean(r - _finite("target", target)))
    dd = downside_deviation(r, target)
    if dd == 0.0:
        return math.inf if excess > 0 else math.nan
    ratio = excess / dd
    return ratio * math.sqrt(ppy) if ppy is not None else ratio


def calmar_ratio(returns: Any, periods_per_year: float = HOURS_PER_YEAR) -> float:
    """CAGR / max drawdown (both over the whole series); NaN without a drawdown."""
    mdd = max_drawdown(returns)
    if mdd == 0.0:
        return math.nan
    return cagr(returns, periods_per_year) / mdd


def _months(timestamps: Any, n: int) -> np.ndarray:
    """Calendar month (UTC) of each timestamp: Unix seconds, datetime64, or pandas datetimes."""
    ts = np.asarray(timestamps)
    if ts.ndim != 1 or ts.size != n:
        raise ValueError(f"timestamps: expected a 1-D array of {n} timestamps (one per return), got shape {ts.shape}")
    if ts.dtype.kind in "iuf":
        if not np.all(np.isfinite(ts)):
            raise ValueError("timestamps: expected finite Unix seconds, got NaN/inf")
        secs = ts.astype(np.int64).astype("datetime64[s]")
    elif ts.dtype.kind == "M":
        secs = ts.astype("datetime64[s]")
    else:  # timezone-aware pandas datetimes arrive as objects
        import pandas as pd

        try:
            secs = pd.to_datetime(pd.Series(ts), utc=True).dt.tz_localize(None).to_numpy("datetime64[s]")
        except (TypeError, ValueError):
            raise ValueError(f"timestamps: expected Unix seconds or datetimes, got dtype {ts.dtype}") from None
    if np.isnat(secs).any():
        raise ValueError("timestamps: expected no missing (NaT) timestamps")
    if secs.size > 1 and np.any(np.diff(secs.astype(np.int64)) <= 0):
        raise ValueError("timestamps: expected strictly increasing timestamps")
    return secs.astype("datetime64[M]")


def max_monthly_drawdown(returns: Any, timestamps: Any) -> float:
    """Largest drawdown *inside* one calendar month (UTC), as a positive fraction.

    The peak restarts at each month: the equity just before the month's first return
    is that month's first peak, so a loss carried in from an earlier month does not
    count. ``timestamps[i]`` dates return ``i`` (Unix seconds or datetimes; for the env,
    ``info["timestamp"]`` of the step, the bar at whose close the return is marked).
    """
    r = as_returns(returns)
    months = _months(timestamps, r.size)
    starts = np.flatnonzero(np.concatenate([[True], months[1:] != months[:-1]]))
    ends = np.concatenate([starts[1:], [r.size]])
    return max(max_drawdown(r[a:b]) for a, b in zip(starts, ends, strict=True))


def turnover(step_turnover: Any, periods_per_year: float | None = None) -> float:
    """Traded notional in multiples of equity: the sum over the period, or annualised.

    ``step_turnover`` is the env's per-step ``info["turnover"]`` (traded notional / equity).
    With ``periods_per_year`` the mean per step x periods_per_year (a yearly rate).
    """
    tv = as_returns(step_turnover, "step_turnover")
    if np.any(tv < 0):
        raise ValueError(f"step_turnover: expected values >= 0, got {float(tv.min())!r}")
    ppy = _ppy(periods_per_year)
    return float(np.mean(tv) * ppy) if ppy is not None else float(np.sum(tv))


def win_rate(returns: Any) -> float:
    """Share of winning outcomes among non-zero ones (flat periods are not bets).

    Works on per-period returns or on per-trade P&L alike. NaN when every value is 0.
    """
    r = as_values(returns, "returns", what="returns or trade P&L")
    active = r[r != 0.0]
    return float(np.mean(active > 0)) if active.size else math.nan


def profit_factor(returns: Any) -> float:
    """Sum of gains / |sum of losses|; +inf with gains and no losses, NaN with neither."""
    r = as_values(returns, "returns", what="returns or trade P&L")
    gains, losses = float(r[r > 0].sum()), float(-r[r < 0].sum())
    if losses == 0.0:
        return math.inf if gains > 0 else math.nan
    return gains / losses


# ------------------------------------------------------------------ significance of a Sharpe ratio
def return_moments(returns: Any) -> tuple[float, int, float, float]:
    """``(per-period Sharpe, n, skewness, raw kurtosis)`` of a series, as PSR/DSR take them.

    Skewness and kurtosis are the population (biased) standardised moments, as in
    Bailey & López de Prado; kurtosis is raw (3 for a normal). NaN moments for a
    constant series.
    """
    r = as_returns(returns)
    if r.size < 2 or _constant(r):
        return math.nan, int(r.size), math.nan, math.nan
    skew = float(stats.skew(r, bias=True))
    kurt = float(stats.kurtosis(r, fisher=False, bias=True))
    return sharpe_ratio(r), int(r.size), skew, kurt


def _check_moments(n_obs: int, skew: float, kurtosis: float) -> tuple[int, float, float]:
    if isinstance(n_obs, bool) or int(n_obs) != n_obs or n_obs < 2:
        raise ValueError(f"n_obs: expected an integer number of returns >= 2, got {n_obs!r}")
    g3 = _finite("skew", skew)
    g4 = _finite("kurtosis", kurtosis)
    # Pearson's inequality: kurt >= 1 + skew^2 for every distribution (and every sample)
    if g4 < 1.0 + g3 * g3 - 1e-12:
        raise ValueError(
            f"kurtosis: expected the raw fourth standardised moment (3 for a normal) >= 1 + skew^2 = "
            f"{1.0 + g3 * g3:.6g}, got {kurtosis!r} (pass raw kurtosis, not excess kurtosis)"
        )
    return int(n_obs), g3, g4


def sharpe_std_error(sr: float, n_obs: int, skew: float, kurtosis: float) -> float:
    """Standard error of a per-period Sharpe estimate under non-normal returns (Mertens 2002).

    ``sqrt((1 - skew * SR + (kurtosis - 1) / 4 * SR^2) / (n_obs - 1))``.
    """
    n, g3, g4 = _check_moments(n_obs, skew, kurtosis)
    s = _finite("sr", sr)
    var = 1.0 - g3 * s + (g4 - 1.0) / 4.0 * s * s
    return math.sqrt(max(var, 0.0) / (n - 1))


def probabilistic_sharpe_ratio(
    sr: float, n_obs: int, skew: float, kurtosis: float, sr_benchmark: float = 0.0
) -> float:
    """Probability that the true Sharpe exceeds ``sr_benchmark`` (Bailey & López de Prado 2012).

    ``PSR = Φ((SR - SR*) sqrt(n - 1) / sqrt(1 - γ3 SR + (γ4 - 1) / 4 SR^2))`` with ``SR``
    and ``SR*`` **per period** (not annualised), ``γ3`` the skewness and ``γ4`` the raw
    kurtosis of the returns. Increasing in ``sr`` wherever ``1 - γ3 (SR + SR*) / 2 + (γ4 - 1) / 4
    SR* SR > 0`` (every realistic per-period case); for ``sr > sr_benchmark`` increasing in
    ``n_obs``. NaN for ``sr`` NaN (an undefined Sharpe ratio).
    """
    if isinstance(sr, float | np.floating) and math.isnan(sr):
        return math.nan  # an undefined Sharpe ratio (zero variance) has no probability
    n, g3, g4 = _check_moments(n_obs, skew, kurtosis)
    s, b = _finite("sr", sr), _finite("sr_benchmark", sr_benchmark)
    var = 1.0 - g3 * s + (g4 - 1.0) / 4.0 * s * s  # >= (1 - γ3 s / 2)^2 >= 0 by Pearson
    if var <= 0.0:
        return math.nan  # degenerate two-point distribution at exactly this SR
    z = (s - b) * math.sqrt(n - 1) / math.sqrt(var)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """Expected maximum of ``n_trials`` zero-mean Sharpe estimates (Bailey & López de Prado 2014).

    ``sqrt(V) ((1 - γ) Φ^-1(1 - 1/N) + γ Φ^-1(1 - 1/(N e)))``, γ the Euler–Mascheroni
    constant, V the variance of the trials' Sharpe ratios (per period). 0 for one trial.
    """
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials: expected an integer number of trials >= 1, got {n_trials!r}")
    v = _finite("sr_variance", sr_variance)
    if v < 0:
        raise ValueError(f"sr_variance: expected a variance >= 0, got {sr_variance!r}")
    n = int(n_trials)
    if n == 1:
        return 0.0
    z1 = stats.norm.ppf(1.0 - 1.0 / n)
    z2 = stats.norm.ppf(1.0 - 1.0 / (n * math.e))
    return float(math.sqrt(v) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2))


def deflated_sharpe_ratio(
    sr: float, n_obs: int, skew: float, kurtosis: float, n_trials: int, sr_variance: float
) -> float:
    """PSR against the Sharpe ratio expected from the best of ``n_trials`` unskilled trials.

    Bailey & López de Prado (2014): ``DSR = PSR(SR0)`` with ``SR0 = expected_max_sharpe(
    n_trials, sr_variance)``. Everything per period: ``sr`` and ``sr_variance`` (the
    variance across the trials' per-period Sharpe ratios). With one trial SR0 = 0 and the
    DSR is the PSR against 0.
    """
    sr0 = expected_max_sharpe(n_trials, sr_variance)
    return probabilistic_sharpe_ratio(sr, n_obs, skew, kurtosis, sr_benchmark=sr0)


# ------------------------------------------------------------------ bootstrap
@dataclass(frozen=True)
class BootstrapCI:
    """A percentile confidence interval of the Sharpe ratio from a stationary bootstrap."""

    point: float  # Sharpe ratio of the original series (same units as low/high)
    low: float
    high: float
    alpha: float
    block: float  # mean block length (periods)
    n_boot: int


def stationary_bootstrap_indices(n: int, block: float, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) resampling indices of the stationary bootstrap (Politis & Romano 1994).

    Each resample is a chain of blocks: a block starts at a uniform random position and
    continues period by period (wrapping around the end) until a new block starts, which
    happens at each period with probability ``1 / block``: block lengths are geometric
    with mean ``block``. The resampled series is stationary, unlike fixed blocks.
    """
    p = 1.0 / block
    new = rng.random((n_boot, n)) < p
    new[:, 0] = True
    starts = rng.integers(0, n, size=(n_boot, n))
    pos = np.arange(n)
    block_start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)  # position where the block began
    first = np.take_along_axis(starts, block_start, axis=1)
    return (first + (pos - block_start)) % n  # type: ignore[no-any-return]


def block_bootstrap_sharpe_ci(
    returns: Any,
    block: float = DEFAULT_BLOCK,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    periods_per_year: float | None = None,
) -> BootstrapCI:
    """Percentile ``1 - alpha`` confidence interval of the Sharpe ratio, stationary bootstrap.

    Hourly returns are autocorrelated (volatility clustering, intraday cycles): an i.i.d.
    bootstrap would break that dependence and give too narrow an interval. The
    stationary bootstrap of Politis & Romano (1994) resamples blocks of random, geometric
    length (mean ``block`` periods, default 24 = one day), which keeps the dependence
    within a block and, unlike fixed-length blocks, yields a stationary resample.

    Units follow `sharpe_ratio`: per period, or annualised with ``periods_per_year``.
    Deterministic for a given ``seed``. Resamples with zero variance are dropped; NaN
    bounds when the series itself has zero variance.
    """
    r = as_returns(returns)
    if not (isinstance(n_boot, int | np.integer) and not isinstance(n_boot, bool) and n_boot >= 10):
        raise ValueError(f"n_boot: expected an integer >= 10, got {n_boot!r}")
    if not (0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha: expected 0 < alpha < 1, got {alpha!r}")
    if not (math.isfinite(float(block)) and float(block) >= 1.0):
        raise ValueError(f"block: expected a mean block length >= 1 period, got {block!r}")
    point = sharpe_ratio(r, periods_per_year)
    if math.isnan(point):
        return BootstrapCI(point, math.nan, math.nan, float(alpha), float(block), int(n_boot))
    scale = math.sqrt(_ppy(periods_per_year) or 1.0)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(int(n_boot), 2_000_000 // max(r.size, 1)))  # bounds memory at ~16 MB per array
    sharpes = np.empty(int(n_boot))
    for lo in range(0, int(n_boot), chunk):
        m = min(chunk, int(n_boot) - lo)
        sample = r[stationary_bootstrap_indices(r.size, float(block), m, rng)]
        sd = np.std(sample, axis=1, ddof=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            sharpes[lo : lo + m] = np.where(sd > 0, np.mean(sample, axis=1) / sd, np.nan) * scale
    q = np.nanquantile(sharpes, [alpha / 2.0, 1.0 - alpha / 2.0])
    return BootstrapCI(point, float(q[0]), float(q[1]), float(alpha), float(block), int(n_boot))


# ------------------------------------------------------------------ the metrics table
def summary(
    returns: Any,
    timestamps: Any,
    *,
    periods_per_year: float = HOURS_PER_YEAR,
    step_turnover: Any = None,
    fees: Any = None,
    slippage: Any = None,
    n_trades: int | None = None,
    weights: Any = None,
    interventions: Mapping[str, int] | None = None,
    trial_sharpes: Sequence[float] | None = None,
    n_trials: int | None = None,
    block: float = DEFAULT_BLOCK,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """One strategy's row of ``metrics.json``: snake_case metric name -> value.

    Every value is a number. Ratios (``sharpe``, ``sortino``, ``sharpe_ci_low/high``: a
    stationary-bootstrap interval, `block_bootstrap_sharpe_ci`) are annualised with
    ``periods_per_year``; ``sharpe_per_period`` is the raw one that ``probabilistic_sharpe``
    and ``deflated_sharpe`` use. ``turnover`` is the total over the period in multiples
    of equity, ``turnover_annualised`` the yearly rate; ``fees_paid`` and ``slippage_paid``
    are in quote currency (sums of the env's per-step ``fees`` / ``slippage``).
    ``average_exposure`` is the mean of the summed asset weights (N columns of ``weights``).

    ``trial_sharpes``: the per-period Sharpe ratios of *every* trial tried (seeds, sweep
    points), this one included; with two or more, ``deflated_sharpe`` deflates by their
    count and variance, otherwise it is NaN. ``n_trials``: the number of trials when it is
    larger than the Sharpe ratios known (a trial record counts failed trials, which have
    none; `agents.trials`); ``trial_sharpe_variance`` is the variance the DSR used.
    Interventions become ``risk_<rule>`` keys.
    Undefined values are NaN (`json_safe` writes them as null).
    """
    r = as_returns(returns)
    sr_pp, n, skew, kurt = return_moments(r)
    ci = block_bootstrap_sharpe_ci(r, block=block, n_boot=n_boot, alpha=alpha, seed=seed,
                                   periods_per_year=periods_per_year)
    psr = math.nan if math.isnan(sr_pp) else probabilistic_sharpe_ratio(sr_pp, n, skew, kurt)
    n_known = 0 if trial_sharpes is None else len(trial_sharpes)
    if n_trials is not None and (isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < n_known):
        raise ValueError(f"n_trials: expected an integer >= the {n_known} trial Sharpe ratios given, got {n_trials!r}")
    n_trials = n_known if n_trials is None else int(n_trials)
    dsr = variance = math.nan
    if n_known >= 2:
        trials = as_values(trial_sharpes, "trial_sharpes", what="per-period Sharpe ratios")
        variance = float(np.var(trials, ddof=1))
        if not math.isnan(sr_pp):
            dsr = deflated_sharpe_ratio(sr_pp, n, skew, kurt, n_trials, variance)
    out: dict[str, Any] = {
        "n_periods": int(r.size),
        "periods_per_year": float(periods_per_year),
        "total_return": total_return(r),
        "cagr": cagr(r, periods_per_year),
        "annualised_volatility": annualised_volatility(r, periods_per_year),
        "sharpe": sharpe_ratio(r, periods_per_year),
        "sharpe_per_period": sr_pp,
        "sortino": sortino_ratio(r, periods_per_year),
        "calmar": calmar_ratio(r, periods_per_year),
        "max_drawdown": max_drawdown(r),
        "max_monthly_drawdown": max_monthly_drawdown(r, timestamps),
        "win_rate": win_rate(r),
        "profit_factor": profit_factor(r),
        "skew": skew,
        "kurtosis": kurt,
        "sharpe_ci_low": ci.low,
        "sharpe_ci_high": ci.high,
        "sharpe_ci_alpha": float(alpha),
        "sharpe_ci_block": float(block),  # mean block length of the stationary bootstrap (periods)
        "sharpe_ci_n_boot": int(n_boot),
        "probabilistic_sharpe": psr,
        "deflated_sharpe": dsr,
        "n_trials": max(n_trials, 1),
        "trial_sharpe_variance": variance,
    }
    if step_turnover is not None:
        out["turnover"] = turnover(step_turnover)
        out["turnover_annualised"] = turnover(step_turnover, periods_per_year)
    if fees is not None:
        out["fees_paid"] = float(np.sum(as_returns(fees, "fees", allow_empty=True)))
    if slippage is not None:
        out["slippage_paid"] = float(np.sum(as_returns(slippage, "slippage", allow_empty=True)))
    if n_trades is not None:
        out["n_trades"] = int(n_trades)
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[0] != r.size:
            raise ValueError(f"weights: expected shape ({r.size}, N) (one row per return), got {w.shape}")
        out["average_exposure"] = float(np.mean(w.sum(axis=1)))
    for rule, count in (interventions or {}).items():
        out[f"risk_{rule}"] = int(count)
    return out


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf floats replaced by None and numpy scalars made plain (for JSON)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())  # a 0-d array is a scalar
    if isinstance(value, np.generic):  # numpy integers, floats, bools, strings
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


__all__ = [
    "DEFAULT_BLOCK",
    "EULER_GAMMA",
    "HOURS_PER_YEAR",
    "BootstrapCI",
    "annualised_volatility",
    "as_returns",
    "as_values",
    "block_bootstrap_sharpe_ci",
    "cagr",
    "calmar_ratio",
    "deflated_sharpe_ratio",
    "downside_deviation",
    "drawdown_series",
    "equity_curve",
    "expected_max_sharpe",
    "json_safe",
    "max_drawdown",
    "max_monthly_drawdown",
    "probabilistic_sharpe_ratio",
    "profit_factor",
    "return_moments",
    "sharpe_ratio",
    "sharpe_std_error",
    "sortino_ratio",
    "stationary_bootstrap_indices",
    "summary",
    "total_return",
    "turnover",
    "win_rate",
]
