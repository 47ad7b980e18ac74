"""A running live process that stalls (suspend, SIGSTOP, long I/O) must not decide the overdue hours late."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.paper.live_helpers import H0, H, live_run


def test_a_stall_inside_a_run_records_the_overdue_hours_missed(tmp_path: Path) -> None:
    store, runner, fake, _ = live_run(tmp_path / "s.db")
    orig, calls = runner.loop.step, {"n": 0}

    def step(*a: Any, **k: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # the process is suspended for 10 h before its third cycle
            fake.t += 10 * H
            fake.sync()
        return orig(*a, **k)

    runner.loop.step = step  # type: ignore[method-assign]
    out = runner.run(max_hours=4)
    kinds = [r.kind for r in store.audit_records() if r.terminal]
    assert kinds.count("missed") >= 9 and kinds[:2] != ["missed", "missed"]
    assert [o.hour for o in out[:2]] == [H0, H0 + H] and out[2].hour >= H0 + 11 * H  # no late decision
    store.verify()
    store.close()
