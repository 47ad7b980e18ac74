"""``action_mode="execution"`` (issue 10): a per-asset urgency next to the target weights.

Urgency > 0 sends that asset's new order of the step as a market order at the next open
(taker); <= 0 or NaN leaves it to ``order_type`` (limit-first by default). Checked here:

- the three twins (numba kernel, numpy ledger, exact Decimal reference) agree on random
  actions with random urgencies, mixing urgent and limit assets in one step, over random
  markets with participation caps, missing bars, both fallbacks and ttl 1-3 (single env and
  vector env with holding rows);
- urgency > 0 everywhere equals ``order_type="market"`` and urgency <= 0 everywhere equals
  the default weights mode, bit for bit;
- hand-worked bars: a market fill is taker at the open plus slippage, a limit fill maker at
  its limit; a "keep" action sends no urgent order and a resting limit keeps its rules;
- action shapes, ``check_env`` with and without `RiskWrapper`, the vector env per row, and
  the risk wrappers passing the urgencies through.
"""

from __future__ import annotations

from decimal import Decimal

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.config import EnvConfig
from envs.errors import ConfigError
from envs.execution.orders import REASONS
from envs.execution.slippage import slippage_rate
from envs.kraken_spot import KrakenSpotEnv
from envs.vector import KrakenSpotVectorEnv
from risk.wrapper import RiskVectorWrapper, RiskWrapper
from tests.conftest import env_scenario, make_tiny_market, random_case
from tests.env.twins import NumpyStepper, decimal_twin, numpy_fills, numpy_twin

scenario = env_scenario(4, order_type=st.sampled_from(["limit", "limit", "limit", "market"]))  # urgency acts on limits


def build(s: dict, n_bars: int = 40, **extra) -> tuple[EnvConfig, object, np.ndarray]:
    """Random market, execution-mode config and (n_bars, 2N+1) actions with mixed urgencies."""
    market, fields, rng = random_case(s, n_bars)
    n = market.n_assets
    cfg = EnvConfig(**{**fields, "action_mode": "execution", **extra})
    actions = rng.uniform(-1, 1, size=(n_bars, 2 * n + 1))
    actions[rng.random(n_bars) < 0.2, : n + 1] = 0.0  # "keep current weights" (urgencies ignored)
    actions[rng.random(n_bars) < 0.1, :n] = 0.0  # all cash
    actions[:, n + 1 :][rng.random((n_bars, n)) < 0.1] = np.nan  # NaN urgency: not urgent
    return cfg, market, actions


def fills_of(out, row: int, assets: tuple[str, ...]) -> list[tuple]:
    return [(assets[f["asset"]], f["side"], f["qty"], f["price"], f["fee"], f["liquidity"])
            for f in numpy_fills(out, row)]


def as_tuples(info: dict) -> tuple[list, list]:
    fills = [(f["asset"], f["side"], f["qty"], f["price"], f["fee"], f["liquidity"]) for f in info["fills"]]
    rejected = [(r["asset"], r["reason"], r["qty_unfilled"]) for r in info["rejected"]]
    return fills, rejected


# ----------------------------------------------------------------- config and shapes
def test_action_mode_is_a_validated_choice_and_sets_the_action_space():
    with pytest.raises(ConfigError, match=r"env\.action_mode: expected one of \['weights', 'execution'\]"):
        EnvConfig(action_mode="urgent")
    market = make_tiny_market(n_bars=40, assets=("BTC", "ETH", "SOL"))
    assert KrakenSpotEnv(market, window=4).action_space.shape == (4,)
    env = KrakenSpotEnv(market, window=4, action_mode="execution")
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (7,), np.float32)
    venv = KrakenSpotVectorEnv(2, market=market, window=4, action_mode="execution")
    assert venv.single_action_space.shape == (7,) and venv.action_space.shape == (2, 7)


