"""Labels: hand-computed forward returns, the exact fee threshold, NaN tails and gaps."""

from __future__ import annotations

import numpy as np
import pytest

from envs.data.market import MarketData
from envs.errors import ConfigError
from predictors.labels import HORIZONS, fee_threshold, make_labels


def tiny_market(close: np.ndarray, tradable: np.ndarray | None = None) -> MarketData:
    T, N = close.shape
    return MarketData(
        assets=tuple(f"A{i}" for i in range(N)),
        timestamps=1_700_000_000 // 3600 * 3600 + 3600 * np.arange(T, dtype=np.int64),
        open=close,
        high=close,
        low=close,
        close=close,
        volume=np.ones((T, N)),
        tradable=np.isfinite(close) if tradable is None else tradable,
        filled=np.zeros((T, N), dtype=bool),
    )


def test_hand_computed_forward_returns_and_label_end() -> None:
    close = np.array([[100.0], [110.0], [99.0], [99.0], [120.0], [121.0]])
    lab = make_labels(tiny_market(close), horizons=(1, 4))
    assert lab.horizons == (1, 4) and lab.fwd_return.shape == (6, 1, 2) and lab.up.shape == (6, 1, 2)
    expected_1 = [np.log(110 / 100), np.log(99 / 110), 0.0, np.log(120 / 99), np.log(121 / 120), np.nan]
    np.testing.assert_allclose(lab.fwd_return[:, 0, 0], expected_1, rtol=1e-15)
    np.testing.assert_allclose(lab.fwd_return[:, 0, 1], [np.log(1.2), np.log(121 / 110), *[np.nan] * 4])
    np.testing.assert_array_equal(lab.up[:, 0, 0], [1.0, 0.0, 0.0, 1.0, 1.0, np.nan])  # 0.83 % move beats 0.80 %
    np.testing.assert_array_equal(lab.label_end, np.arange(6)[:, None] + np.array([1, 4]))
    assert lab.label_end.dtype == np.int64


def test_last_h_rows_nan_for_default_horizons() -> None:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (60, 3)), axis=0))
    lab = make_labels(tiny_market(close))
    assert lab.horizons == HORIZONS == (1, 4, 24)
    for k, h in enumerate(HORIZONS):
        assert np.isnan(lab.fwd_return[-h:, :, k]).all() and np.isnan(lab.up[-h:, :, k]).all()
        assert np.isfinite(lab.fwd_return[:-h, :, k]).all() and np.isin(lab.up[:-h, :, k], (0.0, 1.0)).all()
        np.testing.assert_allclose(lab.fwd_return[:-h, :, k], np.log(close[h:] / close[:-h]), rtol=1e-15)


def test_fee_threshold_is_exact() -> None:
    fee = 0.008
    thr = fee_threshold(fee)
    assert thr == -2.0 * np.log1p(-0.004)
    assert (1 - 0.004) ** 2 * np.exp(thr) == pytest.approx(1.0, rel=1e-15)  # break-even after both fees
    # one ulp either side of the threshold: strictly greater is up
    at = np.exp(thr)
    close = np.array([[1.0], [at], [at], [at * np.exp(thr) * (1 + 1e-12)]])
    lab = make_labels(tiny_market(close), horizons=(1,), round_trip_fee=fee)
    r = lab.fwd_return[:, 0, 0]
    assert r[0] == pytest.approx(thr, rel=1e-14)
    assert lab.up[1, 0, 0] == 0.0 and lab.up[2, 0, 0] == 1.0
    assert lab.up[0, 0, 0] == float(r[0] > thr)
    assert make_labels(tiny_market(close), horizons=(1,), round_trip_fee=0.0).up[1, 0, 0] == 0.0  # r = 0
    with pytest.raises(ConfigError, match="round_trip_fee"):
        make_labels(tiny_market(close), round_trip_fee=-0.1)
    with pytest.raises(ConfigError, match="horizons"):
        make_labels(tiny_market(close), horizons=(0, 4))


def test_nan_propagates_across_missing_and_untradable_bars() -> None:
    close = np.linspace(100.0, 130.0, 40)[:, None].repeat(2, axis=1)
    close[:5, 1] = np.nan  # listed at bar 5
    tradable = np.isfinite(close)
    tradable[20, 0] = False  # a marked gap bar (price carried forward)
    lab = make_labels(tiny_market(close, tradable), horizons=(1, 4))
    f1, f4 = lab.fwd_return[:, 0, 0], lab.fwd_return[:, 0, 1]
    assert np.isnan(f1[19:21]).all() and np.isfinite(f1[[18, 21]]).all()  # t or t+1 is the gap
    assert np.isnan(f4[16:21]).all() and np.isfinite(f4[[15, 21]]).all()  # gap anywhere in t..t+4
    assert np.isnan(lab.fwd_return[:5, 1]).all() and np.isfinite(lab.fwd_return[5:35, 1]).all()
    assert (np.isnan(lab.up) == np.isnan(lab.fwd_return)).all()
