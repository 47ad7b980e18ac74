"""The projection's twins one rule at a time: each ``risk.kernels.rule_<name>`` (numba, in
place) against ``risk.rules.rule_<name>`` (numpy reference) on random inputs, bit for bit,
including what the kernel records (assets changed, amount) against the reference's
`RiskProjector._rule`. The decision-level differential test (test_risk_properties.py)
compares whole projections, where many rules rarely bind; here every rule is driven on
its own, so a difference is pinned to the rule that has it.
"""

from __future__ import annotations

import numpy as np
import pytest

from risk import kernels as K
from risk import rules as R
from risk.projection import RULE_ORDER, _amount, _sanitise_detail

CASES = 400
GRID = np.round(np.arange(0.0, 0.55, 0.05), 2)  # coarse values: ties, exact caps, equal weights


def _weights(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random weights: a mix of grid values (ties, zeros) and continuous ones, sum up to ~1.3."""
    w = np.where(rng.random(n) < 0.5, rng.choice(GRID, n), rng.random(n) * rng.uniform(0.05, 0.6))
    w[rng.random(n) < 0.2] = 0.0
    return w


def random_inputs(rng: np.random.Generator) -> tuple[np.ndarray, K.RuleInputs]:
    """(weights before the rule, the rule inputs) of a random case."""
    n = int(rng.integers(1, 15))
    cur = _weights(rng, n)
    if rng.random() < 0.2:
        cur[:] = 0.0
    locked = (rng.random(n) < 0.15) & (rng.random() < 0.6)
    blocked = ~locked & (rng.random(n) < 0.2)
    vol = np.where(rng.random(n) < 0.1, 0.0, rng.uniform(0.02, 0.8, n))
    labels = rng.integers(0, max(1, n // 2 + 1), n).astype(np.int64)
    costs = np.empty((4, n))
    costs[K.C_RETURN] = np.where(rng.random(n) < 0.5, np.nan, rng.normal(0.0, 0.01, n)) if rng.random() < 0.7 else np.nan
    costs[K.C_HALF] = rng.uniform(0.0, 0.003, n)
    costs[K.C_SIGMA] = rng.uniform(0.0, 0.05, n)
    costs[K.C_DVOL] = np.where(rng.random(n) < 0.15, 0.0, 10.0 ** rng.uniform(3, 8, n))
    prices = 10.0 ** rng.uniform(-2, 4, n)
    lots = np.stack([np.full(n, 1e8), 10.0 ** rng.uniform(-4, 0, n), rng.choice([0.0, 0.5, 5.0], n)])
    lim = np.array([
        float(rng.integers(1, n + 1)), rng.choice([0.1, 0.25, rng.uniform(0.05, 1.0)]), rng.uniform(0.3, 1.0),
        rng.choice([0.3, rng.uniform(0.1, 1.0)]), rng.uniform(0.2, 1.0), rng.uniform(0.2, 1.0),
        rng.choice([0.0, 0.01, 0.05]),
    ])  # fmt: skip
    cp = np.array([rng.uniform(0.0, 0.004), rng.uniform(0.0, 1.0), rng.uniform(0.005, 0.05), rng.choice([0.0, 0.002])])
    equity = float(10.0 ** rng.uniform(2, 6))
    level = int(rng.choice([0, 0, 1, 2, 3]))
    ks, sched = bool(rng.random() < 0.3), bool(level == 2 and rng.random() < 0.5)
    c = K.RuleInputs(cur, locked, blocked, vol, labels, costs, prices, lots, lim, cp, equity, level, ks, sched)
    w = _weights(rng, n)
    if rng.random() < 0.5:
        w[locked] = cur[locked]  # as rule 2 leaves them
    return w, c


def _recorded(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, float]:
    """What `RiskProjector._rule` records: the changed assets and the sum of |change|."""
    changed = after != before
    return changed, float(np.abs(after[changed] - before[changed]).sum()) if changed.any() else 0.0


def test_every_rule_has_a_kernel_helper_and_a_reference_function_of_its_name() -> None:
    assert len(RULE_ORDER) == K.N_RULES
    for name in RULE_ORDER:
        assert callable(getattr(K, f"rule_{name}")) and callable(getattr(R, f"rule_{name}")), name
    indices = [K.R_SANITISE, K.R_UNTRADABLE, K.R_HALT, K.R_MAXPOS, K.R_KILL, K.R_BLOCK, K.R_SCHED, K.R_VOL,
               K.R_ASSET, K.R_LADDER, K.R_CLUSTER, K.R_EXPOSURE, K.R_MIN_ORDER, K.R_COST, K.R_FALLBACK]
    assert indices == list(range(K.N_RULES))
    assert R.RULE_ORDER is RULE_ORDER


@pytest.mark.equivalence
@pytest.mark.parametrize("name", RULE_ORDER[1:-1])
def test_one_rule_kernel_equals_reference_bit_for_bit(name: str) -> None:
    rule = RULE_ORDER.index(name)
    kernel, reference = getattr(K, f"rule_{name}"), getattr(R, f"rule_{name}")
    rng = np.random.default_rng(1500 + rule)
    changes = 0
    for case in range(CASES):
        w, c = random_inputs(rng)
        s = K.new_scratch(w.size)
        s.amounts[:] = -1.0
        got = w.copy()
        bit = kernel(got, c, s)
        want = reference(w, c)
        assert got.tobytes() == want.tobytes(), (name, case, w, got, want)
        changed, amount = _recorded(w, want)
        assert bit == ((1 << rule) if changed.any() else 0), (name, case)
        if changed.any():
            changes += 1
            assert np.array_equal(s.changed[rule], changed), (name, case)
            assert s.amounts[rule] == amount, (name, case)
    assert changes >= CASES // 20, f"{name} changed the weights in only {changes} of {CASES} cases"


@pytest.mark.equivalence
def test_sanitise_kernel_equals_reference() -> None:
    rng = np.random.default_rng(1499)
    seen = set()
    for case in range(CASES):
        n = int(rng.integers(1, 15))
        cur = _weights(rng, n)
        prop = rng.normal(0.2, 0.4, n) * rng.choice([0.5, 1.0, 3.0])
        if rng.random() < 0.2:
            prop[rng.integers(n)] = rng.choice([np.nan, np.inf, -np.inf])
        if rng.random() < 0.2:
            prop = np.abs(prop)
        s = K.new_scratch(n)
        got = np.empty(n)
        status = K.rule_sanitise(prop, cur, got, s)
        raw, want, reason = R.rule_sanitise(prop, cur, n)
        assert got.tobytes() == want.tobytes(), (case, prop)
        assert _sanitise_detail(status) == reason, (case, prop)
        assert bool(status & (1 << K.R_SANITISE)) == bool(reason)
        if reason:
            assert s.amounts[K.R_SANITISE] == _amount(raw, want), case
        seen.add(reason)
    assert len(seen) >= 4, seen  # none, negatives, scaled, both, NaN/inf


@pytest.mark.equivalence
def test_final_check_kernel_equals_reference() -> None:
    rng = np.random.default_rng(1514)
    fails = 0
    for case in range(CASES):
        w, c = random_inputs(rng)
        if rng.random() < 0.5:  # a projected target: valid unless a rule is wrong
            for name in RULE_ORDER[1:-1]:
                w = getattr(R, f"rule_{name}")(w, c)
                if name == "halt" and c.level == 3:
                    break
        elif rng.random() < 0.3:
            w[rng.integers(w.size)] = rng.choice([np.nan, -0.1])
        s = K.new_scratch(w.size)
        problem = R.violation(w, c)
        assert K.rule_invariant_fallback(w.copy(), c, s) == bool(problem), (case, problem)
        fallback, why = R.rule_invariant_fallback(w, c)
        assert why == problem
        if problem:
            fails += 1
            assert np.array_equal(fallback, np.where(c.locked, c.cur, 0.0))
    assert CASES // 10 <= fails <= CASES - CASES // 10, fails  # both outcomes exercised
