"""Train -> evaluate on a tiny market: run folder, metrics.json schema, report, overlap refusal, determinism, resume."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from agents.pipeline import PeriodOverlapError, TrainPeriod, check_no_overlap
from agents.report import PNG_SIZES
from agents.training import AgentConfig
from envs.errors import ConfigError
from tests.agents.pipeline_helpers import (
    EVAL_END,
    EVAL_START,
    ROOT,
    TRAIN_END,
    compose_config,
    eval_overrides,
    tiny_overrides,
)
from tests.conftest import load_script

BASELINES = ("all_cash", "buy_and_hold_btc", "equal_weight_buy_and_hold", "equal_weight_daily", "rule_strategy",
             "top3_predictor")




@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pipeline")
    cache = base / "cache"
    train = load_script("train")
    run = base / "run"
    train.train(compose_config("train", tiny_overrides(cache)), run)
    evaluate = load_script("evaluate")
    out = base / "eval"
    evaluate.evaluate(compose_config("evaluate", eval_overrides(run, cache)), out)
    return {"base": base, "cache": cache, "run": run, "eval": out}


def test_run_folder_holds_models_normalisers_and_the_training_period(trained: dict[str, Path]) -> None:
    run = trained["run"]
    for level in ("strategic", "tactical", "flat"):
        assert (run / "models" / level / "model.zip").is_file(), level
        assert (run / "models" / level / "vecnormalize.pkl").is_file(), level
    period = TrainPeriod.read(run)
    assert period.end.startswith(TRAIN_END[:10])
    assert period.policy_start < period.policy_end < period.validation_start <= period.end  # type: ignore[operator]
    assert period.predictor_train_end <= period.end
    trial = json.loads((run / "trial.json").read_text())
    assert set(trial["validation_sharpe_per_period"]) == {"policy", "flat_ppo"}
    timing = json.loads((run / "timing.json").read_text())
    assert [t["level"] for t in timing] == ["strategic", "tactical", "flat"]
    assert all(t["timesteps"] > 0 and 0.0 < t["env_share"] < 1.0 for t in timing)


def test_metrics_json_has_the_architecture_schema_and_every_strategy(trained: dict[str, Path]) -> None:
    doc = json.loads((trained["eval"] / "metrics.json").read_text())
    assert set(doc) >= {"strategies", "period", "train_period"}
    assert set(doc["strategies"]) >= {"policy", "flat_ppo", *BASELINES}
    assert doc["period"]["start"].startswith(EVAL_START[:13].replace("T", " ")) or doc["period"]["start"].startswith(
        EVAL_START[:10])
    assert doc["train_period"]["end"] is not None and doc["train_period"]["end"] < doc["period"]["start"]
    for name, row in doc["strategies"].items():
        for key in ("total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown", "turnover", "fees_paid",
                    "slippage_paid", "n_trades", "win_rate", "average_exposure", "probabilistic_sharpe",
                    "sharpe_ci_low", "per_regime"):
            assert key in row, (name, key)
    # every strategy is measured over the whole period (a halted account sits in cash to its end)
    assert len({row["n_periods"] for row in doc["strategies"].values()}) == 1
    # the risk layer holds every drawdown to the ladder's halt level plus the largest one-bar loss
    assert all(check["within_ladder"] for check in doc["ladder"].values())
    # the extended store agrees with the training store wherever both predicted
    ext = doc["store_extension"]
    assert ext["compared"] and ext["rows_compared"] == ext["training_rows"] > 0
    assert ext["max_abs_diff"] < 1e-12  # same folds, same models: equal up to float summation order


def test_report_renders_pngs_of_the_expected_size_and_the_metrics_table(trained: dict[str, Path]) -> None:
    out = trained["eval"]
    table = (out / "metrics.md").read_text()
    assert table.startswith("| strategy |") and "| policy |" in table and "| top3_predictor |" in table
    html = (out / "report.html").read_text()
    assert '<table id="metrics">' in html
    assert "id='verdict-flat'" in html and "id='verdict-baselines'" in html  # the report says who won
    for name in ("policy", "flat_ppo", *BASELINES):
        assert name in html
    for name, size in PNG_SIZES.items():
        with Image.open(out / name) as img:
            assert img.size == size, name


def test_an_overlapping_evaluation_period_is_refused_naming_both_periods(trained: dict[str, Path]) -> None:
    period = TrainPeriod.read(trained["run"])
    with pytest.raises(PeriodOverlapError) as err:
        check_no_overlap("2022-04-20", EVAL_END, period, trained["run"])
    text = str(err.value)
    assert "2022-04-20" in text and period.start in text and period.end in text
    check_no_overlap(EVAL_START, EVAL_END, period, trained["run"])  # after the training end: fine


def test_evaluate_script_exits_2_on_overlap(trained: dict[str, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate.py"),
         *eval_overrides(trained["run"], trained["cache"], start="2022-04-01", end=EVAL_END),
         f"hydra.run.dir={trained['base'] / 'refused'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "overlaps the training period" in proc.stderr
    assert "2022-04-01" in proc.stderr
    assert not (trained["base"] / "refused" / "metrics.json").exists()


def _params(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {"policy.pth": z.read("policy.pth")}


def test_same_config_and_seed_give_identical_models_and_metrics(trained: dict[str, Path]) -> None:
    base, cache = trained["base"], trained["cache"]
    train, evaluate = load_script("train"), load_script("evaluate")
    run2 = base / "run_again"
    train.train(compose_config("train", tiny_overrides(cache)), run2)
    for level in ("strategic", "tactical", "flat"):
        assert _params(trained["run"] / "models" / level / "model.zip") == _params(run2 / "models" / level / "model.zip")
    out2 = base / "eval_again"
    evaluate.evaluate(compose_config("evaluate", eval_overrides(run2, cache)), out2)
    a = json.loads((trained["eval"] / "metrics.json").read_text())
    assert (trained["eval"] / "metrics.json").read_bytes() == (out2 / "metrics.json").read_bytes()
    assert a["strategies"]["policy"]["n_trades"] > 0 or a["strategies"]["flat_ppo"]["n_trades"] > 0


def test_a_different_seed_gives_different_weights(trained: dict[str, Path]) -> None:
    run3 = trained["base"] / "run_seed1"
    load_script("train").train(compose_config("train", tiny_overrides(trained["cache"], seed=1)), run3)
    assert _params(trained["run"] / "models" / "flat" / "model.zip") != _params(run3 / "models" / "flat" / "model.zip")


def test_training_resumes_from_the_last_checkpoint(trained: dict[str, Path]) -> None:
    run = trained["base"] / "resumed"
    cfg = [*tiny_overrides(trained["cache"]), "agent.flat_timesteps=128", "agent.checkpoint_every=64",
           "agent.hierarchical=false"]
    train = load_script("train")
    train.train(compose_config("train", cfg), run)
    flat = run / "models" / "flat"
    assert json.loads((flat / "checkpoint" / "steps.json").read_text())["num_timesteps"] >= 64
    (flat / "model.zip").unlink()  # as if the run had been killed after the checkpoint
    (flat / "steps.json").unlink()
    train.train(compose_config("train", [*cfg[:-3], "agent.flat_timesteps=256", "agent.checkpoint_every=64",
                                         "agent.hierarchical=false"]), run)
    timing = json.loads((run / "timing.json").read_text())
    assert timing[0]["resumed_from"] >= 64
    assert json.loads((flat / "steps.json").read_text())["num_timesteps"] >= 256


@pytest.mark.parametrize(
    ("field", "value"),
    [("algo", "a2c"), ("executor", "random"), ("n_envs", 0), ("gamma", 1.5), ("val_fraction", 0.7)],
)
def test_agent_config_errors_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"agent.{field}"):
        AgentConfig.from_mapping({field: value})


def test_unknown_agent_key_is_named() -> None:
    with pytest.raises(ConfigError, match="learning_rat"):
        AgentConfig.from_mapping({"learning_rat": 0.1})


def test_baselines_only_evaluation_has_no_training_period(trained: dict[str, Path]) -> None:
    evaluate = load_script("evaluate")
    overrides = [o for o in eval_overrides(trained["run"], trained["cache"]) if not o.startswith("run=")]
    over = tiny_overrides(trained["cache"])
    data = [o for o in over if o.startswith(("data.", "predictor.", "walk_forward.", "+features", "risk."))]
    data = [o for o in data if not o.startswith("data.end")]
    out = trained["base"] / "baselines"
    doc = evaluate.evaluate(compose_config("evaluate", [*overrides, "report=false", "data.n_bars=3600",
                                                        *[d for d in data if not d.startswith("data.n_bars")]]), out)
    assert "policy" not in doc["strategies"] and set(BASELINES) <= set(doc["strategies"])
    assert doc["train_period"] == {"start": None, "end": None}
    assert np.isfinite(doc["strategies"]["equal_weight_daily"]["sharpe"])


@pytest.mark.parametrize("level", ["strategic", "tactical"])
def test_evaluation_replays_the_training_env_bit_for_bit(trained: dict[str, Path], level: str) -> None:
    """A trained level acting through LevelVecEnv (training) and through HierarchicalPolicy + RiskWrapper
    (evaluation) from the same bar produces the same account, hour by hour."""
    import dataclasses

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from agents.baselines import run_policy
    from agents.envs import evaluation_env
    from agents.pipeline import Period, prediction_store, store_signals
    from agents.policies import HierarchicalPolicy
    from agents.prior import StrategicPrior
    from agents.training import frozen_policy, load_level
    from agents.vec import LevelVecEnv
    from envs.config import EnvConfig
    from envs.vector import KrakenSpotVectorEnv
    from risk import RiskVectorWrapper

    run = trained["run"]
    cfg = OmegaConf.load(run / "config.yaml")
    plain = OmegaConf.to_container(cfg, resolve=True)
    market = instantiate(cfg.data)
    store = prediction_store(market, plain, trained["cache"])  # type: ignore[arg-type]
    signals, names = store_signals(store, market, plain["horizons"])  # type: ignore[index,call-overload]
    limits = instantiate(cfg.risk)
    first = market.n_bars - 24 * 6  # the last six days of the run's market
    period = Period.of(market, first, market.n_bars - 1)
    mode = "execution" if level == "tactical" else "weights"
    env_cfg = EnvConfig.from_mapping(plain["env"])  # type: ignore[index,arg-type]
    hours = 24 * 4

    executor = "tactical" if level == "tactical" else "fixed"
    policy = HierarchicalPolicy(run / "models", "ppo", 24, executor)
    single = evaluation_env(market, signals, names, env_cfg, limits, period, action_mode=mode)
    ev = run_policy(single, policy, max_steps=hours)

    vcfg = dataclasses.replace(env_cfg, start=period.start_iso, end=period.end_iso, start_mode="fixed",
                               episode_hours=period.end - period.start, action_mode=mode)
    inner = RiskVectorWrapper(KrakenSpotVectorEnv(1, market=market, config=vcfg, signals=signals, signal_names=names,
                                                  autoreset_mode="disabled"), limits)
    strategic = frozen_policy(*load_level(run / "models" / "strategic", "ppo"))
    prior = StrategicPrior.load(run / "models" / "strategic")  # the residual's prior, saved with the model
    assert prior.kind == "topk"  # the default agent config's
    if level == "strategic":
        venv = LevelVecEnv(inner, "strategic", 24, prior=prior)
        obs = venv.reset()
        equity = []
        for _ in range(hours // 24):
            venv.step_async(strategic(obs))
            obs, *_ = venv.step_wait()
            equity.append(float(venv.core.ledger.equity[0]))
        np.testing.assert_array_equal(equity, ev.equity[24::24])
    else:
        tactical = frozen_policy(*load_level(run / "models" / "tactical", "ppo"))
        venv = LevelVecEnv(inner, "tactical", 24, strategic=strategic, prior=prior)
        obs = venv.reset()
        equity = []
        for _ in range(hours):
            venv.step_async(tactical(obs))
            obs, *_ = venv.step_wait()
            equity.append(float(venv.core.ledger.equity[0]))
        np.testing.assert_array_equal(equity, ev.equity[1:])
    assert ev.n_trades > 0 or level == "tactical"


def test_evaluate_patches_the_runs_config_with_dotted_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """``data.seed=8`` changes only that key of the run's data; ``data=csv`` replaces the group."""
    from omegaconf import OmegaConf

    evaluate = load_script("evaluate")
    run_cfg = compose_config("train", ["experiment=fast", "data.seed=3", "env.limit_offset=5"])
    cfg = compose_config("evaluate", ["eval.start=2022-10-01", "eval.end=2022-12-31", "data.seed=8"])
    monkeypatch.setattr(evaluate, "_cli_overrides", lambda: ["eval.start=2022-10-01", "data.seed=8"])
    eff = evaluate.effective_config(cfg, run_cfg)
    assert eff.data.seed == 8 and eff.data.edge_strength == run_cfg.data.edge_strength  # the run's market, patched
    assert eff.data.end == "2022-12-31" and eff.env.limit_offset == 5  # the run's env kept
    assert OmegaConf.to_container(eff.predictor) == OmegaConf.to_container(run_cfg.predictor)
    monkeypatch.setattr(evaluate, "_cli_overrides", lambda: ["data=csv", "data.path=/x"])
    cfg2 = compose_config("evaluate", ["eval.start=2022-10-01", "eval.end=2022-12-31", "data=csv", "data.path=/x"])
    eff2 = evaluate.effective_config(cfg2, run_cfg)
    assert eff2.data.path == "/x" and "edge_strength" not in eff2.data


