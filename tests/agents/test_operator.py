"""The simulated backtest operator reactivates the kill switch only through the audited call, after quiet hours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.baselines import EqualWeightRebalanced, run_policy
from agents.envs import evaluation_env
from agents.operator import SimulatedOperator
from agents.pipeline import Period
from envs.config import EnvConfig
from envs.data.loaders import load_kraken_dir
from envs.errors import ConfigError
from risk.limits import PRESETS


@pytest.fixture(scope="module")
def kraken(shared_data: Path):  # type: ignore[no-untyped-def]
    return load_kraken_dir(shared_data / "kraken" / "ohlcvt_1h", start="2021-06-01", end="2021-08-15T23:00")


def _run(market, operator):  # type: ignore[no-untyped-def]
    lo = int(np.searchsorted(market.timestamps, 1626739200))  # 2021-07-20 00:00, before the 07-22 outage
    env = evaluation_env(market, None, None, EnvConfig(), PRESETS["spec_a"], Period.of(market, lo, market.n_bars - 1))
    result = run_policy(env, EqualWeightRebalanced(24), operator=operator)
    return env, result


def test_without_an_operator_the_outage_keeps_the_account_out_for_good(kraken) -> None:  # type: ignore[no-untyped-def]
    env, _ = _run(kraken, None)
    assert env.projector.kill_switch.engaged  # engaged by the 2021-07-22 22:00 outage, never reactivated
    assert "exchange_down" in env.projector.kill_switch.reasons


def test_the_simulated_operator_reactivates_after_quiet_hours_through_the_audited_call(kraken) -> None:  # type: ignore[no-untyped-def]
    op = SimulatedOperator(12)
    env, result = _run(kraken, op)
    audit = env.projector.kill_switch.audit
    done = [a for a in audit if a["event"] == "reactivated"]
    assert op.reactivations == len(done) >= 1
    assert all(a["operator"] == "simulated-operator" for a in done)
    outage = 1627000000  # just after 2021-07-22 22:00 (1626991200)
    assert all(a["timestamp"] >= 1626991200 + 12 * 3600 for a in done if a["timestamp"] > outage - 86400)
    _, plain = _run(kraken, None)
    # without an operator the switch blocks every later rebalance that would grow a position
    assert result.interventions.get("kill_switch", 0) < plain.interventions.get("kill_switch", 0)
    assert not env.projector.kill_switch.engaged or op.reactivations >= 1


def test_operator_needs_a_positive_number_of_hours() -> None:
    with pytest.raises(ConfigError, match="reactivate_after_hours"):
        SimulatedOperator(0)
