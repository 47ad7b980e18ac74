"""The policy levels' compiled hour path (`risk.hours`) gives the wrappers' hour-by-hour results bit for bit.

Two `LevelVecEnv` runs over the same market, seeds and actions: one with
``fast_hours=False`` (every hour through `RiskVectorWrapper.step`), one with the hours
between events run by `RiskVectorWrapper.run_hours`. The run is made to hit what the fast
path must hand back to Python: the drawdown ladder's 10/15/20 % steps and halts, market-wide
kill-switch triggers, an exchange reported down (then up: the switch stays engaged), NaN
and out-of-range actions, episode ends inside an agent step and the masked resets after
them. Observations, rewards, dones, infos (terminal observations, termination reasons),
the ledger's state and outputs and the risk state are compared after every agent step.
The strategic level runs K hours per call; the hourly levels (flat, tactical in execution
mode) one hour per call. `RiskVectorWrapper.run_hours` is also compared with `step` directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agents.vec import LevelVecEnv
from envs.data.synthetic import generate_synthetic_market
from envs.vector import KrakenSpotVectorEnv
from risk import RiskVectorWrapper
from risk.batch import _same

pytestmark = pytest.mark.equivalence  # compiled path against the wrappers' Python path (scripts/mutation.py)

LIMITS = {"kill_switch_breadth": 0.5, "dd_reduce": 0.10, "dd_cut": 0.15, "dd_halt": 0.20}
STATE = ("fst", "ist", "pos", "age", "ring", "w", "pf")  # the accounts (a step's outputs follow)
LEDGER = (*STATE, "target", "of", "oi", "fv", "fc", "rc", "rq")


@pytest.fixture(scope="module")
def market():  # type: ignore[no-untyped-def]
    return generate_synthetic_market(assets=["BTC", "ETH", "SOL", "ADA", "XRP", "DOGE"], n_bars=2500, seed=5,
                                     garch_alpha=0.15, garch_beta=0.84)


def _strategic(view: dict[str, np.ndarray]) -> np.ndarray:
    """The tactical level's frozen strategic policy: a fixed function of its view."""
    a = view["assets"]
    return np.tanh(np.concatenate([a[:, :, 0] - a[:, :, 1], a[:, :1, 2]], axis=1)) + 0.5


def _venv(market: Any, fast: bool, level: str = "strategic", n: int = 6) -> LevelVecEnv:
    mode = "execution" if level == "tactical" else "weights"
    env = KrakenSpotVectorEnv(n, market=market, episode_hours=250, autoreset_mode="disabled", action_mode=mode)
    venv = LevelVecEnv(RiskVectorWrapper(env, LIMITS), level, every_hours=7, halt_penalty=0.25,
                       strategic=_strategic if level == "tactical" else None)
    venv.fast_hours = fast
    return venv


def _actions(rng: np.random.Generator, step: int, shape: tuple[int, int]) -> np.ndarray:
    a = rng.uniform(-1.0, 1.0, shape)
    a[:, 0] += 3.0  # concentrated in one asset: deep drawdowns (the ladder's steps) happen
    # (tactical: the first asset's gap closed at once, the others' partly; market orders for some)
    if step % 5 == 1:
        a[rng.integers(shape[0])] = np.nan  # held: the current weights stay
    if step % 7 == 3:
        a[rng.integers(shape[0]), 0] = 4.0  # clipped to [-1, 1] first
    return a


def _exchange(venv: LevelVecEnv, step: int) -> None:
    """Account 1's exchange goes down for 3 agent steps every 20 (engages its switch; then up, still engaged)."""
    ks = venv.inner.projectors[1].kill_switch
    if step % 20 == 5:
        ks.report_exchange_down("maintenance", 0)
    elif step % 20 == 8:
        ks.report_exchange_up()


def _state(venv: LevelVecEnv) -> list[Any]:
    led = venv.core.ledger
    risk = [(p.ladder.to_dict(), p.kill_switch.to_dict()) for p in venv.inner.projectors]
    return [getattr(led, k).copy() for k in LEDGER] + [risk, venv.env_hours, venv.inner._ended.copy()]


def _run(market: Any, fast: bool, steps: int, events: dict[str, int] | None = None,
         level: str = "strategic") -> list[Any]:
    venv = _venv(market, fast, level)
    if events is not None:
        hour = venv._hour

        def counted(actions: np.ndarray) -> Any:  # what the hours of the reference run went through
            out = hour(actions)
            for r in out[4]["risk"]:
                if "ladder_level" in r:
                    events[f"level_{r['ladder_level']}"] = events.get(f"level_{r['ladder_level']}", 0) + 1
                    events["engaged"] = events.get("engaged", 0) + bool(r["kill_switch"]["engaged"])
            for reason in out[4]["termination_reason"]:
                if reason:
                    events[reason] = events.get(reason, 0) + 1
            return out

        venv._hour = counted  # type: ignore[method-assign]
    venv.seed(11)
    out: list[Any] = [venv.reset(), _state(venv)]
    rng = np.random.default_rng(12)
    for step in range(steps):
        _exchange(venv, step)
        venv.step_async(_actions(rng, step, (venv.num_envs, venv.action_space.shape[0])))
        out.append(venv.step_wait())
        out.append(_state(venv))
    return out