def test_wrong_action_shapes_raise_naming_both_shapes():
    market = make_tiny_market(n_bars=40, assets=("BTC", "ETH", "SOL"))
    env = KrakenSpotEnv(market, window=4, action_mode="execution")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected shape \(7,\).*urgency.*got shape \(4,\)"):
        env.step(np.ones(4))  # a weights-mode action
    venv = KrakenSpotVectorEnv(2, market=market, window=4, action_mode="execution")
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected shape \(2, 7\).*got shape \(2, 4\)"):
        venv.step(np.ones((2, 4)))
    wrapped = RiskWrapper(KrakenSpotEnv(market, window=4, action_mode="execution"))
    wrapped.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected shape \(7,\).*got shape \(4,\)"):
        wrapped.step(np.ones(4))
    plain = RiskWrapper(KrakenSpotEnv(market, window=4))
    plain.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected shape \(4,\).*got shape \(7,\)"):
        plain.step(np.ones(7))
    rv = RiskVectorWrapper(KrakenSpotVectorEnv(2, market=market, window=4, action_mode="execution"))
    rv.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected shape \(2, 7\), got \(2, 4\)"):
        rv.step(np.ones((2, 4)))


def test_action_to_weights_reads_the_weights_part_in_execution_mode():
    market = make_tiny_market(n_bars=40, assets=("BTC", "ETH", "SOL"))
    env = KrakenSpotEnv(market, window=4, action_mode="execution")
    env.reset(seed=0)
    weights_part = np.array([0.2, 0.5, 0.1, 0.2])
    full = np.concatenate([weights_part, [1.0, -1.0, np.nan]])
    expected = np.array([0.2, 0.5, 0.1])
    np.testing.assert_allclose(env.action_to_weights(weights_part), expected, rtol=1e-15)
    assert np.array_equal(env.action_to_weights(full), env.action_to_weights(weights_part))
    assert env.weights_to_action(expected).shape == (4,)
    venv = KrakenSpotVectorEnv(2, market=market, window=4, action_mode="execution")
    venv.reset(seed=0)
    assert np.array_equal(venv.action_to_weights(np.stack([full, full])),
                          venv.action_to_weights(np.stack([weights_part, weights_part])))


def test_check_env_passes_in_execution_mode_with_and_without_the_risk_wrapper():
    market = make_tiny_market(n_bars=60, assets=("BTC", "ETH"))
    check_env(KrakenSpotEnv(market, window=4, episode_hours=20, action_mode="execution"), skip_render_check=True)
    check_env(RiskWrapper(KrakenSpotEnv(market, window=4, episode_hours=20, action_mode="execution")),
              skip_render_check=True)


# ----------------------------------------------------------------- three twins on random cases
@pytest.mark.equivalence
@settings(derandomize=True, max_examples=80, deadline=None)
@given(scenario)
def test_kernel_equals_numpy_ledger_bit_for_bit_with_random_urgencies(s):
    cfg, market, actions = build(s)
    env = KrakenSpotEnv(market, cfg)
    env.reset(seed=s["seed"] % 997)
    ref = NumpyStepper(env.core, cfg, 1)
    for k, a in enumerate(actions):
        action = a.astype(np.float32) if k % 2 else a
        target, out, reward, term, trunc, pf = ref.step(np.asarray(action, dtype=np.float64)[None, :])
        obs, r, terminated, truncated, info = env.step(action)
        assert np.array_equal(info["target_weights"], target[0])
        assert info["equity"] == out.equity[0] and info["cash"] == ref.led.cash[0]
        assert info["fees"] == out.fees[0] and info["slippage"] == out.slippage[0]
        fills, rejected = as_tuples(info)
        assert fills == fills_of(out, 0, market.assets)
        assert rejected == [(market.assets[i], REASONS[code], q) for i, code, q in out.records(0)]
        assert np.array_equal(env.snapshot().units, ref.led.units[0])
        assert np.array_equal(env.core.ledger.pend[0], ref.led.pend[0])
        assert np.array_equal(env.core.ledger.age[0], ref.led.age[0])
        assert r == reward[0] or (r != r and reward[0] != reward[0])
        assert np.array_equal(obs["portfolio"], pf[0])
        assert (terminated, truncated) == (bool(term[0]), bool(trunc[0]))
        if terminated or truncated:
            break


