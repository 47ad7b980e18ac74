"""`agents.prior`: the strategic action as a tilt on the top-k predictor allocation.

The prior must be exactly the allocation the `TopKPredictor` baseline proposes (same
ranking, ties, candidates), a zero tilt must send it unchanged, training and evaluation must
map actions the same way, and a model trained with one prior must not run under another.
"""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecNormalize

from agents.baselines import TopKPredictor, run_policy, weights_action
from agents.policies import HierarchicalPolicy
from agents.prior import StrategicPrior, topk_panel
from agents.training import AgentConfig, make_model
from agents.vec import LevelVecEnv
from agents.views import n_features
from envs.errors import ConfigError
from envs.kraken_spot import KrakenSpotEnv
from envs.vector import KrakenSpotVectorEnv
from risk import RiskVectorWrapper, RiskWrapper
from tests.conftest import make_tiny_market

ASSETS = ("BTC", "ETH", "SOL", "ADA", "XRP")
NAMES = ("meta_h24_p_up", "meta_h24_exp_return")
T = 500


@pytest.fixture(scope="module")
def market():  # type: ignore[no-untyped-def]
    return make_tiny_market(n_bars=T, assets=ASSETS, seed=5, vol=0.003)


@pytest.fixture(scope="module")
def signals():  # type: ignore[no-untyped-def]
    """Random expected returns on a coarse grid (many ties), some bars/assets without a prediction."""
    rng = np.random.default_rng(0)
    sig = np.empty((T, len(ASSETS), 2))
    sig[:, :, 0] = 0.55
    sig[:, :, 1] = rng.integers(-3, 4, size=(T, len(ASSETS))) / 100.0
    sig[rng.random((T, len(ASSETS))) < 0.15, :] = np.nan  # no prediction: not a candidate
    return sig


def test_the_prior_is_the_topk_baselines_allocation_at_every_bar(market, signals) -> None:  # type: ignore[no-untyped-def]
    env = KrakenSpotEnv(market=market, window=24, episode_hours=100, signals=signals, signal_names=NAMES)
    core = env.core
    alloc = StrategicPrior("topk", k=3).allocation(core)
    assert alloc is not None
    base = TopKPredictor(k=3).bind(env)
    tradable = np.asarray(market.tradable, dtype=bool)
    for t in range(T):
        sig = core.signals[t]
        cand = tradable[t] & (sig[:, -1] > 0.5)
        want = np.zeros(len(ASSETS))
        want[base.select(sig[:, NAMES.index("meta_h24_exp_return")], cand)] = 1 / 3
        np.testing.assert_array_equal(alloc.weights[t], want)
        assert alloc.scores[t, -1] == pytest.approx(1.0 - want.sum())
    # fewer candidates than k leave the slots in cash
    few = topk_panel(np.array([[[0.1, 1.0], [0.2, 0.0], [0.3, 0.0]]]), 0, 1, np.ones((1, 3), bool), 2)
    np.testing.assert_array_equal(few, [[0.5, 0.0, 0.0]])


def test_a_zero_tilt_sends_the_prior_and_tilts_are_scaled_and_clipped(market, signals) -> None:  # type: ignore[no-untyped-def]
    env = KrakenSpotEnv(market=market, window=24, episode_hours=100, signals=signals, signal_names=NAMES)
    alloc = StrategicPrior("topk", k=2, scale=0.5).allocation(env.core)
    assert alloc is not None
    t = np.array([30, 31])
    zero = alloc.env_actions(t, np.zeros((2, len(ASSETS) + 1)))
    np.testing.assert_array_equal(zero, alloc.scores[t])
    tilt = np.array([[2.0, -5.0, np.nan, 0.2, 0.0, 1.0], [0.0] * 6])
    out = alloc.env_actions(t, tilt)
    np.testing.assert_allclose(out[0], alloc.scores[30] + 0.5 * np.array([1.0, -1.0, 0.0, 0.2, 0.0, 1.0]))
    # the env maps the prior to the top-k weights (a 1/k action is [w, 1 - sum w])
    np.testing.assert_allclose(env.action_to_weights(zero[0]), alloc.weights[30])
    np.testing.assert_allclose(zero[0], weights_action(alloc.weights[30]))


def test_prior_config_is_checked_and_needs_the_signal(market) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"agent\.prior"):
        AgentConfig(prior="momentum")
    with pytest.raises(ConfigError, match=r"agent\.prior_k"):
        AgentConfig(prior="topk", prior_k=0)
    with pytest.raises(ConfigError, match=r"agent\.prior_scale"):
        AgentConfig(prior="topk", prior_scale=float("nan"))
    env = KrakenSpotEnv(market=market, window=24, episode_hours=100)  # no signals
    with pytest.raises(ConfigError, match="meta_h24_exp_return"):
        StrategicPrior("topk").allocation(env.core)
    assert StrategicPrior("none").allocation(env.core) is None  # prior "none": the action is the env's scores