def _compare(market: Any, level: str, steps: int) -> tuple[dict[str, int], list[Any], list[tuple[int, int]]]:
    """Both runs, compared item by item; returns the reference run's events, items and the fast run's calls."""
    import risk.hours as hours

    events: dict[str, int] = {}
    slow = _run(market, False, steps, events, level)
    calls: list[tuple[int, int]] = []
    run = hours.HourRunner.run

    def spy(self: Any, first: Any, n: int, live: Any, total: Any) -> int:
        ran = run(self, first, n, live, total)
        calls.append((n, ran))
        return ran

    hours.HourRunner.run = spy  # type: ignore[method-assign]
    try:
        fast = _run(market, True, steps, level=level)
    finally:
        hours.HourRunner.run = run  # type: ignore[method-assign]
    for k, (a, b) in enumerate(zip(slow, fast, strict=True)):
        assert _same(a, b), f"item {k} (agent step {(k - 2) // 2}) differs"
    return events, slow, calls


def test_fast_hours_equal_the_hour_by_hour_path(market: Any) -> None:
    events, slow, calls = _compare(market, "strategic", 300)
    # the run went through what the fast path must hand back to Python
    assert min(events.get(f"level_{lv}", 0) for lv in (1, 2, 3)) > 0, events
    assert events.get("halt", 0) > 0 and events.get("engaged", 0) > 0, events
    assert events.get("episode_length", 0) > 0, events
    dones = sum(int(np.sum(x[2])) for x in slow[2::2])
    assert dones > 10
    # ... and the compiled path ran most hours, stopping early where it had to
    ran = sum(r for _, r in calls)
    assert ran > 0.6 * 300 * 7 and any(r < n for n, r in calls), (ran, len(calls))


@pytest.mark.parametrize("level", ["flat", "tactical"])
def test_fast_hour_of_the_hourly_levels_equals_the_wrapped_step(market: Any, level: str) -> None:
    """The hourly levels run each hour compiled where nothing special happens: the same results."""
    events, slow, calls = _compare(market, level, 1400)
    assert min(events.get(f"level_{lv}", 0) for lv in (1, 2, 3)) > 0 and events.get("halt", 0) > 0, events
    assert events.get("engaged", 0) > 0, events
    assert sum(int(np.sum(x[2])) for x in slow[2::2]) > 5
    ran = sum(r for _, r in calls)
    assert ran > 0.6 * 1400 and ran < len(calls), (ran, len(calls))


def test_run_hours_equals_steps_and_stops_before_an_episode_end(market: Any) -> None:
    """`RiskVectorWrapper.run_hours` against `step` directly: same state, rewards summed where live."""
    envs = [KrakenSpotVectorEnv(3, market=market, episode_hours=30, autoreset_mode="disabled") for _ in range(2)]
    wraps = [RiskVectorWrapper(e, LIMITS) for e in envs]
    for w in wraps:
        w.reset(seed=4)
    first = np.random.default_rng(5).uniform(-1.0, 1.0, (3, market.n_assets + 1))
    live = np.array([True, False, True])
    total = np.zeros(3)
    ran = wraps[1].run_hours(first, 50, live, total)
    assert ran == 29  # the 30th hour ends the episodes: left to `step`
    ref = np.zeros(3)
    for h in range(ran):
        _, rew, term, trunc, _ = wraps[0].step(first if h == 0 else np.zeros_like(first))
        assert not (term.any() or trunc.any())
        ref[live] += rew[live]
    assert ref.tobytes() == total.tobytes() and total[1] == 0.0
    led0, led1 = envs[0].core.ledger, envs[1].core.ledger
    # the accounts are the same; the outputs of the undone 30th hour are rewritten when `step` makes it
    assert all(getattr(led0, k).tobytes() == getattr(led1, k).tobytes() for k in STATE)
    assert [p.ladder.peak_equity for p in wraps[0].projectors] == [p.ladder.peak_equity for p in wraps[1].projectors]
    a, b = wraps[0].step(np.zeros_like(first)), wraps[1].step(np.zeros_like(first))
    assert _same(list(a[1:4]), list(b[1:4])) and a[3].all()
    assert all(_same(a[4][k], b[4][k]) for k in a[4] if k not in ("fills", "rejected"))
    assert list(a[4]["fills"]) == list(b[4]["fills"]) and _same(list(a[4]["risk"]), list(b[4]["risk"]))
    assert all(getattr(led0, k).tobytes() == getattr(led1, k).tobytes() for k in LEDGER)
    assert wraps[1].run_hours(None, 5, live, total) == 0  # sub-envs wait for their reset
    with pytest.raises(ValueError, match="first"):
        wraps[1].run_hours(np.zeros((3, 2)), 5, live, total)
