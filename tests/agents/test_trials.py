"""The trial record (agents.trials), the search config (agents.search) and the DSR they feed: no training."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from agents.metrics import deflated_sharpe_ratio, return_moments, summary
from agents.search import SearchConfig, ValidationReporter, flatten_space
from agents.trials import make_record, read_record, record_for_run, trial_statistics, write_record
from envs.errors import ConfigError
from krakenrl.cli import job_dirname
from tests.conftest import load_script

SPACE = {"agent": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
                   "n_steps": {"type": "categorical", "choices": [64, 128]}}}
TRAIN_CFG = {"agent": {"learning_rate": 3e-4, "n_steps": 128, "gamma": 0.99}}


def _returns(seed: int = 0, n: int = 2000, mean: float = 0.0005) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, 0.01, n)


def _trial(i: int, state: str, sharpe: float | None, run: str | None = None) -> dict[str, object]:
    t: dict[str, object] = {"id": str(i), "state": state, "params": {"agent.seed": i}, "run": run or f"t{i}",
                            "objective": "policy"}
    if state == "complete":
        t["validation_sharpe_per_period"] = {"policy": sharpe}
    elif state == "pruned":
        t["value"] = sharpe
        t["validation_sharpe_per_period"] = {}
    return t


def test_adding_trials_lowers_the_dsr_of_the_same_sharpe() -> None:
    sr, n, skew, kurt = return_moments(_returns())
    dsrs = [deflated_sharpe_ratio(sr, n, skew, kurt, k, 1e-4) for k in (1, 2, 8, 32, 256)]
    assert all(a > b for a, b in itertools.pairwise(dsrs)), dsrs
    assert dsrs[-1] < dsrs[0] - 0.05  # a material deflation, not rounding


def test_the_record_counts_pruned_and_failed_trials_and_their_variance() -> None:
    trials = [_trial(0, "complete", 0.02), _trial(1, "pruned", -0.01), _trial(2, "failed", None),
              _trial(3, "complete", 0.03)]
    rec = make_record("search", Path("/x"), trials, "policy")
    assert rec["n_trials"] == 4 and rec["counts"] == {"complete": 2, "pruned": 1, "failed": 1}
    assert rec["best"]["id"] == "3" and rec["best"]["value"] == 0.03  # only complete trials can be best
    sharpes, n = trial_statistics(rec, "policy")
    assert n == 4 and sorted(sharpes) == [-0.01, 0.02, 0.03]  # pruned: its last report; failed: counted only
    assert trial_statistics(rec, "flat_ppo") == ([], 4)


def test_more_trials_in_the_record_lower_the_metrics_dsr() -> None:
    """Same best returns; the record grows by failed trials (count up, variance unchanged) -> lower DSR."""
    r = _returns(1)
    ts = np.arange(r.size) * 3600 + 1_700_000_000
    base = [_trial(i, "complete", s) for i, s in enumerate((0.01, 0.02, 0.03, 0.005))]
    out = []
    for extra in (0, 4, 40):
        rec = make_record("multirun", Path("/x"), base + [_trial(10 + i, "failed", None) for i in range(extra)])
        sharpes, n = trial_statistics(rec, "policy")
        row = summary(r, ts, trial_sharpes=sharpes, n_trials=n, n_boot=10)
        assert row["n_trials"] == 4 + extra
        assert row["trial_sharpe_variance"] == pytest.approx(np.var([0.01, 0.02, 0.03, 0.005], ddof=1))
        sr, nobs, skew, kurt = return_moments(r)
        assert row["deflated_sharpe"] == pytest.approx(
            deflated_sharpe_ratio(sr, nobs, skew, kurt, n, row["trial_sharpe_variance"]))
        out.append(row["deflated_sharpe"])
    assert out[0] > out[1] > out[2], out


def test_n_trials_below_the_known_sharpes_is_refused() -> None:
    with pytest.raises(ValueError, match="n_trials"):
        summary(_returns(), np.arange(2000) * 3600, trial_sharpes=[0.1, 0.2, 0.3], n_trials=2, n_boot=10)


def test_record_for_run_finds_the_record_that_lists_the_run(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    run = sweep / "trials" / "abc"
    run.mkdir(parents=True)
    write_record(sweep, make_record("search", sweep, [_trial(0, "complete", 0.1, "trials/abc")]))
    path, rec = record_for_run(run)  # type: ignore[misc]
    assert path == sweep / "trials.json" and rec["n_trials"] == 1
    other = tmp_path / "sweep" / "trials" / "zzz"
    other.mkdir()
    assert record_for_run(other) is None  # a record that does not list the run is not its record


def test_a_broken_record_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "trials.json").write_text(json.dumps({"trials": [{"id": "0", "state": "running"}]}))
    with pytest.raises(ConfigError, match=r"trials\.json"):
        read_record(tmp_path / "trials.json")


def test_evaluate_finds_the_best_trial_of_a_search_folder(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / "trials" / name).mkdir(parents=True)
        (tmp_path / "trials" / name / "train_period.json").write_text("{}")
    trials = [_trial(0, "complete", 0.01, "trials/a"), _trial(1, "complete", 0.05, "trials/b"),
              _trial(2, "pruned", 0.09, "trials/c")]
    write_record(tmp_path, make_record("search", tmp_path, trials))
    assert load_script("evaluate").find_runs(tmp_path) == [tmp_path / "trials" / "b"]


@pytest.mark.parametrize(("patch", "key"), [
    ({"n_trials": 0}, "search.n_trials"),
    ({"n_trials": "8"}, "search.n_trials"),
    ({"report_every": 0}, "search.report_every"),
    ({"pruner": "hyperband"}, "search.pruner"),
    ({"objective": "buy_and_hold"}, "search.objective"),
    ({"space": {}}, "search.space"),
    ({"space": {"agent": {"gamma": {"type": "uniform", "low": 0.9, "high": 0.99}}}}, "search.space.agent.gamma.type"),
    ({"space": {"agent": {"gamma": {"type": "float", "low": 0.99, "high": 0.9}}}}, "search.space.agent.gamma"),
    ({"space": {"agent": {"gamma": {"type": "float", "low": "a", "high": 0.9}}}}, "search.space.agent.gamma.low"),
    ({"space": {"agent": {"learning_rate": {"type": "float", "low": 0, "high": 1, "log": True}}}},
     "search.space.agent.learning_rate.low"),
    ({"space": {"agent": {"n_steps": {"type": "int", "low": 1.5, "high": 4}}}}, "search.space.agent.n_steps.low"),
    ({"space": {"agent": {"n_steps": {"type": "categorical", "choices": []}}}}, "search.space.agent.n_steps.choices"),
    ({"space": {"agent": {"n_steps": {"type": "int", "low": 1, "high": 4, "typo": 1}}}}, "search.space.agent.n_steps"),
    ({"n_trails": 8}, "n_trails"),
])
def test_search_config_errors_name_the_key(patch: dict[str, object], key: str) -> None:
    node = {"n_trials": 8, "space": SPACE, **patch}
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        SearchConfig.from_mapping(node)


def test_a_searched_key_missing_from_the_training_config_is_named() -> None:
    cfg = SearchConfig.from_mapping({"n_trials": 2, "space": {"agent": {"lr": {"type": "float", "low": 0.1,
                                                                                "high": 0.2}}}})
    with pytest.raises(ConfigError, match=r"search\.space\.agent\.lr"):
        cfg.check_keys(TRAIN_CFG)
    SearchConfig.from_mapping({"n_trials": 2, "space": SPACE}).check_keys(TRAIN_CFG)  # present: no error


def test_the_space_nests_and_flattens_to_dotted_keys() -> None:
    cfg = SearchConfig.from_mapping({"n_trials": 3, "space": SPACE})
    assert [p.key for p in cfg.space] == ["agent.learning_rate", "agent.n_steps"]
    assert flatten_space({"a": {"b": {"c": {"type": "int", "low": 1, "high": 2}}}}) == {
        "a.b.c": {"type": "int", "low": 1, "high": 2}}


def test_multirun_job_folders_are_one_deterministic_path_part() -> None:
    assert job_dirname("agent.seed=1") == "agent.seed=1"
    assert job_dirname(["experiment=fast", "agent.seed=1", "progress=false", "agent.gamma=0.9"]) == \
        "agent.gamma=0.9,agent.seed=1"  # display keys left out, sorted: a rerun with progress=true lands here too
    assert job_dirname(["experiment=fast"]) == "default"
    assert job_dirname("data.path=../x/y,agent.seed=1") == "data.path=.._x_y,agent.seed=1"
    assert job_dirname("") == "default"
    long = ",".join(f"agent.k{i}={i}" for i in range(40))
    assert len(job_dirname(long)) <= 200 and job_dirname(long) == job_dirname(long)
    assert job_dirname(long) != job_dirname(long + ",x=1")


def test_the_reporter_reports_at_fixed_marks() -> None:
    seen: list[tuple[float, int]] = []
    rep = ValidationReporter(lambda model: 0.5, lambda v, s: seen.append((v, s)), every=100, offset=1000)
    rep.model = None  # type: ignore[assignment]
    rep.num_timesteps = 0
    rep._on_training_start()
    for steps in (64, 128, 192, 256, 320, 448):  # rollout ends of 64 steps
        rep.num_timesteps = steps
        rep._on_rollout_end()
    assert seen == [(0.5, 1100), (0.5, 1200), (0.5, 1300), (0.5, 1400)]  # 448 passes 400: one report at 400
    assert math.isfinite(seen[0][0])


def test_a_resumed_search_must_be_the_same_search(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Only search.n_trials may change on a resume: another config would mix its trials into one DSR."""
    import optuna

    from envs.errors import ConfigError
    from tests.conftest import load_script

    search = load_script("search")
    study = optuna.create_study(direction="maximize")
    plain = {"agent": {"seed": 0, "learning_rate": 3e-4}, "data": {"end": "2022-06-30"},
             "search": {"n_trials": 8, "seed": 0}}
    search.check_same_search(study, plain, tmp_path)
    search.check_same_search(study, {**plain, "search": {"n_trials": 20, "seed": 0}}, tmp_path)  # more trials: fine
    with pytest.raises(ConfigError, match="another configuration"):
        search.check_same_search(study, {**plain, "data": {"end": "2022-12-31"}}, tmp_path)


def test_search_n_trials_is_required_and_named() -> None:
    with pytest.raises(ConfigError, match=r"search\.n_trials: required"):
        SearchConfig.from_mapping({"space": SPACE})