def test_the_strategic_level_sends_prior_plus_tilt_at_the_decision_hour(market, signals) -> None:  # type: ignore[no-untyped-def]
    inner = RiskVectorWrapper(KrakenSpotVectorEnv(2, market=market, window=24, episode_hours=240, signals=signals,
                                                  signal_names=NAMES, autoreset_mode="disabled"), "spec_a")
    prior = StrategicPrior("topk", k=2)
    venv = LevelVecEnv(inner, "strategic", every_hours=24, prior=prior)
    venv.seed(3)
    obs = venv.reset()
    assert obs["assets"].shape == (2, len(ASSETS), n_features("strategic", prior=True))
    alloc = venv.prior
    assert alloc is not None
    t = venv.core.ledger.t.copy()
    np.testing.assert_array_equal(obs["assets"][:, :, -2], alloc.weights[t].astype(np.float32))  # before w
    sent: list[np.ndarray] = []
    original = venv._step_strategic
    venv._step_strategic = lambda a: (sent.append(a.copy()), original(a))[1]  # type: ignore[method-assign]
    venv.step_async(np.zeros((2, len(ASSETS) + 1)))
    venv.step_wait()
    np.testing.assert_array_equal(sent[0], alloc.scores[t])
    # after the decision hour the accounts hold (close to) the prior's assets only
    held = venv.core.ledger.w > 1e-6
    assert not (held & (alloc.weights[t] == 0)).any()


def test_evaluation_maps_actions_like_training_and_refuses_another_prior(market, signals, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A strategic model (untrained, deterministic) through `HierarchicalPolicy` sends the same env action
    as `LevelVecEnv` for the same view; without the prior it trained with, it is refused."""
    cfg = AgentConfig(prior="topk", prior_k=2, n_envs=1, episode_hours=48, every_hours=24)
    inner = RiskVectorWrapper(KrakenSpotVectorEnv(1, market=market, window=24, episode_hours=48, signals=signals,
                                                  signal_names=NAMES, autoreset_mode="disabled"), "spec_a")
    venv = VecNormalize(LevelVecEnv(inner, "strategic", prior=cfg.strategic_prior), norm_reward=False)
    model = make_model(cfg, venv, "strategic", None)
    level = (model, None)
    env = RiskWrapper(KrakenSpotEnv(market=market, window=24, episode_hours=60, start_mode="fixed", signals=signals,
                                    signal_names=NAMES), "spec_a")
    policy = HierarchicalPolicy(None, executor="fixed", levels={"strategic": level}, prior=cfg.strategic_prior)
    r = run_policy(env, policy, seed=0, options={"start": 300}, max_steps=25)
    assert policy.allocation is not None
    # the first action: the prior at bar 300 plus the model's tilt at bar 300
    policy2 = HierarchicalPolicy(None, executor="fixed", levels={"strategic": level}, prior=cfg.strategic_prior)
    env2 = RiskWrapper(KrakenSpotEnv(market=market, window=24, episode_hours=60, start_mode="fixed",
                                     signals=signals, signal_names=NAMES), "spec_a")
    env2.reset(seed=0, options={"start": 300})
    policy2.bind(env2)
    policy2.reset()
    first = policy2.act({}, {})
    tilt, _ = model.predict(policy2.strategic_view.build(np.array([0])), deterministic=True)
    np.testing.assert_allclose(first, policy2.allocation.env_actions(np.array([300]), tilt)[0])
    np.testing.assert_allclose(r.actions[0], first)
    assert np.abs(tilt).max() > 0  # a real tilt, not the prior alone
    with pytest.raises(ValueError, match="prior"):
        HierarchicalPolicy(None, executor="fixed", levels={"strategic": level}).bind(env2)


def test_a_saved_model_brings_its_prior_and_a_bad_prior_file_is_refused(market, signals, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agents.training import save_level

    cfg = AgentConfig(prior="topk", prior_k=2, prior_scale=0.25, n_envs=1, episode_hours=48)
    inner = RiskVectorWrapper(KrakenSpotVectorEnv(1, market=market, window=24, episode_hours=48, signals=signals,
                                                  signal_names=NAMES, autoreset_mode="disabled"), "spec_a")
    venv = VecNormalize(LevelVecEnv(inner, "strategic", prior=cfg.strategic_prior), norm_reward=False)
    folder = tmp_path / "models" / "strategic"
    save_level(make_model(cfg, venv, "strategic", None), folder)
    assert StrategicPrior.load(folder) == StrategicPrior("none")  # no prior.json: a model from before priors
    cfg.strategic_prior.save(folder)
    assert StrategicPrior.load(folder) == StrategicPrior("topk", 2, "meta_h24_exp_return", 0.25)
    env = RiskWrapper(KrakenSpotEnv(market=market, window=24, episode_hours=60, start_mode="fixed", signals=signals,
                                    signal_names=NAMES), "spec_a")
    policy = HierarchicalPolicy(tmp_path / "models", executor="fixed")
    r = run_policy(env, policy, seed=0, options={"start": 300}, max_steps=2)
    assert policy.prior.scale == 0.25 and r.n_steps == 2
    with pytest.raises(ValueError, match="trained with"):
        HierarchicalPolicy(tmp_path / "models", executor="fixed", prior=StrategicPrior("topk", k=3))
    (folder / "prior.json").write_text('{"kind": "topk", "k": "three"}')
    with pytest.raises(ConfigError, match=r"prior\.json"):
        HierarchicalPolicy(tmp_path / "models", executor="fixed")
