"""`agents.metrics` against an independent implementation, the published formulas and hand-worked cases.

Independent implementation: empyrical-reloaded (``import empyrical``, the maintained fork of
Quantopian's empyrical; in the ``test`` extra). Conventions compared (all identical here, so
the tolerance is floating-point only):

- Sharpe: mean / std with ddof=1, risk-free 0, x sqrt(annualisation) — ours with
  ``periods_per_year=8760``, empyrical with ``annualization=8760`` (its default would be 252
  trading days, wrong for crypto).
- Sortino: mean / sqrt(mean(min(r, 0)^2)) over *all* periods (ddof 0), x sqrt(8760).
- Max drawdown: empyrical returns it negative (-0.2), ours positive (0.2); both anchor the
  running peak at the initial equity, so a loss in the first period counts.
- CAGR: geometric, ``prod(1 + r) ** (8760 / n) - 1`` in both (empyrical's ``cagr`` =
  ``annual_return``). Annualised volatility: std ddof=1 x sqrt(8760). Calmar: CAGR / |max dd|.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import empyrical
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from agents import metrics as M
from envs.data.loaders import load_csv_dir

PPY = M.HOURS_PER_YEAR  # 8760
GAMMA = 0.5772156649015329  # Euler–Mascheroni


# ------------------------------------------------------------------ return series
def random_series() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240611)
    return {
        "normal_drift": rng.normal(0.0002, 0.006, 4000),
        "student_t4": 0.004 * rng.standard_t(4, 8760) + 0.00005,
        "losing": rng.normal(-0.0003, 0.01, 3000),
        "short_500": rng.normal(0.001, 0.02, 500),
    }


@pytest.fixture(scope="module")
def btc_returns(shared_data: Path) -> dict[str, np.ndarray]:
    """Hourly BTC/USDT simple returns (Binance), 2021 (bull) and 2022 (bear), from ../shared/data."""
    market = load_csv_dir(shared_data / "binance" / "spot_1h", assets=["BTC"], start="2021-01-01",
                          end="2022-12-31T23:00")
    close = market.close[:, 0]
    ts = market.timestamps
    year = ts.astype("datetime64[s]").astype("datetime64[Y]").astype(int) + 1970
    out = {}
    for y in (2021, 2022):
        c = close[year == y]
        out[f"btc_{y}"] = c[1:] / c[:-1] - 1.0
    return out


def all_series(btc: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {**random_series(), **btc}


# ------------------------------------------------------------------ agreement with empyrical
def test_metrics_agree_with_empyrical(btc_returns):
    for name, r in all_series(btc_returns).items():
        assert r.size >= 500 and np.isfinite(r).all(), name
        pairs = {
            "sharpe": (M.sharpe_ratio(r, PPY), empyrical.sharpe_ratio(r, annualization=PPY)),
            "sortino": (M.sortino_ratio(r, PPY), empyrical.sortino_ratio(r, annualization=PPY)),
            "max_drawdown": (M.max_drawdown(r), -empyrical.max_drawdown(r)),
            "cagr": (M.cagr(r, PPY), empyrical.cagr(r, annualization=PPY)),
            "volatility": (M.annualised_volatility(r, PPY), empyrical.annual_volatility(r, annualization=PPY)),
            "calmar": (M.calmar_ratio(r, PPY), empyrical.calmar_ratio(r, annualization=PPY)),
            "total_return": (M.total_return(r), empyrical.cum_returns_final(r)),
            "downside": (M.downside_deviation(r) * math.sqrt(PPY), empyrical.downside_risk(r, annualization=PPY)),
        }
        for metric, (ours, theirs) in pairs.items():
            assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12), f"{name}: {metric} {ours} vs {theirs}"


def test_real_btc_numbers_are_plausible(btc_returns):
    """2021 was a BTC bull year (+~60 %), 2022 a bear year (-~65 %): the signs must say so."""
    assert M.total_return(btc_returns["btc_2021"]) > 0.3
    assert M.total_return(btc_returns["btc_2022"]) < -0.5
    assert 0.4 < M.annualised_volatility(btc_returns["btc_2021"]) < 1.2
    assert M.max_drawdown(btc_returns["btc_2022"]) > 0.5


def test_per_period_and_annualised_sharpe_differ_by_sqrt_8760():
    r = random_series()["normal_drift"]
    assert M.sharpe_ratio(r, PPY) == pytest.approx(M.sharpe_ratio(r) * math.sqrt(8760), rel=1e-12)
    assert M.sortino_ratio(r, PPY) == pytest.approx(M.sortino_ratio(r) * math.sqrt(8760), rel=1e-12)
    assert M.sharpe_ratio(r) == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-12)


# ------------------------------------------------------------------ hand-worked simple statistics
def test_drawdown_total_return_cagr_by_hand():
    # equity 1 -> 1.1 -> 0.88 -> 0.924: peak 1.1, trough 0.88 -> drawdown 0.22 / 1.1 = 0.2
    r = np.array([0.1, -0.2, 0.05])
    assert M.max_drawdown(r) == pytest.approx(0.2, abs=1e-15)
    assert M.total_return(r) == pytest.approx(1.1 * 0.8 * 1.05 - 1.0, abs=1e-15)  # -0.076
    # the initial equity is a peak: a first-period loss of 5 % is a 5 % drawdown
    assert M.max_drawdown([-0.05, 0.01]) == pytest.approx(0.05, abs=1e-15)
    assert M.max_drawdown([0.01, 0.02]) == 0.0
    # 4 periods of +10 % at 2 periods a year = 2 years, growth 1.1^4 = 1.4641 -> CAGR sqrt(1.4641) - 1 = 0.21
    assert M.cagr([0.1] * 4, periods_per_year=2) == pytest.approx(0.21, abs=1e-12)
    # calmar = CAGR / max dd: +10 %, -10 % at 1 period/year: growth 0.99 over 2 years -> CAGR -0.00501256, dd 0.1
    assert M.calmar_ratio([0.1, -0.1], periods_per_year=1) == pytest.approx((math.sqrt(0.99) - 1) / 0.1, rel=1e-12)
    # a total loss is a drawdown of 1
    assert M.max_drawdown([0.5, -1.0]) == 1.0


def test_max_monthly_drawdown_restarts_each_month():
    # Jan 31 22:00, 23:00 UTC, then Feb 1 00:00, 01:00, 02:00 (Unix seconds of 2024)
    jan31_22 = 1706738400
    ts = jan31_22 + 3600 * np.arange(5)
    r = np.array([-0.1, 0.05, -0.1, 0.2, -0.05])
    # January: 1 -> 0.9 (dd 0.1) -> 0.945. February restarts at 0.945 -> 0.8505 (dd 0.1)
    # -> 1.0206 (new peak) -> 0.96957 (dd 0.05): worst month 0.1.
    assert M.max_monthly_drawdown(r, ts) == pytest.approx(0.1, abs=1e-12)
    # over the whole series the January loss carries into February: 1 - 0.8505 = 0.1495
    assert M.max_drawdown(r) == pytest.approx(0.1495, abs=1e-12)
    # datetime64 and timezone-aware pandas timestamps give the same months
    as_dt64 = ts.astype("datetime64[s]")
    assert M.max_monthly_drawdown(r, as_dt64) == pytest.approx(0.1, abs=1e-12)
    import pandas as pd

    aware = pd.to_datetime(ts, unit="s", utc=True)
    assert M.max_monthly_drawdown(r, aware) == pytest.approx(0.1, abs=1e-12)
    with pytest.raises(ValueError, match="timestamps: expected a 1-D array of 5"):
        M.max_monthly_drawdown(r, ts[:4])
    with pytest.raises(ValueError, match="strictly increasing"):
        M.max_monthly_drawdown(r, ts[::-1])


def test_turnover_win_rate_profit_factor_by_hand():
    tv = np.array([1.0, 0.0, 0.5, 0.0])
    assert M.turnover(tv) == 1.5  # total, in multiples of equity
    assert M.turnover(tv, periods_per_year=8760) == pytest.approx(1.5 / 4 * 8760)
    with pytest.raises(ValueError, match="step_turnover: expected values >= 0"):
        M.turnover([0.1, -0.1])
    r = np.array([0.02, -0.01, 0.0, 0.03, -0.02, 0.0])
    assert M.win_rate(r) == pytest.approx(2 / 4)  # zeros are not bets
    assert M.profit_factor(r) == pytest.approx(0.05 / 0.03)
    assert math.isnan(M.win_rate(np.zeros(5)))
    assert M.profit_factor([0.01, 0.0]) == math.inf
    assert math.isnan(M.profit_factor(np.zeros(3)))
    # per-trade P&L in currency works too (values below -1 are allowed there)
    assert M.win_rate([120.0, -45.0, -10.0]) == pytest.approx(1 / 3)
    assert M.profit_factor([120.0, -45.0, -15.0]) == pytest.approx(2.0)


# ------------------------------------------------------------------ edge cases
@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([], "empty"),
        ([0.01, float("nan"), 0.02], r"NaN/inf.*NaN at index 1"),
        ([0.01, float("inf")], r"inf at index 1"),
        ([0.01, -1.5], r"simple returns >= -1, got -1.5 at index 1"),
        (np.zeros((3, 2)), r"1-D array.*shape \(3, 2\)"),
        (0.01, "scalar"),
        (["a", "b"], "numeric"),
    ],
)
def test_bad_returns_raise_naming_the_problem(bad, match):
    for fn in (M.sharpe_ratio, M.sortino_ratio, M.max_drawdown, M.total_return, M.cagr,
               M.annualised_volatility, M.calmar_ratio):
        with pytest.raises(ValueError, match=match):
            fn(bad)


def test_undefined_values_are_nan_and_documented():
    zeros = np.zeros(100)  # all cash
    assert math.isnan(M.sharpe_ratio(zeros)) and math.isnan(M.sharpe_ratio(zeros, PPY))
    assert math.isnan(M.sortino_ratio(zeros))
    assert math.isnan(M.calmar_ratio(zeros))
    assert M.max_drawdown(zeros) == 0.0 and M.total_return(zeros) == 0.0 and M.cagr(zeros) == 0.0
    assert M.annualised_volatility(zeros) == 0.0
    const = np.full(50, 0.001)  # zero variance, positive mean: a Sharpe ratio has nothing to scale by
    assert math.isnan(M.sharpe_ratio(const))
    assert M.sortino_ratio(const) == math.inf  # no downside at all (empyrical agrees)
    assert empyrical.sortino_ratio(const, annualization=PPY) == math.inf
    assert math.isnan(M.sharpe_ratio([0.01]))  # one observation: no standard deviation
    assert math.isnan(M.annualised_volatility([0.01]))
    assert math.isnan(M.probabilistic_sharpe_ratio(math.nan, 100, 0.0, 3.0))
    with pytest.raises(ValueError, match="periods_per_year: expected a positive number"):
        M.sharpe_ratio([0.01, 0.02], periods_per_year=0)


def test_moment_arguments_are_checked():
    with pytest.raises(ValueError, match=r"raw fourth standardised moment.*not excess"):
        M.probabilistic_sharpe_ratio(0.1, 100, 0.0, 0.0)  # excess kurtosis 0 passed by mistake
    with pytest.raises(ValueError, match="n_obs: expected an integer number of returns >= 2"):
        M.probabilistic_sharpe_ratio(0.1, 1, 0.0, 3.0)
    with pytest.raises(ValueError, match="skew: expected a finite number"):
        M.probabilistic_sharpe_ratio(0.1, 100, math.nan, 3.0)
    with pytest.raises(ValueError, match="n_trials: expected an integer number of trials >= 1"):
        M.deflated_sharpe_ratio(0.1, 100, 0.0, 3.0, 0, 0.01)
    with pytest.raises(ValueError, match="sr_variance: expected a variance >= 0"):
        M.deflated_sharpe_ratio(0.1, 100, 0.0, 3.0, 5, -0.01)


def test_return_moments_are_population_moments():
    r = random_series()["student_t4"]
    sr, n, skew, kurt = M.return_moments(r)
    z = (r - r.mean()) / r.std(ddof=0)
    assert n == r.size and sr == pytest.approx(M.sharpe_ratio(r))
    assert skew == pytest.approx(np.mean(z**3), rel=1e-9)
    assert kurt == pytest.approx(np.mean(z**4), rel=1e-9)
    assert kurt > 3.5  # Student-t(4): fat tails, raw kurtosis well above a normal's 3


# ------------------------------------------------------------------ PSR and DSR: published formulas
def test_psr_hand_worked():
    """PSR (Bailey & López de Prado 2012, eq. for PSR(SR*)), SR=0.1, n=250, skew=-0.5, kurt=4, SR*=0.

    1 - γ3·SR + (γ4 - 1)/4·SR² = 1 - (-0.5)(0.1) + (3/4)(0.01) = 1 + 0.05 + 0.0075 = 1.0575
    sqrt(1.0575) = 1.0283482;  sqrt(n - 1) = sqrt(249) = 15.7797338
    z = (0.1 - 0) × 15.7797338 / 1.0283482 = 1.5344738
    PSR = Φ(1.5344738) = 0.9375434
    """
    var_term = 1 - (-0.5) * 0.1 + (4 - 1) / 4 * 0.1**2
    assert var_term == pytest.approx(1.0575, abs=1e-15)
    z = (0.1 - 0.0) * math.sqrt(249) / math.sqrt(var_term)
    assert z == pytest.approx(1.5344738, abs=1e-7)
    assert norm.cdf(z) == pytest.approx(0.9375434, abs=1e-7)
    assert M.probabilistic_sharpe_ratio(0.1, 250, -0.5, 4.0) == pytest.approx(0.9375434, abs=1e-7)
    # against a benchmark of 0.05: z = 0.05 × 15.7797338 / 1.0283482 = 0.7672369 -> Φ = 0.7785263
    assert M.probabilistic_sharpe_ratio(0.1, 250, -0.5, 4.0, sr_benchmark=0.05) == pytest.approx(
        norm.cdf(0.05 * math.sqrt(249) / math.sqrt(1.0575)), abs=1e-12
    )
    # the standard error the PSR divides by (Mertens 2002)
    assert M.sharpe_std_error(0.1, 250, -0.5, 4.0) == pytest.approx(math.sqrt(1.0575 / 249), abs=1e-15)


def test_psr_normal_returns_and_benchmark_equal_to_sr():
    # normal returns (skew 0, kurt 3): PSR = Φ(SR sqrt(n-1) / sqrt(1 + SR²/2))
    sr, n = 0.05, 1000
    assert M.probabilistic_sharpe_ratio(sr, n, 0.0, 3.0) == pytest.approx(
        norm.cdf(sr * math.sqrt(n - 1) / math.sqrt(1 + sr * sr / 2)), abs=1e-14
    )
    assert M.probabilistic_sharpe_ratio(0.07, 500, -1.0, 6.0, sr_benchmark=0.07) == pytest.approx(0.5, abs=1e-15)
    # negative skew and fat tails lower the PSR of a positive SR
    assert M.probabilistic_sharpe_ratio(0.05, 1000, -1.0, 8.0) < M.probabilistic_sharpe_ratio(0.05, 1000, 0.0, 3.0)


def test_dsr_bailey_lopez_de_prado_2014_example():
    """The numerical example of "The Deflated Sharpe Ratio" (Bailey & López de Prado 2014, JPM 40(5)).

    Inputs as the paper states them: N = 100 trials, V[SR_n] = 1/2 (annualised), T = 1250 daily
    returns (5 years), annualised SR = 2.5, skew γ3 = -3, raw kurtosis γ4 = 10, 250 days a year.
    Per period: SR = 2.5 / sqrt(250) = 0.1581139, V = 0.5 / 250 = 0.002.
    SR0 = sqrt(0.002) × ((1 - γ) Φ⁻¹(1 - 1/100) + γ Φ⁻¹(1 - 1/(100 e)))
        = 0.0447214 × (0.4227843 × 2.3263479 + 0.5772157 × 2.6802104)
        = 0.0447214 × 2.5306029 = 0.1131720          (the paper: SR0 ≈ 0.1132)
    1 - γ3 SR + (γ4 - 1)/4 SR² = 1 + 3 × 0.1581139 + 2.25 × 0.025 = 1.5305916
    z = (0.1581139 - 0.1131720) × sqrt(1249) / sqrt(1.5305916) = 1.2838160
    DSR = Φ(1.2838160) = 0.9003968                     (the paper: DSR ≈ 0.9004)
    The values 0.1132 / 0.9004 are the ones we recall the paper quoting (no copy of the paper
    offline to re-check); the arithmetic above is worked from its formulas (eq. 2 and PSR).
    """
    sr, v = 2.5 / math.sqrt(250), 0.5 / 250
    z1, z2 = norm.ppf(1 - 1 / 100), norm.ppf(1 - 1 / (100 * math.e))
    assert (z1, z2) == (pytest.approx(2.3263479, abs=1e-7), pytest.approx(2.6802104, abs=1e-7))
    sr0 = math.sqrt(v) * ((1 - GAMMA) * z1 + GAMMA * z2)
    assert sr0 == pytest.approx(0.1131720, abs=1e-7)
    assert M.expected_max_sharpe(100, v) == pytest.approx(sr0, abs=1e-15)
    assert round(M.expected_max_sharpe(100, v), 4) == 0.1132
    dsr = M.deflated_sharpe_ratio(sr, 1250, -3.0, 10.0, 100, v)
    assert dsr == pytest.approx(0.9003968, abs=1e-7)
    assert round(dsr, 4) == 0.9004


def test_dsr_own_hand_worked_case():
    """SR = 0.08 per period, n = 500, normal returns (skew 0, kurt 3), N = 10 trials, V = 0.0004.

    Φ⁻¹(1 - 1/10) = Φ⁻¹(0.9) = 1.2815516;  Φ⁻¹(1 - 1/(10e)) = Φ⁻¹(0.9632121) = 1.7892418
    (1 - γ) × 1.2815516 + γ × 1.7892418 = 0.5418199 + 1.0327784 = 1.5745983
    SR0 = sqrt(0.0004) × 1.5745983 = 0.02 × 1.5745983 = 0.0314920
    1 - 0 + (3 - 1)/4 × 0.08² = 1.0032
    z = (0.08 - 0.0314920) × sqrt(499) / sqrt(1.0032) = 0.0485080 × 22.3383079 / 1.0015987 = 1.0818578
    DSR = Φ(1.0818578) = 0.8603421
    """
    assert norm.ppf(0.9) == pytest.approx(1.2815516, abs=1e-7)
    assert norm.ppf(1 - 1 / (10 * math.e)) == pytest.approx(1.7892418, abs=1e-7)
    assert M.expected_max_sharpe(10, 0.0004) == pytest.approx(0.0314920, abs=1e-7)
    z = (0.08 - 0.02 * ((1 - GAMMA) * 1.2815516 + GAMMA * 1.7892418)) * math.sqrt(499) / math.sqrt(1.0032)
    assert z == pytest.approx(1.0818578, abs=1e-6)
    assert M.deflated_sharpe_ratio(0.08, 500, 0.0, 3.0, 10, 0.0004) == pytest.approx(norm.cdf(z), abs=1e-7)
    assert M.deflated_sharpe_ratio(0.08, 500, 0.0, 3.0, 10, 0.0004) == pytest.approx(0.8603421, abs=1e-7)
    # one trial: nothing to deflate, DSR = PSR against 0; more trials deflate more
    assert M.deflated_sharpe_ratio(0.08, 500, 0.0, 3.0, 1, 0.0004) == M.probabilistic_sharpe_ratio(0.08, 500, 0, 3)
    dsrs = [M.deflated_sharpe_ratio(0.08, 500, 0.0, 3.0, n, 0.0004) for n in (1, 2, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(dsrs))


def test_expected_max_sharpe_matches_monte_carlo():
    """The Euler–Mascheroni formula approximates E[max of N iid N(0, V)] to about 1 %."""
    rng = np.random.default_rng(3)
    for n in (10, 100):
        draws = rng.normal(0.0, math.sqrt(0.002), size=(20000, n)).max(axis=1).mean()
        assert M.expected_max_sharpe(n, 0.002) == pytest.approx(draws, rel=0.03)


_skew = st.floats(-2.0, 2.0)
_extra_kurt = st.floats(0.0, 20.0)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(sr=st.floats(-0.5, 0.5), step=st.floats(1e-4, 0.2), n=st.integers(2, 100_000), skew=_skew, extra=_extra_kurt)
def test_psr_is_monotone_in_sr(sr, step, n, skew, extra):
    """Benchmark 0, |SR| <= 0.5 per period, |skew| <= 2: dz/dSR ∝ 1 - γ3·SR/2 > 0 (see the docstring)."""
    kurt = 1.0 + skew * skew + extra  # any valid raw kurtosis (Pearson: kurt >= 1 + skew²)
    lo = M.probabilistic_sharpe_ratio(sr, n, skew, kurt)
    hi = M.probabilistic_sharpe_ratio(min(sr + step, 0.5), n, skew, kurt)
    assert hi >= lo


@settings(derandomize=True, max_examples=200, deadline=None)
@given(sr=st.floats(-0.5, 0.5), bench=st.floats(-0.2, 0.2), n=st.integers(2, 50_000), dn=st.integers(1, 50_000),
       skew=_skew, extra=_extra_kurt)
def test_psr_is_monotone_in_n_obs(sr, bench, n, dn, skew, extra):
    """More observations sharpen the verdict: PSR rises with n above the benchmark, falls below it."""
    kurt = 1.0 + skew * skew + extra
    a = M.probabilistic_sharpe_ratio(sr, n, skew, kurt, bench)
    b = M.probabilistic_sharpe_ratio(sr, n + dn, skew, kurt, bench)
    if sr > bench:
        assert b >= a
    elif sr < bench:
        assert b <= a
    else:
        assert a == b == 0.5


# ------------------------------------------------------------------ stationary bootstrap
def test_bootstrap_ci_covers_point_and_is_deterministic(btc_returns):
    for name, r in all_series(btc_returns).items():
        ci = M.block_bootstrap_sharpe_ci(r, block=24, n_boot=300, seed=1, periods_per_year=PPY)
        assert ci.point == pytest.approx(M.sharpe_ratio(r, PPY))
        assert ci.low < ci.point < ci.high, name
        again = M.block_bootstrap_sharpe_ci(r, block=24, n_boot=300, seed=1, periods_per_year=PPY)
        assert (again.low, again.high) == (ci.low, ci.high)  # bit for bit
        other = M.block_bootstrap_sharpe_ci(r, block=24, n_boot=300, seed=2, periods_per_year=PPY)
        assert (other.low, other.high) != (ci.low, ci.high)


def test_bootstrap_ci_widens_with_fewer_observations():
    r = random_series()["student_t4"]  # 8760 hours
    full = M.block_bootstrap_sharpe_ci(r, n_boot=400, seed=0, periods_per_year=PPY)
    part = M.block_bootstrap_sharpe_ci(r[:1000], n_boot=400, seed=0, periods_per_year=PPY)
    w_full, w_part = full.high - full.low, part.high - part.low
    # the width of an annualised Sharpe CI shrinks like 1/sqrt(n): expect ~ sqrt(8.76) = 2.96 x
    assert w_part > 2.0 * w_full
    assert w_part / w_full == pytest.approx(math.sqrt(8760 / 1000), rel=0.35)


def test_block_bootstrap_is_wider_than_iid_on_autocorrelated_returns():
    """Why blocks: with positively autocorrelated hourly returns an i.i.d. resample (block 1)
    understates the Sharpe ratio's uncertainty; the stationary bootstrap keeps the dependence."""
    rng = np.random.default_rng(11)
    e = rng.normal(0.0, 0.005, 8760)
    r = np.empty_like(e)
    r[0] = e[0]
    for t in range(1, e.size):  # AR(1), phi = 0.5: the Sharpe ratio's variance is ~3x the iid one
        r[t] = 0.5 * r[t - 1] + e[t]
    r += 0.0002
    iid = M.block_bootstrap_sharpe_ci(r, block=1, n_boot=400, seed=0)
    blocks = M.block_bootstrap_sharpe_ci(r, block=48, n_boot=400, seed=0)
    assert (blocks.high - blocks.low) > 1.4 * (iid.high - iid.low)  # sqrt(3) = 1.73 in theory


