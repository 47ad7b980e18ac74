"""krakenrl.cli: the one thin main every script uses (exit codes, the outputs line, Hydra's job name)."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from envs.errors import DataError
from krakenrl.cli import cli_main, hydra_main, print_outputs

ROOT = Path(__file__).resolve().parents[1]
HYDRA_SCRIPTS = ("bench", "evaluate", "risk_stress", "run", "train", "train_predictors")


def _job(cfg, out_dir):  # type: ignore[no-untyped-def]
    return None


def test_hydra_main_keeps_the_job_as_the_task_hydra_names() -> None:
    from hydra._internal.utils import detect_calling_file_or_module_from_task_function

    main = hydra_main(_job, "run")
    _, module = detect_calling_file_or_module_from_task_function(main)
    assert module == __name__  # Hydra unwraps to _job: the job is named after its file, not after krakenrl.cli


@pytest.mark.parametrize("name", HYDRA_SCRIPTS)
def test_every_hydra_script_uses_the_shared_main(name: str) -> None:
    text = (ROOT / "scripts" / f"{name}.py").read_text()
    assert re.search(rf'^main = hydra_main\(\w+, "{name}"\)$', text, re.M), name
    assert "@hydra.main" not in text and 'print(f"outputs:' not in text


def test_cli_main_exit_codes_and_messages(capsys: pytest.CaptureFixture[str]) -> None:
    def bad() -> int:
        raise DataError("prices.csv: row 3: high < low")

    with pytest.raises(SystemExit) as err:
        cli_main(bad)
    assert err.value.code == 2 and capsys.readouterr().err == "error: prices.csv: row 3: high < low\n"
    for returned, code in ((None, 0), (0, 0), (3, 3)):
        with pytest.raises(SystemExit) as err:
            cli_main(lambda r=returned: r)  # type: ignore[misc]
        assert err.value.code == code
    with pytest.raises(ZeroDivisionError):  # a bug is not a user error: it keeps its traceback
        cli_main(lambda: 1 // 0)


def test_print_outputs_line(capsys: pytest.CaptureFixture[str]) -> None:
    print_outputs(Path("/a/b"), "c.md")
    assert capsys.readouterr().out == "outputs: /a/b c.md\n"


def test_bench_job_takes_the_output_folder_like_every_job() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import bench
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert list(inspect.signature(bench.run).parameters) == ["cfg", "out_dir"]


def test_script_bad_config_value_exits_2_naming_it(tmp_path: Path) -> None:
    """A ConfigError raised by the shared from_mapping reaches the user through the shared main."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "+agent.learning_rat=0.1", "mlflow.enabled=false",
         f"hydra.run.dir={tmp_path / 'out'}", f"cache_dir={tmp_path / 'cache'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith("error: agent: unknown keys ['learning_rat'] for AgentConfig"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "outputs:" not in proc.stdout