@pytest.mark.equivalence
@settings(derandomize=True, max_examples=25, deadline=None)
@given(scenario)
def test_vector_kernel_equals_numpy_ledger_with_holding_rows_and_random_urgencies(s):
    cfg, market, actions = build(s)
    venv = KrakenSpotVectorEnv(3, market=market, config=cfg)
    venv.reset(seed=s["seed"] % 991)
    ref = NumpyStepper(venv.core, cfg, 3)
    rng = np.random.default_rng(s["seed"])
    n = market.n_assets
    for a in actions:
        batch = np.stack([a, rng.uniform(-1, 1, a.shape), np.roll(a, 1)])
        batch[rng.random(3) < 0.3, : n + 1] = 0.0  # some rows keep (their urgencies must not act)
        target, out, reward, term, trunc, pf = ref.step(batch)
        obs, r, terminated, truncated, info = venv.step(batch)
        assert np.array_equal(info["target_weights"], target)
        assert np.array_equal(info["equity"], out.equity) and np.array_equal(info["fees"], out.fees)
        assert np.array_equal(info["slippage"], out.slippage)
        assert np.array_equal(venv.core.ledger.units, ref.led.units)
        assert np.array_equal(r, reward, equal_nan=True) and np.array_equal(obs["portfolio"], pf)
        for row in range(3):
            mine = [(f["asset"], f["side"], f["qty"], f["price"], f["fee"], f["liquidity"]) for f in info["fills"][row]]
            assert mine == fills_of(out, row, market.assets)
            assert [(x["asset"], x["reason"], x["qty_unfilled"]) for x in info["rejected"][row]] == [
                (market.assets[i], REASONS[code], q) for i, code, q in out.records(row)
            ]
        assert np.array_equal(terminated, term) and np.array_equal(truncated, trunc)
        if terminated.any() or truncated.any():
            break


@pytest.mark.equivalence
@settings(derandomize=True, max_examples=40, deadline=None)
@given(scenario)
def test_kernel_agrees_with_the_exact_decimal_reference_with_random_urgencies(s):
    cfg, market, actions = build(s, n_bars=30)
    env = KrakenSpotEnv(market, cfg)
    env.reset(seed=2)
    core, n = env.core, market.n_assets
    ref = decimal_twin(env)
    for a in actions:
        w, hold = core.action_to_weights(a[None, :])
        exact = ref.step(None if hold[0] else w[0], a[n + 1 :])
        _, _, terminated, truncated, info = env.step(a)
        mine = sorted((f["asset"], f["side"], f["liquidity"]) for f in info["fills"])
        assert mine == sorted((market.assets[f.asset], f.side, f.liquidity) for f in exact)
        assert abs(Decimal(info["equity"]) - ref.equity) <= Decimal("1e-9") * ref.equity
        for got, want in zip(env.snapshot().units, ref.units, strict=True):
            assert abs(Decimal(got) - want) <= Decimal("1e-9") * max(want, Decimal("1e-6"))
        assert [(r["asset"], r["reason"]) for r in info["rejected"]] == [
            (market.assets[i], reason) for i, reason, _ in ref.shortfalls
        ]
        if terminated or truncated:
            break


# ----------------------------------------------------------------- the two limits of the mode
@pytest.mark.equivalence
@settings(derandomize=True, max_examples=40, deadline=None)
@given(scenario)
def test_urgency_on_every_asset_equals_market_orders_bit_for_bit(s):
    cfg, market, actions = build(s, order_type="limit")
    n = market.n_assets
    actions[:, n + 1 :] = np.where(np.arange(len(actions))[:, None] % 2, 1.0, 1e-9)  # any u > 0
    urgent = KrakenSpotEnv(market, cfg)
    plain = KrakenSpotEnv(market, EnvConfig(**{**cfg.__dict__, "action_mode": "weights", "order_type": "market"}))
    urgent.reset(seed=3)
    plain.reset(seed=3)
    for a in actions:
        o1, r1, te1, tr1, i1 = urgent.step(a)
        o2, r2, te2, tr2, i2 = plain.step(a[: n + 1])
        assert as_tuples(i1) == as_tuples(i2)
        assert all(f["liquidity"] == "taker" for f in i1["fills"])
        for key in ("equity", "cash", "fees", "slippage", "turnover", "drawdown"):
            assert i1[key] == i2[key], key
        assert np.array_equal(urgent.snapshot().units, plain.snapshot().units)
        assert r1 == r2 and (te1, tr1) == (te2, tr2) and np.array_equal(o1["portfolio"], o2["portfolio"])
        if te1 or tr1:
            break


