"""metrics.json document and report.html from real baseline episodes on a synthetic market.

Episodes: `run_policy` of three baselines through ``RiskWrapper(KrakenSpotEnv(...), "spec_a")``
on a 4-asset synthetic market, 150 hourly steps from bar 250 (the risk layer's correlation
clusters need 180 returns of history). The rebalancer is filed under "policy" so the report
emphasises it as it would a trained policy.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from agents.baselines import AllCash, BuyAndHold, EpisodeResult, EqualWeightRebalanced, run_policy
from agents.evaluation import (
    REGIME_COLUMNS,
    UNKNOWN,
    metrics_document,
    newey_west_t,
    per_regime,
    predictor_quality,
    regime_labels,
    write_metrics,
)
from agents.metrics import HOURS_PER_YEAR, json_safe, sharpe_ratio
from agents.report import PNG_SIZES, intervention_days, write_report
from envs.data.synthetic import generate_synthetic_market
from envs.kraken_spot import KrakenSpotEnv
from predictors.labels import fee_threshold, make_labels
from predictors.regime import REGIMES
from risk import RiskWrapper

ASSETS = ("BTC", "ETH", "SOL", "ADA")
START, HOURS, N_BARS = 250, 150, 480


@pytest.fixture(scope="module")
def market():
    return generate_synthetic_market(assets=ASSETS, n_bars=N_BARS, seed=1)


@pytest.fixture(scope="module")
def results(market):
    out = {}
    for key, policy in (("policy", EqualWeightRebalanced(24)), ("all_cash", AllCash()),
                        ("buy_and_hold_btc", BuyAndHold("BTC"))):  # fmt: skip
        env = RiskWrapper(KrakenSpotEnv(market=market, window=24, episode_hours=HOURS, start_mode="fixed"), "spec_a")
        out[key] = run_policy(env, policy, seed=0, options={"start": START})
    assert all(r.n_steps == HOURS for r in out.values())
    return out


@pytest.fixture(scope="module")
def labels():
    """Random regime per step (crash never occurs, some steps unknown)."""
    return np.random.default_rng(5).choice([-1, 0, 1, 2], size=HOURS, p=[0.1, 0.4, 0.3, 0.2])


def _utc(market, t):
    return pd.to_datetime(market.timestamps[np.asarray(t)], unit="s", utc=True)


def _predictions(market, model, rng=None, start=24):
    """Rows for every bar >= start, asset and horizon: exp_return = the realised forward return."""
    lab = make_labels(market, (1, 4, 24))
    T, N = market.n_bars, market.n_assets
    parts = []
    for k, h in enumerate(lab.horizons):
        t, a = np.meshgrid(np.arange(start, T), np.arange(N), indexing="ij")
        fwd = np.nan_to_num(lab.fwd_return[t.ravel(), a.ravel(), k])  # rows past the end get 0 (and no label)
        exp_ret = fwd if rng is None else rng.permutation(fwd)
        p_up = 1.0 / (1.0 + np.exp(-200.0 * (exp_ret - fee_threshold(0.008))))  # monotone in exp_return
        parts.append(pd.DataFrame({"timestamp": _utc(market, t.ravel()), "asset": np.asarray(ASSETS)[a.ravel()],
                                   "horizon": h, "model": model, "p_up": p_up, "exp_return": exp_ret}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------------ regimes
def test_regime_labels_argmax_of_the_mean_over_assets(market):
    s = START
    rows = [  # (bar, asset, probabilities)
        (s, "BTC", [0.6, 0.4, 0.0, 0.0]),  # BTC alone says trend ...
        (s, "ETH", [0.1, 0.5, 0.4, 0.0]),  # ... the mean [0.35, 0.45, 0.2, 0] says range
        (s + 1, "SOL", [0.0, 0.0, 0.2, 0.8]),  # one asset: its argmax (crash)
        (s + 2, "DOGE", [1.0, 0.0, 0.0, 0.0]),  # not in the market: ignored -> unknown
        (s + 3, "ADA", [0.0, 0.0, 1.0, 0.0]),  # outside [s, s + 3): ignored
    ]
    df = pd.DataFrame({"timestamp": _utc(market, [r[0] for r in rows]), "asset": [r[1] for r in rows],
                       **{c: [r[2][k] for r in rows] for k, c in enumerate(REGIME_COLUMNS)}})  # fmt: skip
    assert regime_labels(df, market, s, s + 3).tolist() == [REGIMES.index("range"), REGIMES.index("crash"), -1]
    with pytest.raises(ValueError, match=r"missing column\(s\) \['p_crash'\]"):
        regime_labels(df.drop(columns="p_crash"), market, s, s + 3)
    with pytest.raises(ValueError, match="expected 0 <= start < stop"):
        regime_labels(df, market, s, s)


def test_per_regime_hours_sum_and_returns_compound(results, labels):
    for res in results.values():
        pr = per_regime(res, labels)
        assert list(pr) == [*REGIMES, UNKNOWN]
        assert sum(v["hours"] for v in pr.values()) == res.n_steps == HOURS
        growth = math.prod(1.0 + v["total_return"] for v in pr.values() if v["hours"])
        assert growth == pytest.approx(res.equity[-1] / res.equity[0], rel=1e-12)
        assert pr["crash"]["hours"] == 0 and all(math.isnan(pr["crash"][k]) for k in ("sharpe", "total_return"))
    pr = per_regime(results["policy"], labels)
    trend = results["policy"].returns[labels == 0]  # returns of steps decided in a trend bar
    assert pr["trend"]["sharpe"] == pytest.approx(sharpe_ratio(trend, HOURS_PER_YEAR), rel=1e-12)
    assert pr["trend"]["share"] == pytest.approx(trend.size / HOURS)


def test_per_regime_looks_up_decision_bars_by_timestamp(market, results, labels):
    res = results["policy"]
    assert res.timestamps[0] == market.timestamps[START]  # step 0 is decided at the start bar
    wide = np.concatenate([np.full(10, 2), labels, np.full(10, 3)])  # bars START-10 .. START+HOURS+9
    stamps = market.timestamps[START - 10 : START + HOURS + 10]
    assert json_safe(per_regime(res, wide, stamps)) == json_safe(per_regime(res, labels))
    with pytest.raises(ValueError, match="expected at least 150 labels"):
        per_regime(res, labels[:-1])
    with pytest.raises(ValueError, match="no label for the decision bar of step 0"):
        per_regime(res, labels, market.timestamps[START + 1 : START + 1 + HOURS])


# ------------------------------------------------------------------ predictor quality
def test_predictor_quality_perfect_and_shuffled(market):
    perfect = _predictions(market, "meta")
    shuffled = _predictions(market, "xgboost", rng=np.random.default_rng(0))
    pq = predictor_quality(pd.concat([perfect, shuffled]), market, 24, N_BARS).set_index(["model", "horizon"])
    lab = make_labels(market, (1, 4, 24))
    for k, h in enumerate((1, 4, 24)):
        best = pq.loc[("meta", h)]
        assert best["ic"] == pytest.approx(1.0, abs=1e-12) and best["auc"] == 1.0
        assert best["hit_rate"] == 1.0
        known = np.isfinite(lab.fwd_return[24:, :, k]).sum()  # rows whose label ends inside the market
        assert best["n"] == known == (N_BARS - 24 - h) * len(ASSETS)
        assert best["n_timestamps"] == N_BARS - 24 - h
        noise = pq.loc[("xgboost", h)]
        assert abs(noise["ic"]) < 0.1 and abs(noise["auc"] - 0.5) < 0.05, (h, noise["ic"], noise["auc"])
        assert abs(noise["ic_t_nw"]) < 3.5
    # a window [start, stop) keeps only its bars; assets outside the market are ignored
    doge = perfect.iloc[:5].assign(asset="DOGE", timestamp=_utc(market, [350] * 5))
    sub = predictor_quality(pd.concat([perfect, doge]), market, 300, 400, horizons=(4,))
    assert sub["n"].tolist() == [100 * len(ASSETS)] and sub["horizon"].tolist() == [4]


def test_newey_west_t_is_the_plain_t_without_lags_and_smaller_with_overlap():
    rng = np.random.default_rng(1)
    iid = rng.normal(0.05, 1.0, 2000)
    plain = iid.mean() / (iid.std(ddof=0) / math.sqrt(iid.size))
    assert newey_west_t(iid, 0) == pytest.approx(plain, rel=1e-12)
    overlapping = np.convolve(rng.normal(0.05, 1.0, 2023), np.ones(24) / 24, mode="valid")  # 24-bar sums
    naive = overlapping.mean() / (overlapping.std(ddof=1) / math.sqrt(overlapping.size))
    assert abs(newey_west_t(overlapping, 23)) < abs(naive) / 2.5  # overlap inflates the naive t ~ sqrt(24)


# ------------------------------------------------------------------ metrics.json
def test_metrics_document_is_summary_plus_per_regime(market, results, labels, tmp_path):
    trials = {"policy": [0.01, 0.02, -0.005]}
    doc = metrics_document(results, (market.timestamps[START], market.timestamps[START + HOURS]), None, trials,
                           labels, None, {"run": "unit-test"})  # fmt: skip
    assert list(doc["strategies"]) == ["policy", "all_cash", "buy_and_hold_btc"]
    for name, res in results.items():
        row = dict(doc["strategies"][name])
        assert row.pop("per_regime") == json_safe(per_regime(res, labels))
        assert row == json_safe(res.summary(trial_sharpes=trials.get(name)))
    assert doc["strategies"]["policy"]["deflated_sharpe"] is not None
    assert doc["strategies"]["all_cash"]["sharpe"] is None  # NaN (zero variance) -> null
    assert doc["period"] == {"start": "2022-01-11T10:00:00+00:00", "end": "2022-01-17T16:00:00+00:00"}
    assert doc["train_period"] == {"start": None, "end": None}
    assert doc["annualisation"]["periods_per_year"] == 8760 and "stationary (Politis-Romano" in doc["bootstrap"]
    assert doc["run"] == "unit-test" and doc["predictor_quality"] == []
    assert doc["episodes"]["policy"]["termination_reason"] == "episode_length"
    with pytest.raises(ValueError, match=r"extra: keys \['strategies'\]"):
        metrics_document(results, ("2022-01-11", "2022-01-17"), extra={"strategies": {}})
    with pytest.raises(ValueError, match=r"trial_sharpes: names \['nope'\]"):
        metrics_document(results, ("2022-01-11", "2022-01-17"), trial_sharpes={"nope": [0.1, 0.2]})


def test_write_metrics_writes_null_and_is_atomic(results, tmp_path):
    doc = metrics_document({"all_cash": results["all_cash"]}, ("2022-01-11", "2022-01-17"))
    doc["nan_check"] = float("nan")
    path = write_metrics(tmp_path / "metrics.json", doc)
    text = path.read_text()
    assert '"sharpe": null' in text and '"nan_check": null' in text and "NaN" not in text
    back = json.loads(text)
    assert back["strategies"]["all_cash"]["total_return"] == 0.0
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_metrics(path, {"bad": object()})
    assert json.loads(path.read_text()) == back  # the old file survives a failed write
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


# ------------------------------------------------------------------ report.html
def test_report_renders_every_figure_at_its_size(market, results, labels, tmp_path):
    pq = predictor_quality(_predictions(market, "meta"), market, START, START + HOURS)
    doc = metrics_document(results, ("2022-01-11T10:00Z", "2022-01-17T16:00Z"), ("2022-01-01", "2022-01-10"),
                           None, labels, pq)  # fmt: skip
    doc = json.loads(write_metrics(tmp_path / "metrics.json", doc).read_text())  # as evaluate.py would re-read it
    page = write_report(tmp_path, doc, results, title="R&D <eval>")
    for name, size in PNG_SIZES.items():
        with Image.open(tmp_path / name) as img:
            assert img.format == "PNG" and img.size == size, name
    text = page.read_text()
    table = text[text.index('<table id="metrics">') : text.index("</table>", text.index('<table id="metrics">'))]
    assert table.count("<tr>") == 1 + len(results)
    for name in results:
        assert f"<td>{name}</td>" in table
    assert "<th>deflated_sharpe</th>" in table and "<th>max_monthly_drawdown</th>" in table
    assert "annualised with 365 × 24 = 8760 periods per year" in text
    assert "stationary (Politis-Romano" in text and "signal failed" in text
    assert "R&amp;D &lt;eval&gt;" in text and "<eval>" not in text
    assert '<table id="per_regime">' in text and '<table id="predictor_quality">' in text
    assert "2022-01-01T00:00:00+00:00 to 2022-01-10T00:00:00+00:00" in text  # training period
    assert all('src="' + n + '"' in text for n in PNG_SIZES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*PNG_SIZES, "report.html", "metrics.json"])


def test_report_without_predictors_regimes_or_policy(results, tmp_path):
    subset = {k: results[k] for k in ("buy_and_hold_btc", "all_cash")}
    doc = metrics_document(subset, ("2022-01-11", "2022-01-17"))
    text = write_report(tmp_path, doc, subset).read_text()
    assert "No predictor data" in text and "No regime labels" in text
    assert not (tmp_path / "predictor_quality.png").exists() and not (tmp_path / "per_regime.png").exists()
    assert "Allocation of buy_and_hold_btc" not in text and 'alt="allocation of buy_and_hold_btc"' in text
    for name in ("equity.png", "drawdown.png", "allocation.png", "interventions.png"):
        with Image.open(tmp_path / name) as img:
            assert img.size == PNG_SIZES[name]
    with pytest.raises(ValueError, match=r"no episode for strategies \['policy'\]"):
        write_report(tmp_path, metrics_document(results, ("2022-01-11", "2022-01-17")), subset)


def test_intervention_days_count_every_binding_rule(results):
    res = results["policy"]
    table = intervention_days(res)
    fired = [rule for rules in res.intervention_rules for rule in rules]
    assert int(table.to_numpy().sum()) == len(fired) > 0
    assert set(table.columns) == set(fired)
    assert {k: int(v) for k, v in table.sum().items()} == {k: v for k, v in res.interventions.items() if v}
    assert intervention_days(results["all_cash"]).empty


def test_a_halted_episode_is_continued_in_cash_to_the_period_end() -> None:
    from agents.evaluation import in_cash_until, ladder_check

    res = EpisodeResult(
        name="x", seed=0, returns=np.array([0.01, -0.25]), equity=np.array([100.0, 101.0, 75.75]),
        timestamps=np.array([0, 3600, 7200]), fees=np.zeros(2), slippage=np.zeros(2), turnover=np.zeros(2),
        n_fills=np.zeros(2, dtype=np.int64), weights=np.zeros((2, 1)), target_weights=np.zeros((2, 1)),
        actions=np.zeros((2, 2)), fills=[[], []], interventions={}, intervention_rules=[(), ()],
        termination_reason="halt",
    )
    out = in_cash_until(res, np.arange(0, 6 * 3600, 3600))
    assert out.n_steps == 5 and out.returns[2:].tolist() == [0.0, 0.0, 0.0]
    assert out.equity[-1] == 75.75 and out.timestamps[-1] == 5 * 3600 and len(out.fills) == 5
    assert in_cash_until(out, np.arange(0, 6 * 3600, 3600)) is out
    check = ladder_check(out, 0.2)
    assert check["largest_bar_loss"] == pytest.approx(0.25) and check["within_ladder"]
    from dataclasses import replace

    two_bars = replace(out, returns=np.array([0.01, -0.1, -0.1, 0.0, 0.0]))  # drawdown 19 %, worst bar 10 %
    assert not ladder_check(two_bars, 0.05)["within_ladder"] and ladder_check(two_bars, 0.1)["within_ladder"]