def test_stationary_bootstrap_indices_form_geometric_wrapping_blocks():
    rng = np.random.default_rng(0)
    n, block = 2000, 24.0
    idx = M.stationary_bootstrap_indices(n, block, 50, rng)
    assert idx.shape == (50, n) and idx.min() >= 0 and idx.max() < n
    cont = (idx[:, 1:] == (idx[:, :-1] + 1) % n)  # inside a block the index advances by one, wrapping
    breaks = (~cont).sum()
    mean_block = idx.size / (breaks + idx.shape[0])
    assert mean_block == pytest.approx(block, rel=0.1)  # geometric lengths with mean `block`
    # the wrap from n-1 to 0 happens inside blocks
    assert np.any((idx[:, :-1] == n - 1) & (idx[:, 1:] == 0))


def test_bootstrap_arguments_and_zero_variance():
    with pytest.raises(ValueError, match="n_boot: expected an integer >= 10"):
        M.block_bootstrap_sharpe_ci(np.ones(10) * 0.01, n_boot=5)
    with pytest.raises(ValueError, match="alpha: expected 0 < alpha < 1"):
        M.block_bootstrap_sharpe_ci(np.arange(10) * 0.01, alpha=1.5)
    with pytest.raises(ValueError, match="block: expected a mean block length >= 1"):
        M.block_bootstrap_sharpe_ci(np.arange(10) * 0.01, block=0.5)
    ci = M.block_bootstrap_sharpe_ci(np.zeros(100))
    assert math.isnan(ci.point) and math.isnan(ci.low) and math.isnan(ci.high)