@pytest.mark.equivalence
@settings(derandomize=True, max_examples=40, deadline=None)
@given(scenario)
def test_urgency_at_or_below_zero_everywhere_equals_the_weights_mode_bit_for_bit(s):
    cfg, market, actions = build(s)
    n = market.n_assets
    urg = actions[:, n + 1 :]
    actions[:, n + 1 :] = np.where(np.isnan(urg), np.nan, -np.abs(urg))  # <= 0 or NaN
    actions[::5, n + 1 :] = 0.0
    execution = KrakenSpotEnv(market, cfg)
    weights = KrakenSpotEnv(market, EnvConfig(**{**cfg.__dict__, "action_mode": "weights"}))
    execution.reset(seed=4)
    weights.reset(seed=4)
    for a in actions:
        o1, r1, te1, tr1, i1 = execution.step(a)
        o2, r2, te2, tr2, i2 = weights.step(a[: n + 1])
        assert as_tuples(i1) == as_tuples(i2)
        for key in ("equity", "cash", "fees", "slippage", "turnover", "drawdown"):
            assert i1[key] == i2[key], key
        assert np.array_equal(execution.core.ledger.pos, weights.core.ledger.pos)
        assert r1 == r2 and (te1, tr1) == (te2, tr2) and np.array_equal(o1["portfolio"], o2["portfolio"])
        if te1 or tr1:
            break


# ----------------------------------------------------------------- hand-worked bars
EXACT = dict(window=1, start_mode="fixed", episode_hours=10, spread_floor=0.0, participation_cap=None,
             maker_fee=0.0016, taker_fee=0.0026, action_mode="execution")


def two_asset_env(**cfg) -> KrakenSpotEnv:
    """A0 and A1 at 100, flat; bar 1 opens at 101 and trades down to 99 (through a buy limit at 100)."""
    close = np.full((6, 2), 100.0)
    open_ = close.copy()
    open_[1] = 101.0
    high, low = np.maximum(open_, close), np.minimum(open_, close)
    low[1] = 99.0
    market = make_tiny_market(close, assets=("A0", "A1"), open=open_, high=high, low=low,
                              spread=np.full_like(close, 0.001))
    env = KrakenSpotEnv(market, EnvConfig(**{**EXACT, **cfg}))
    env.reset(seed=0)
    return env


def test_urgent_asset_fills_taker_at_the_open_and_the_other_maker_at_its_limit_in_every_twin():
    """Buy 25 % of each: A0 urgent (market at the open 101 + slippage, taker 0.26 %), A1 a limit at 100 (maker)."""
    env = two_asset_env()
    action = np.concatenate([env.weights_to_action(np.array([0.25, 0.25])), [0.7, -0.3]])
    np_twin, dec_twin = numpy_twin(env), decimal_twin(env)
    a = env.core.arrays
    _, _, _, _, info = env.step(action)
    _, out, *_ = np_twin.step(action[None, :])
    exact = dec_twin.step(np.array([0.25, 0.25]), action[3:])
    rate = float(slippage_rate(a.half_spread[0, :1], a.sigma[0, :1], np.array([25.0 * 101.0]),
                               a.dollar_volume[1, :1], env.config.impact_k, env.config.max_slippage)[0])
    assert rate > 0.0
    taker_px = 101.0 * (1.0 + rate)
    for fills in (info["fills"], numpy_fills(out)):
        urgent_fill, limit_fill = fills  # time order: the market order at the open first
        assert urgent_fill["liquidity"] == "taker" and urgent_fill["side"] == "buy"
        assert urgent_fill["qty"] == 25.0 and urgent_fill["price"] == pytest.approx(taker_px, rel=1e-14)
        assert urgent_fill["fee"] == pytest.approx(0.0026 * 25.0 * taker_px, rel=1e-14)
        assert limit_fill["liquidity"] == "maker" and limit_fill["qty"] == 25.0 and limit_fill["price"] == 100.0
        assert limit_fill["fee"] == pytest.approx(0.0016 * 2_500.0, rel=1e-14)
    assert [(f.asset, f.liquidity) for f in exact] == [(0, "taker"), (1, "maker")]
    assert float(exact[0].price) == pytest.approx(taker_px, rel=1e-14)
    assert info["slippage"] == pytest.approx(25.0 * 101.0 * rate, rel=1e-14)
    assert not info["rejected"] and not env.core.ledger.pend.any()


