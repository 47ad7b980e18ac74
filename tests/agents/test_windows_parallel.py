"""run.py stages=[walk_forward] with the windows as parallel tasks: the per-window and pooled
metrics are exactly those of the serial run (each window trains and evaluates on its own)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.agents.pipeline_helpers import EVAL_END, compose_config, tiny_overrides
from tests.conftest import load_script


def _windows(base: Path, executor: list[str]) -> dict:
    overrides = [o for o in tiny_overrides(base / "cache") if not o.startswith("data.end")]
    overrides += ["stages=[walk_forward]", "windows.n=2", "windows.test_hours=168", f"eval.end={EVAL_END}",
                  "report=false", "n_boot=50", *executor]
    doc = load_script("run").main_job(compose_config("run", overrides), base)["walk_forward"]
    return json.loads(json.dumps({"strategies": doc["strategies"], "windows": doc["windows"]}, default=str))


@pytest.mark.slow
def test_windows_through_joblib_and_ray_equal_the_serial_windows(tmp_path, local_ray) -> None:
    serial = _windows(tmp_path / "serial", [])
    assert len(serial["windows"]) == 2
    assert _windows(tmp_path / "joblib", ["executor=joblib", "executor.workers=2"]) == serial
    assert _windows(tmp_path / "ray", ["executor=ray", "executor.workers=2"]) == serial
