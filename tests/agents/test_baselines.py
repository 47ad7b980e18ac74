"""Baselines through ``RiskWrapper(KrakenSpotEnv(...), "spec_a")``: hand-checkable behaviour.

Markets: `make_tiny_market` random walks (hourly vol 0.3 %, 420 bars, episodes starting at
bar 250 so the risk layer's correlation clusters have their 180 returns of history), hand-built
price paths for the rule strategy, and a short stretch of real Kraken data (2022-03/04).

The risk layer applies to baselines as to any policy: under spec_a no asset may exceed 35 %
(``max_asset_weight``), so "buy and hold BTC" holds at most 35 % BTC, and every rise above
the cap is trimmed by the projection (``asset_cap``), not by the policy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents import metrics
from agents.baselines import (
    AllCash,
    BuyAndHold,
    EqualWeightBuyAndHold,
    EqualWeightRebalanced,
    RuleStrategy,
    TopKPredictor,
    decision_state,
    default_baselines,
    keep_action,
    run_policy,
    weights_action,
)
from envs.data.indicators import atr
from envs.data.loaders import load_kraken_dir
from envs.kraken_spot import KrakenSpotEnv
from risk import RiskWrapper
from tests.conftest import make_tiny_market

ASSETS = ("BTC", "ETH", "SOL", "ADA")
NAMES = ("meta_h24_p_up", "meta_h24_exp_return")
START = 250  # first decision bar of the synthetic episodes
CAP = 0.35  # spec_a max_asset_weight (hard cap)
FORCED = {"asset_cap", "vol_sizing", "cluster_cap", "exposure_cap", "halt", "kill_switch", "ladder_size"}


def wrapped(market, signals=None, episode_hours=150, **kw) -> RiskWrapper:
    env = KrakenSpotEnv(market=market, window=24, episode_hours=episode_hours, start_mode="fixed",
                        signals=signals, signal_names=None if signals is None else NAMES, **kw)
    return RiskWrapper(env, "spec_a")


@pytest.fixture(scope="module")
def walk():
    return make_tiny_market(n_bars=420, assets=ASSETS, seed=3, vol=0.003)


def sells_and_buys(result, step):
    return [(f["asset"], f["side"]) for f in result.fills[step]]


# ------------------------------------------------------------------ plumbing
def test_action_helpers_follow_the_env_convention(walk):
    env = KrakenSpotEnv(market=walk, window=24)
    assert np.array_equal(keep_action(4), np.zeros(5))
    a = weights_action(np.array([0.2, 0.1, 0.0, 0.0]))
    assert np.allclose(a, [0.2, 0.1, 0.0, 0.0, 0.7])
    assert np.allclose(env.action_to_weights(a), [0.2, 0.1, 0.0, 0.0])
    assert np.allclose(weights_action(np.zeros(4)), [0, 0, 0, 0, 1])  # all cash
    assert np.allclose(weights_action(np.array([1.0, 1.0, 0, 0]))[:4], [0.5, 0.5, 0, 0])  # sum > 1 is scaled
    with pytest.raises(TypeError, match="expected the env's info dict"):
        decision_state([0.1, 0.2])


def test_run_policy_requires_the_risk_wrapper_and_act_requires_bind(walk):
    with pytest.raises(ValueError, match=r"expected an env wrapped in risk.RiskWrapper \(outermost\)"):
        run_policy(KrakenSpotEnv(market=walk, window=24), AllCash())
    with pytest.raises(RuntimeError, match="call bind"):
        AllCash().act({}, {"weights": np.zeros(4), "t": 0})
    with pytest.raises(ValueError, match=r"asset 'DOGE' is not in the env's universe"):
        BuyAndHold("DOGE").bind(wrapped(walk))
    with pytest.raises(ValueError, match=r"signal 'meta_h24_exp_return' is not among the env's signal_names"):
        TopKPredictor().bind(wrapped(walk))
    with pytest.raises(ValueError, match="every_hours: expected an integer >= 1"):
        EqualWeightRebalanced(0)


# ------------------------------------------------------------------ synthetic market
def test_all_cash_pays_nothing_and_keeps_equity(walk):
    r = run_policy(wrapped(walk), AllCash(), seed=0, options={"start": START})
    assert r.n_steps == 150 and r.termination_reason == "episode_length"
    assert np.all(r.equity == 10_000.0) and r.fees.sum() == 0.0 and r.n_trades == 0
    assert np.all(r.returns == 0.0) and np.all(r.weights == 0.0)
    assert sum(r.interventions.values()) == 0


def test_buy_and_hold_btc_trades_once_on_a_falling_btc():
    """BTC falls 0.3 %/bar (noise 0.1 %), the other assets random-walk: one trade, BTC only.

    Hand check of why no trim follows: the buy targets 35 % of equity E (the cap); the fee (0.4 % of
    0.35 E) leaves equity 0.9986 E at the fill price, i.e. 35.05 % in BTC, above the cap; but BTC
    falls ~0.3 % in that bar: 0.35 x 0.997 / (0.9986 - 0.35 x 0.003) = 0.3498 < 0.35, and lower after.
    """
    base = make_tiny_market(n_bars=420, assets=ASSETS, seed=3, vol=0.003)
    close = base.close.copy()
    close[:, 0] = 30_000.0 * np.exp(np.cumsum(np.random.default_rng(0).normal(-0.003, 0.001, 420)))
    market = make_tiny_market(close, assets=ASSETS, seed=3, vol=0.003)
    r = run_policy(wrapped(market), BuyAndHold("BTC"), seed=0, options={"start": START})
    assert list(r.trade_steps) == [0]  # one trade
    assert {f["asset"] for f in r.fills[0]} == {"BTC"} and all(f["side"] == "buy" for f in r.fills[0])
    assert np.all(r.weights[:, 1:] == 0.0)  # only BTC, ever
    assert r.target_weights[0, 0] == pytest.approx(CAP)  # 100 % proposed, 35 % allowed (asset_cap)
    assert "asset_cap" in r.intervention_rules[0]
    assert np.all(r.actions[1:] == 0.0)  # after the first fill: "keep" actions only
    assert np.all(np.diff(r.weights[:, 0]) < 0)  # the position only shrinks as BTC falls


def test_buy_and_hold_btc_on_a_random_walk_trims_are_the_risk_layers(walk):
    r = run_policy(wrapped(walk), BuyAndHold("BTC"), seed=0, options={"start": START})
    assert r.trade_steps[0] == 0 and np.all(r.actions[1:] == 0.0)  # the policy trades once
    assert np.all(r.weights[:, 1:] == 0.0) and np.all(r.weights[:, 0] > 0.3)
    assert len(r.trade_steps) > 1  # BTC rose at times: the projection trimmed it back to 35 %
    for k in r.trade_steps[1:]:
        assert set(sells_and_buys(r, k)) == {("BTC", "sell")}
        assert FORCED & set(r.intervention_rules[k]), (k, r.intervention_rules[k])
    assert r.weights[:, 0].max() <= CAP + 5e-3  # drift within a bar only


def test_equal_weight_buy_and_hold_buys_once(walk):
    r = run_policy(wrapped(walk), EqualWeightBuyAndHold(), seed=0, options={"start": START})
    assert list(r.trade_steps) == [0]
    assert sorted(sells_and_buys(r, 0)) == sorted((a, "buy") for a in ASSETS)
    assert r.weights[0] == pytest.approx(np.full(4, 0.25), abs=3e-3)  # 1/4 each, minus the fees


def test_equal_weight_rebalanced_trades_only_every_24_hours(walk):
    r = run_policy(wrapped(walk), EqualWeightRebalanced(every_hours=24), seed=0, options={"start": START})
    assert r.trade_steps[0] == 0 and len(r.trade_steps) >= 2
    assert all(k % 24 == 0 for k in r.trade_steps), r.trade_steps
    keep = np.array([k % 24 != 0 for k in range(r.n_steps)])
    assert np.all(r.actions[keep] == 0.0)  # between rebalances: keep
    assert np.allclose(r.actions[~keep][:, :4], 0.25)  # at rebalances: 1/4 each
    # every 6 hours instead: more rebalance points, still only on the schedule
    r6 = run_policy(wrapped(walk), EqualWeightRebalanced(every_hours=6), seed=0, options={"start": START})
    assert all(k % 6 == 0 for k in r6.trade_steps)


def topk_signals(n_bars: int) -> np.ndarray:
    """Expected returns: BTC 2 %, ETH 5 %, SOL -1 %, ADA 3 % until bar START + 48, then SOL 6 %, ETH -2 %."""
    sig = np.empty((n_bars, 4, 2))
    sig[:, :, 0] = 0.6
    sig[:, :, 1] = [0.02, 0.05, -0.01, 0.03]
    sig[START + 48 :, :, 1] = [0.02, -0.02, 0.06, 0.03]
    return sig


def test_topk_holds_the_k_highest_signal_assets(walk):
    policy = TopKPredictor(k=3, every_hours=24)
    r = run_policy(wrapped(walk, topk_signals(420)), policy, seed=0, options={"start": START})
    held = [frozenset(np.array(ASSETS)[w > 1e-9]) for w in r.weights]
    # ranks 1-3 before bar START + 48: ETH 5 %, ADA 3 %, BTC 2 % (SOL -1 % is out)
    assert all(h == {"ETH", "ADA", "BTC"} for h in held[:48])
    assert r.weights[0, [0, 1, 3]] == pytest.approx(np.full(3, 1 / 3), abs=3e-3)
    # the decision at step 48 (bar START + 48) sees SOL 6 %, ADA 3 %, BTC 2 %: ETH (-2 %) is sold
    assert held[48] == {"SOL", "ADA", "BTC"} and all(h == held[48] for h in held[48:])
    assert ("ETH", "sell") in sells_and_buys(r, 48) and ("SOL", "buy") in sells_and_buys(r, 48)
    assert all(k % 24 == 0 for k in r.trade_steps if not FORCED & set(r.intervention_rules[k]))
    assert policy.select(np.array([0.1, 0.3, 0.3, 0.2]), np.ones(4, bool)).tolist() == [1, 2, 3]  # ties: lower index


def test_topk_no_trade_band_and_min_signal(walk):
    sig = topk_signals(420)
    small = TopKPredictor(k=3, no_trade_band=0.5)  # every change from all-cash (1/3) is inside the band
    r = run_policy(wrapped(walk, sig), small, seed=0, options={"start": START})
    assert r.n_trades == 0
    picky = TopKPredictor(k=3, min_signal=0.025)  # only ETH 5 % and ADA 3 % clear 2.5 %; the third slot stays cash
    r = run_policy(wrapped(walk, sig), picky, seed=0, options={"start": START}, max_steps=24)
    assert {ASSETS[i] for i in np.flatnonzero(r.weights[0] > 0)} == {"ETH", "ADA"}
    assert r.weights[0].sum() == pytest.approx(2 / 3, abs=5e-3)


# ------------------------------------------------------------------ the rule strategy on hand-built paths
T_RULE, S_RULE = 300, 230


def rule_market(path: str):
    """ETH, SOL, BTC zig-zag ±0.1 % around 100, 200, 300 (high/low ±0.2 %) until bar 230.

    BTC after bar 230: ``stop``: -0.3 % (bar 231), -0.01 %/bar (232-234), then -0.3 %/bar;
    ``take``: +0.4 %/bar; ``flat``: -0.3 % (bar 231), then -0.01 %/bar. The -0.3 % first bar keeps
    the position under the 35 % cap after the entry's fee: a buy of 0.35 E pays 0.0014 E, so the
    weight after a return r is 0.35 (1 + r) / (0.9986 + 0.35 r), below 0.35 only for r < -0.22 %. Signals (p_up, exp_return): ETH (0.70, 0.5 %) fails the fee
    threshold 0.8 %; SOL (0.52, 3 %) fails p_up > 0.55; BTC (0.70, 3 %) passes both.
    """
    zig = 1.0 + 0.001 * (-1.0) ** np.arange(T_RULE)
    close = np.stack([100 * zig, 200 * zig, 300 * zig], axis=1)
    btc = close[:, 2]
    after = np.arange(1, T_RULE - S_RULE)
    if path == "stop":
        steps = np.array([0.997] + [0.9999] * 3 + [0.997] * (len(after) - 4))
        btc[S_RULE + 1 :] = btc[S_RULE] * np.cumprod(steps)
    elif path == "take":
        btc[S_RULE + 1 :] = btc[S_RULE] * 1.004**after
    else:
        btc[S_RULE + 1 :] = btc[S_RULE] * 0.997 * 0.9999 ** (after - 1)
    market = make_tiny_market(close, assets=("ETH", "SOL", "BTC"), high=close * 1.002, low=close * 0.998, seed=1)
    sig = np.full((T_RULE, 3, 2), np.nan)
    sig[:, 0] = [0.70, 0.005]
    sig[:, 1] = [0.52, 0.03]
    sig[:, 2] = [0.70, 0.03]
    return market, sig


def run_rule(path: str, sig_after: tuple[float, float] | None, later: tuple[int, tuple[float, float]] | None = None,
             **params):
    """Signals as in `rule_market`; from bar 232 on BTC's are ``sig_after`` (None = missing), and from bar
    ``later[0]`` on ``later[1]``. ETH and SOL have no signal after bar 231."""
    market, sig = rule_market(path)
    sig[S_RULE + 2 :, 2] = np.nan if sig_after is None else sig_after
    if later is not None:
        sig[later[0] :, 2] = later[1]
    sig[S_RULE + 2 :, :2] = np.nan
    policy = RuleStrategy(**params)
    env = wrapped(market, sig, episode_hours=40)
    return policy, run_policy(env, policy, seed=0, options={"start": S_RULE}), market


def test_rule_strategy_enters_only_when_both_thresholds_pass_and_exits_at_the_stop():
    policy, r, market = run_rule("stop", None)
    assert policy.entry_threshold == pytest.approx(0.008)  # 2 x 0.40 % taker fee, min_edge 0
    # the entry: BTC only (ETH's 0.5 % < 0.8 % fee threshold, SOL's p_up 0.52 < 0.55), at the first decision
    entry = policy.events[0]
    assert (entry.t, entry.asset, entry.kind) == (S_RULE, "BTC", "entry")
    assert sells_and_buys(r, 0) == [("BTC", "buy")]
    # ATR(14) at bar 230 = 1.2003 (true ranges of the ±0.1 % zig-zag with ±0.2 % bars, at 300 USD);
    # size 2 % / (2 x 1.2003 / 300.3) = 2.50 of equity -> 1.0 after fitting into cash -> 35 % by the risk cap
    a = float(atr(market, 14)[S_RULE, 2])
    assert a == pytest.approx(1.2003, abs=1e-9)
    assert entry.weight == pytest.approx(1.0) and r.weights[0, 2] == pytest.approx(CAP, abs=2e-3)
    # stop = 300.3 - 2 x 1.2003 = 297.8994. Closes: 231 299.40 (-0.3 %), 232-234 299.37, 299.34, 299.31
    # (-0.01 %/bar), then -0.3 %/bar: 235 298.41, 236 297.52 <= 297.8994 -> the stop fires at decision bar 236
    stop = market.close[S_RULE, 2] - 2 * a
    assert stop == pytest.approx(297.8994, abs=1e-9)
    assert market.close[S_RULE + 5, 2] > stop >= market.close[S_RULE + 6, 2]
    exits = [e for e in policy.events if e.kind != "entry"]
    assert [(e.t, e.asset, e.kind) for e in exits] == [(236, "BTC", "stop_loss")]
    # ... and is sold inside the next bar: the step from decision 236 (step 6) sells BTC, nothing after
    assert list(r.trade_steps) == [0, 6] and sells_and_buys(r, 6) == [("BTC", "sell")]
    assert np.all(r.weights[6:] == 0.0)
    assert r.weights[:, :2].max() == 0.0  # ETH and SOL never bought


@pytest.mark.parametrize(
    ("path", "sig_after", "params", "kind", "t_exit"),
    [
        # +0.4 %/bar: take-profit at 300.3 + 4 x 1.2003 = 305.1012; close(234) = 300.3 x 1.004^4 = 305.13 (233: 303.92)
        ("take", None, {}, "take_profit", 234),
        # flat: held max_hold_hours = 5 decisions after the entry at 230 -> exit at 235
        ("flat", None, {"max_hold_hours": 5}, "time_limit", 235),
        # from bar 232 the meta-learner turns: p_up 0.30, E[r] -3 % -> signal reversal at 232
        ("flat", (0.30, -0.03), {}, "signal_reversal", 232),
    ],
)
def test_rule_strategy_exit_reasons(path, sig_after, params, kind, t_exit):
    policy, r, _ = run_rule(path, sig_after, **params)
    exits = [(e.t, e.kind) for e in policy.events if e.kind != "entry"]
    assert exits == [(t_exit, kind)]
    k = t_exit - S_RULE
    assert ("BTC", "sell") in sells_and_buys(r, k) and np.all(r.weights[k:] == 0.0)


def test_rule_strategy_stop_is_held_by_the_cost_gate_while_the_signal_stays_bullish():
    """The risk layer's cost gate compares a sale's expected gain (-weight x E[r] = -0.35 x 3 %) with its
    cost: with the 24 h expected return still +3 % it holds the position although the stop fired.
    The policy keeps requesting the exit; it executes only once the signal no longer argues against it."""
    policy, r, _ = run_rule("stop", (0.70, 0.03))
    assert [(e.t, e.kind) for e in policy.events if e.kind != "entry"] == [(236, "stop_loss")]
    assert np.all(r.actions[6:, 2] == 0.0)  # exit requested at every decision from 236 on
    assert all("cost_gate" in r.intervention_rules[k] for k in range(6, r.n_steps))
    assert np.all(r.weights[6:, 2] > 0.3) and list(r.trade_steps) == [0]


def test_rule_strategy_cooldown_after_an_exit():
    """Bearish at 232-233 (exit at 232, sold in bar 233), bullish again from 234: re-entry waits out the
    cooldown, counted from the decision that saw the position gone (233): 233 + 24 = 257."""
    bearish, bullish = (0.30, -0.03), (0.70, 0.03)
    policy, r, _ = run_rule("flat", bearish, later=(234, bullish), cooldown_hours=24)
    assert [(e.t, e.kind) for e in policy.events] == [(230, "entry"), (232, "signal_reversal"), (257, "entry")]
    assert np.all(r.weights[2 : 257 - S_RULE, 2] == 0.0) and r.weights[257 - S_RULE, 2] > 0.3
    policy, _r, _ = run_rule("flat", bearish, later=(234, bullish), cooldown_hours=0)
    assert [(e.t, e.kind) for e in policy.events][:3] == [(230, "entry"), (232, "signal_reversal"), (234, "entry")]


def test_rule_strategy_retries_an_entry_the_risk_layer_refused():
    """E[r] = 0.801 % clears the policy's fee-only threshold (0.8 %) but not the cost gate's
    (round-trip fee + spread + impact): every entry is refused, dropped at the next decision and
    re-proposed; nothing trades. ``min_edge`` is the knob that covers slippage."""
    market, sig = rule_market("flat")
    sig[:, 2] = [0.70, 0.00801]
    sig[:, :2] = np.nan
    policy = RuleStrategy()
    r = run_policy(wrapped(market, sig, episode_hours=10), policy, seed=0, options={"start": S_RULE})
    assert [(e.t, e.kind) for e in policy.events] == [(S_RULE + k, "entry") for k in range(10)]
    assert r.n_trades == 0 and all("cost_gate" in rules for rules in r.intervention_rules)
    picky = RuleStrategy(min_edge=0.001)  # 0.9 %: no entry proposed at all
    r = run_policy(wrapped(market, sig, episode_hours=10), picky, seed=0, options={"start": S_RULE})
    assert picky.entry_threshold == pytest.approx(0.009) and picky.events == [] and r.n_trades == 0


# ------------------------------------------------------------------ determinism and summary
def test_run_policy_is_deterministic_and_summarises(walk):
    sig = topk_signals(420)
    a = run_policy(wrapped(walk, sig), TopKPredictor(k=2), seed=5, options={"start": START})
    b = run_policy(wrapped(walk, sig), TopKPredictor(k=2), seed=5, options={"start": START})
    for field in ("returns", "equity", "timestamps", "fees", "weights", "actions"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert a.interventions == b.interventions and a.fills == b.fills
    s = a.summary(n_boot=100)
    assert s["n_periods"] == 150 and s["n_trades"] == a.n_trades and s["fees_paid"] == pytest.approx(a.fees.sum())
    # equity path and returns agree: total return = E_end / E_0 - 1
    assert s["total_return"] == pytest.approx(a.equity[-1] / a.equity[0] - 1, rel=1e-12)
    assert s["turnover"] == pytest.approx(a.turnover.sum())
    json.dumps(metrics.json_safe(s), allow_nan=False)


# ------------------------------------------------------------------ real Kraken data
def momentum_signals(market) -> np.ndarray:
    """Stand-in for the meta-learner (no prediction store in a unit test): causal 24 h momentum.

    exp_return = log(close_t / close_{t-24}); p_up = logistic(that / (hourly vol x sqrt(24))).
    """
    c = market.close
    mom = np.full(c.shape, np.nan)
    mom[24:] = np.log(c[24:] / c[:-24])
    lr = np.full(c.shape, np.nan)
    lr[1:] = np.log(c[1:] / c[:-1])
    vol = np.full(c.shape, np.nan)
    for t in range(168, c.shape[0]):
        vol[t] = np.nanstd(lr[t - 167 : t + 1], axis=0)
    p_up = 1.0 / (1.0 + np.exp(-mom / (vol * np.sqrt(24.0))))
    return np.stack([p_up, mom], axis=2)


@pytest.fixture(scope="module")
def kraken(shared_data: Path):
    return load_kraken_dir(shared_data / "kraken" / "ohlcvt_1h", start="2022-02-15", end="2022-04-30T23:00")


def kraken_env(market, signals=None) -> RiskWrapper:
    env = KrakenSpotEnv(market=market, window=24, episode_hours=500, start_mode="fixed", signals=signals,
                        signal_names=None if signals is None else NAMES)
    return RiskWrapper(env, "spec_a")


def test_every_baseline_runs_on_real_kraken_data(kraken):
    """April 2022 (500 hours from 2022-04-01), BCH/ETH/LTC/BTC/XRP. The signal-free baselines run on the
    env without signals (the cost gate uses its no-trade band); the predictor ones on the env with signals."""
    sig = momentum_signals(kraken)
    plain, with_signals = kraken_env(kraken), kraken_env(kraken, sig)
    results, policies = {}, {}
    for policy in default_baselines():
        env = with_signals if isinstance(policy, RuleStrategy | TopKPredictor) else plain
        r = run_policy(env, policy, seed=0, options={"start": "2022-04-01"})
        results[r.name], policies[r.name] = r, policy
        assert r.n_steps == 500 and np.isfinite(r.returns).all()
        assert r.weights.max() <= CAP + 0.02 and r.weights.sum(axis=1).max() <= 1.0 + 1e-9
        assert r.timestamps[0] == 1648771200  # 2022-04-01 00:00 UTC
        s = metrics.json_safe(r.summary(n_boot=100))
        assert s["max_drawdown"] is not None and 0.0 <= s["max_drawdown"] < 0.2  # the ladder halts at 20 %
    assert set(results) == {"all_cash", "buy_and_hold_btc", "equal_weight_buy_and_hold", "equal_weight_daily",
                            "rule_strategy", "top3_predictor"}
    cash = results["all_cash"]
    assert np.all(cash.equity == cash.equity[0]) and cash.fees.sum() == 0.0
    btc = results["buy_and_hold_btc"]
    btc_i = kraken.assets.index("BTC")
    others = [i for i in range(kraken.n_assets) if i != btc_i]
    assert btc.trade_steps[0] == 0 and np.all(btc.actions[1:] == 0.0)  # the policy trades once
    assert np.all(btc.weights[:, others] == 0.0) and btc.weights[:, btc_i].min() > 0.3
    assert all(FORCED & set(btc.intervention_rules[k]) for k in btc.trade_steps[1:])  # later: risk trims only
    ew = results["equal_weight_daily"]
    assert all(FORCED & set(ew.intervention_rules[k]) for k in ew.trade_steps if k % 24)
    top = results["top3_predictor"]
    assert top.n_trades > 0
    assert all(k % 24 == 0 or FORCED & set(top.intervention_rules[k]) for k in top.trade_steps)
    # the rule strategy entered only where both thresholds passed on the (stand-in) signals at that bar
    entries = [e for e in policies["rule_strategy"].events if e.kind == "entry"]
    assert entries
    for e in entries:
        i = kraken.assets.index(e.asset)
        assert sig[e.t, i, 0] > 0.55 and sig[e.t, i, 1] > 0.008, e


def test_with_signals_the_cost_gate_delays_buy_and_hold(kraken):
    """On an env carrying expected returns, the risk layer's cost gate admits a buy only when its
    24 h expected return beats the round-trip cost (> 0.8 %): buy-and-hold waits for that bar."""
    sig = momentum_signals(kraken)
    r = run_policy(kraken_env(kraken, sig), BuyAndHold("BTC"), seed=0, options={"start": "2022-04-01"})
    btc_i = kraken.assets.index("BTC")
    first = int(r.trade_steps[0])
    assert first > 0 and all("cost_gate" in r.intervention_rules[k] for k in range(first))
    t0 = int(np.searchsorted(kraken.timestamps, r.timestamps[0]))
    assert sig[t0 + first, btc_i, 1] > 0.008  # the decision bar of the first buy: momentum above the cost
    assert np.all(sig[t0 : t0 + first, btc_i, 1] < 0.0082 + 0.01)