def test_walk_forward_windows_train_and_test_consecutive_months_and_pool_them(trained: dict[str, Path]) -> None:
    """run.py stages=[walk_forward]: two windows, each trained on everything before its test period."""
    from agents.pipeline import utc
    from agents.windows import window_splits

    base = trained["base"] / "wf"
    out = base / "windows"
    overrides = [o for o in tiny_overrides(trained["cache"]) if not o.startswith("data.end")]
    overrides += ["stages=[walk_forward]", "windows.n=2", "windows.test_hours=168", f"eval.end={EVAL_END}",
                  "report=true", "n_boot=50"]
    doc = load_script("run").main_job(compose_config("run", overrides), base)["walk_forward"]
    windows = window_splits(EVAL_END, 2, 168)
    assert windows[0].eval_end < windows[1].eval_start and windows[0].train_end < windows[0].eval_start
    assert [w["train_end"] for w in doc["windows"]] == [w.train_end for w in windows]
    for k, w in enumerate(windows):
        period = TrainPeriod.read(out / f"w{k}" / "train")
        assert utc(period.end, "end") < utc(w.eval_start, "start")  # training ends before the test period
    pooled = doc["strategies"]["policy"]
    assert pooled["n_periods"] == sum(
        json.loads((out / f"w{k}" / "evaluate" / "metrics.json").read_text())["strategies"]["policy"]["n_periods"]
        for k in range(2)
    )
    assert (out / "metrics.json").is_file() and (out / "report.html").is_file()
