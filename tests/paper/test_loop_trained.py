"""Parity with a trained hierarchical policy (tactical executor, prediction signals): the tiny pipeline run."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from agents.policies import HierarchicalPolicy
from agents.training import AgentConfig
from paper.app import COMMANDS, build
from paper.state import StateStore
from tests.agents.pipeline_helpers import EVAL_START, compose_config, tiny_overrides
from tests.conftest import load_script
from tests.paper.loop_helpers import backtest, compare

END = "2022-05-03T00:00:00Z"  # 48 decision hours after EVAL_START




@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("trained")
    cache = base / "cache"
    load_script("train").train(compose_config("train", tiny_overrides(cache)), base / "run")
    return {"run": base / "run", "cache": cache, "base": base}


@pytest.mark.slow
def test_a_trained_hierarchical_policy_paper_trades_exactly_like_its_backtest(run: dict[str, Path]) -> None:
    state = run["base"] / "paper.db"
    ov = [f"policy={run['run']}", f"feed.start={EVAL_START}", f"feed.end={END}", f"state={state}",
          f"cache_dir={run['cache']}"]
    cfg = compose_config("paper_trade", ["command=run", *ov])
    built = build(cfg)
    agent = AgentConfig.from_mapping(OmegaConf.to_container(OmegaConf.load(run["run"] / "config.yaml").agent))  # type: ignore[arg-type]
    assert built.setup.signals is not None and built.setup.env_config.action_mode == "execution"
    policy = HierarchicalPolicy(run["run"] / "models", agent.algo, agent.every_hours, agent.executor)
    ref = backtest(built.feed.market, EVAL_START, END, policy, built.setup.env_config, built.setup.limits,
                   built.setup.signals, built.setup.signal_names, mode="execution")
    assert COMMANDS["run"](cfg, lambda s: None) == 0
    store = StateStore.open(state, readonly=True)
    got = compare(store, ref)
    store.close()
    assert got["mismatches"] == [] and got["hours"] == 48
    lines: list[str] = []
    assert COMMANDS["replay-hour"](compose_config("paper_trade", ["command=replay-hour", *ov,
                                                                   "hour=2022-05-02T05:00:00Z"]), lines.append) == 0
