"""Regression (review finding): a search whose objective's strategy is not trained is refused before any trial.

Before: every trial trained in full, then raised a ConfigError that Optuna stored as a failed
trial, which the resumed study then counted for the deflated Sharpe ratio.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.errors import ConfigError
from tests.agents.pipeline_helpers import compose_config
from tests.conftest import load_script


def test_search_refuses_an_objective_whose_strategy_is_not_trained(tmp_path: Path) -> None:
    cfg = compose_config("search", ["search.objective=flat_ppo", "agent.train_flat=false"])
    with pytest.raises(ConfigError, match=r"search\.objective=flat_ppo: needs agent\.train_flat=true"):
        load_script("search").search(cfg, tmp_path / "s")
    assert not (tmp_path / "s").exists()  # refused before the study (and its trial record) exist