def test_an_urgent_order_never_rests_and_a_keep_action_sends_no_urgent_order():
    """ttl 3, no trade-through: the limit on A1 rests; A0's urgent order is done after its bar.

    The next step is "keep" with urgency 1 everywhere: no new order, the resting A1 limit
    stays a limit (no taker fill at the open) and ages.
    """
    env = two_asset_env(limit_ttl_bars=3)
    env.reset(options={"start": 1})  # decision at bar 1 (close 100), execution in bar 2 (no trade-through)
    action = np.concatenate([env.weights_to_action(np.array([0.25, 0.25])), [1.0, 0.0]])
    twin = numpy_twin(env)
    _, _, _, _, info = env.step(action)
    twin.step(action[None, :])
    assert [(f["asset"], f["liquidity"]) for f in info["fills"]] == [("A0", "taker")]
    pend = env.core.ledger.pend[0]
    assert pend[0] == 0.0 and pend[1] == 25.0 and env.core.ledger.age[0, 1] == 1
    keep = np.array([0.0, 0.0, 0.0, 1.0, 1.0])
    _, _, _, _, info = env.step(keep)
    twin.step(keep[None, :])
    assert info["fills"] == [] and info["rejected"] == []
    assert env.core.ledger.pend[0, 1] == 25.0 and env.core.ledger.age[0, 1] == 2
    assert np.array_equal(env.core.ledger.pend, twin.led.pend) and np.array_equal(env.core.ledger.age, twin.led.age)


def test_an_urgent_order_without_a_bar_is_recorded_as_no_bar_and_dropped():
    close = np.full((6, 2), 100.0)
    tradable = np.ones_like(close, dtype=bool)
    tradable[1, 0] = False  # A0 has no bar at t+1
    market = make_tiny_market(close, assets=("A0", "A1"), tradable=tradable, spread=np.zeros_like(close))
    env = KrakenSpotEnv(market, EnvConfig(**{**EXACT, "limit_ttl_bars": 3}))
    env.reset(seed=0)
    twin, dec = numpy_twin(env), decimal_twin(env)
    action = np.concatenate([env.weights_to_action(np.array([0.25, 0.0])), [1.0, 1.0]])
    _, _, _, _, info = env.step(action)
    _, out, *_ = twin.step(action[None, :])
    dec.step(np.array([0.25, 0.0]), action[3:])
    assert info["fills"] == []
    assert [(r["asset"], r["reason"], r["qty_unfilled"]) for r in info["rejected"]] == [("A0", "no_bar", 25.0)]
    assert out.records(0) == [(0, REASONS.index("no_bar"), 25.0)]
    assert [(i, reason) for i, reason, _ in dec.shortfalls] == [(0, "no_bar")]
    assert not env.core.ledger.pend.any()


# ----------------------------------------------------------------- vector env and risk wrappers
def test_vector_env_equals_single_envs_per_row_in_execution_mode():
    market = make_tiny_market(n_bars=80, assets=("BTC", "ETH", "SOL"), seed=5)
    kw = dict(window=4, episode_hours=30, action_mode="execution", participation_cap=0.001, limit_ttl_bars=2)
    venv = KrakenSpotVectorEnv(3, market=market, **kw)
    singles = [KrakenSpotEnv(market, **kw) for _ in range(3)]
    venv.reset(seed=11)
    for i, e in enumerate(singles):
        e.reset(seed=11 + i)
    rng = np.random.default_rng(0)
    for _ in range(25):
        acts = rng.uniform(-1, 1, size=(3, 7))
        obs, r, te, tr, info = venv.step(acts)
        for i, e in enumerate(singles):
            o, ri, tei, tri, ii = e.step(acts[i])
            assert r[i] == ri and info["equity"][i] == ii["equity"] and np.array_equal(obs["portfolio"][i],
                                                                                       o["portfolio"])
            assert info["fills"][i] == ii["fills"] and info["rejected"][i] == ii["rejected"]
            assert (bool(te[i]), bool(tr[i])) == (tei, tri)
        if te.any() or tr.any():
            break