# ------------------------------------------------------------------ summary (one row of metrics.json)
def test_summary_names_units_and_json():
    r = random_series()["normal_drift"][:2000]
    ts = 1704067200 + 3600 * np.arange(r.size)  # 2024-01-01 00:00 UTC, hourly
    w = np.full((r.size, 3), 0.2)
    s = M.summary(r, ts, step_turnover=np.full(r.size, 0.01), fees=np.full(r.size, 0.5),
                  slippage=np.full(r.size, 0.1), n_trades=42, weights=w,
                  interventions={"asset_cap": 3, "cost_gate": 7}, n_boot=200)
    for key in ("sharpe", "sortino", "calmar", "max_drawdown", "total_return", "cagr", "turnover", "fees_paid",
                "annualised_volatility", "max_monthly_drawdown", "slippage_paid", "n_trades", "win_rate",
                "profit_factor", "average_exposure", "sharpe_ci_low", "sharpe_ci_high", "probabilistic_sharpe",
                "deflated_sharpe", "risk_asset_cap", "risk_cost_gate"):
        assert key in s, key
    assert all(k == k.lower() and " " not in k for k in s)
    assert all(isinstance(v, int | float) for v in s.values())  # a table of numbers
    assert s["sharpe"] == pytest.approx(M.sharpe_ratio(r, PPY))
    assert s["sharpe_per_period"] == pytest.approx(M.sharpe_ratio(r))
    sr, n, skew, kurt = M.return_moments(r)
    assert s["probabilistic_sharpe"] == pytest.approx(M.probabilistic_sharpe_ratio(sr, n, skew, kurt))
    assert s["turnover"] == pytest.approx(20.0) and s["fees_paid"] == pytest.approx(1000.0)
    assert s["average_exposure"] == pytest.approx(0.6) and s["n_trades"] == 42 and s["risk_cost_gate"] == 7
    assert math.isnan(s["deflated_sharpe"]) and s["n_trials"] == 1  # one trial: nothing to deflate
    text = json.dumps(M.json_safe(s), allow_nan=False)  # NaN -> null, strict JSON
    assert json.loads(text)["deflated_sharpe"] is None


def test_summary_counts_trials_for_the_dsr():
    r = random_series()["normal_drift"]
    ts = 1704067200 + 3600 * np.arange(r.size)
    trials = [M.sharpe_ratio(r), 0.001, -0.004, 0.006]  # per-period Sharpe of every trial, this one included
    s = M.summary(r, ts, trial_sharpes=trials, n_boot=100)
    sr, n, skew, kurt = M.return_moments(r)
    assert s["n_trials"] == 4
    assert s["deflated_sharpe"] == pytest.approx(
        M.deflated_sharpe_ratio(sr, n, skew, kurt, 4, float(np.var(trials, ddof=1))))
    assert s["deflated_sharpe"] < s["probabilistic_sharpe"]


def test_summary_of_all_cash_is_defined_where_it_can_be():
    r = np.zeros(300)
    ts = 1704067200 + 3600 * np.arange(r.size)
    s = M.json_safe(M.summary(r, ts, n_boot=50))
    assert s["total_return"] == 0.0 and s["max_drawdown"] == 0.0 and s["max_monthly_drawdown"] == 0.0
    assert s["sharpe"] is None and s["probabilistic_sharpe"] is None and s["calmar"] is None
