"""The mutation harness (`scripts/mutation.py`): its mutant list still fits the code, and one
cheap mutant goes through apply -> pytest -> restore end to end.

Stale rule: a mutant whose original snippet no longer occurs exactly once in its file (or
whose test file is gone) is *stale*: the harness reports it and does not run it. This test
lists the stale mutants and fails only when more than 20 % of them are stale (the list
then needs maintenance), so that ordinary refactoring does not break the suite but the
list cannot rot silently either.

The end-to-end test works on a copy of the package in ``tmp_path``: it never edits the
checkout itself, so it is safe beside a running harness or another test session.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _harness():
    spec = importlib.util.spec_from_file_location("mutation_harness", ROOT / "scripts" / "mutation.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve their module by name
    spec.loader.exec_module(mod)
    return mod


H = _harness()


def test_mutant_list_is_well_formed_and_mostly_current() -> None:
    mutants = H.load_mutants()
    assert len(mutants) >= 60
    assert len({m.id for m in mutants}) == len(mutants)
    assert {m.twin for m in mutants} <= {"single", "kernel", "reference-only", "both"}
    assert any(m.twin == "both" and len(m.edits) > 1 for m in mutants)  # multi-edit twin mutants exist
    stale = {m.id: H.stale_reasons(m) for m in mutants}
    stale = {k: v for k, v in stale.items() if v}
    for mid, why in stale.items():
        print(f"stale mutant {mid}: {'; '.join(why)}")
    assert len(stale) <= H.STALE_LIMIT * len(mutants), f"{len(stale)} of {len(mutants)} mutants are stale: {stale}"


def test_a_vanished_snippet_is_reported_stale_not_dropped() -> None:
    m = H.load_mutants()[0]
    gone = replace(m, edits=(replace(m.edits[0], old="this text is not in the file"),))
    assert any("occurs 0 times" in w for w in H.stale_reasons(gone))
    res = H.run_mutant(gone, exclude_equivalence=True, cache_root=Path("/nonexistent"))
    assert res.status == "stale" and "occurs 0 times" in res.message
    with pytest.raises(ValueError, match="stale"), H.mutated(gone):
        pass


def _copy_tree(dst: Path) -> Path:
    """The package, configs and the few tests the cheap mutant needs, under ``dst``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for d in ("envs", "risk", "conf"):
        shutil.copytree(ROOT / d, dst / d, ignore=ignore)
    (dst / "tests" / "risk").mkdir(parents=True)
    for f in ("pyproject.toml", "tests/conftest.py", "tests/risk/test_risk_limits.py"):
        shutil.copy2(ROOT / f, dst / f)
    return dst


def test_one_cheap_mutant_end_to_end_is_killed_and_the_file_restored(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path / "repo")
    mutant = next(m for m in H.load_mutants() if m.id == "RK-27")  # risk/limits.py: pure Python
    mutant = replace(mutant, tests=("tests/risk/test_risk_limits.py::test_out_of_range_values_are_rejected",))
    target = root / "risk" / "limits.py"
    before, mtime = hashlib.sha256(target.read_bytes()).hexdigest(), target.stat().st_mtime_ns

    res = H.run_mutant(mutant, exclude_equivalence=True, timeout=300, cache_root=tmp_path, root=root)
    assert res.status == "killed", res
    assert res.killer.startswith("tests/risk/test_risk_limits.py::test_out_of_range_values_are_rejected")
    assert res.source_sha256 == {"risk/limits.py": before}
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before  # restored byte for byte
    assert target.stat().st_mtime_ns == mtime
    assert not (root / H.JOURNAL).exists()

    # the same mutant against a test that cannot see it survives (and is restored too)
    (root / "tests" / "test_blind.py").write_text(
        "from risk.limits import SPEC_A\n\n\ndef test_blind():\n    assert SPEC_A.max_positions == 10\n"
    )
    blind = replace(mutant, tests=("tests/test_blind.py",))
    res = H.run_mutant(blind, exclude_equivalence=True, timeout=300, cache_root=tmp_path, root=root)
    assert res.status == "survived" and res.killer == "", res
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before


def test_an_interrupted_run_is_restored_from_the_journal(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "risk").mkdir(parents=True)
    shutil.copy2(ROOT / "risk" / "limits.py", root / "risk" / "limits.py")
    target = root / "risk" / "limits.py"
    before = target.read_bytes()
    mutant = next(m for m in H.load_mutants() if m.id == "RK-27")
    with pytest.raises(KeyboardInterrupt), H.mutated(mutant, root):
        assert target.read_bytes() != before and (root / H.JOURNAL).exists()
        raise KeyboardInterrupt  # the finally clause restores
    assert target.read_bytes() == before and not (root / H.JOURNAL).exists()
    # a crash that skipped the finally clause: the next start restores from the journal
    gen = H.mutated(mutant, root)
    gen.__enter__()
    assert target.read_bytes() != before
    assert H.recover(root) == ["risk/limits.py"]
    assert target.read_bytes() == before and not (root / H.JOURNAL).exists()
    gen.__exit__(None, None, None)  # (restores again: harmless)
    assert target.read_bytes() == before