def risk_market():
    """Enough hourly history for the risk layer's ATR and correlation estimates."""
    return make_tiny_market(n_bars=160, assets=("BTC", "ETH"), seed=3, vol=0.005)


RISK_KW = dict(window=4, episode_hours=20, action_mode="execution", participation_cap=None)


def test_risk_wrapper_passes_the_urgency_through_so_an_urgent_buy_fills_taker_at_the_open():
    market = risk_market()
    wrapped = RiskWrapper(KrakenSpotEnv(market, **RISK_KW))
    bare = KrakenSpotEnv(market, **RISK_KW)
    wrapped.reset(seed=0, options={"start": 100})
    bare.reset(seed=0, options={"start": 100})
    action = np.array([0.1, 0.1, 0.8, 0.9, -0.9])  # BTC urgent, ETH limit-first
    _, _, _, _, info = wrapped.step(action)
    executed = info["risk"]["executed"]
    assert executed[0] > 0.0 and executed[1] > 0.0
    btc = [f for f in info["fills"] if f["asset"] == "BTC"]
    assert [(f["side"], f["liquidity"]) for f in btc] == [("buy", "taker")]
    assert btc[0]["price"] > market.open[101, 0]  # the open of t+1 plus half-spread and impact
    for f in (f for f in info["fills"] if f["asset"] == "ETH"):  # limit-first: maker at the limit or the fallback
        limit_px = wrapped.unwrapped.core.arrays.price[100, 1]  # offset 0: the decision close
        assert f["price"] == limit_px if f["liquidity"] == "maker" else f["price"] > market.close[101, 1]
    np.testing.assert_array_equal(info["risk"]["action"], action)
    # the env got weights_to_action(executed) followed by the unchanged urgencies
    _, _, _, _, direct = bare.step(np.concatenate([bare.weights_to_action(executed), action[3:]]))
    assert direct["fills"] == info["fills"] and direct["equity"] == info["equity"]
    # NaN/inf in the weights part still holds (sanitised); the urgencies are not weights
    _, _, _, _, info = wrapped.step(np.array([np.nan, 0.1, 0.1, 1.0, 1.0]))
    assert info["risk"]["interventions"][0]["rule"] == "sanitise"
    _, _, _, _, info = wrapped.step(np.array([0.1, 0.1, 0.8, np.nan, np.inf]))
    assert all(i["rule"] != "sanitise" for i in info["risk"]["interventions"])


def test_risk_vector_wrapper_passes_the_urgencies_through_unchanged():
    market = risk_market()
    rv = RiskVectorWrapper(KrakenSpotVectorEnv(2, market=market, **RISK_KW))
    singles = [RiskWrapper(KrakenSpotEnv(market, **RISK_KW)) for _ in range(2)]
    rv.reset(seed=0, options={"start": 100})
    for e in singles:
        e.reset(seed=0, options={"start": 100})
    acts = np.array([[0.1, 0.1, 0.8, 1.0, -1.0], [0.1, 0.1, 0.8, -1.0, 1.0]])
    _, _, _, _, infos = rv.step(acts)
    assert [f["liquidity"] for f in infos["fills"][0] if f["asset"] == "BTC"] == ["taker"]
    assert [f["liquidity"] for f in infos["fills"][1] if f["asset"] == "ETH"] == ["taker"]
    for i, e in enumerate(singles):
        _, _, _, _, info = e.step(acts[i])
        assert info["fills"] == infos["fills"][i] and info["equity"] == infos["equity"][i]
        np.testing.assert_array_equal(infos["risk"][i]["action"], acts[i])
