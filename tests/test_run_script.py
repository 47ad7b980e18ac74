"""The main job composes through Hydra, prints the summary and fails loudly on bad data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def compose_run(overrides: list[str]):  # type: ignore[no-untyped-def]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="run", overrides=overrides)


def test_run_on_real_kraken_and_binance_folders(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "scripts"))
    import run as run_script

    table = run_script.run(compose_run(["data=kraken_csv", f"data.path={SHARED / 'kraken' / 'ohlcvt_1h'}"]), tmp_path / "k")
    assert set(table.index) == {"BTC", "ETH", "LTC", "XRP", "BCH"}
    assert table.loc["BTC", "first_bar"] == "2013-10-06 21:00"
    assert table.loc["BTC", "last_bar"] == "2023-03-31 23:00"
    assert (tmp_path / "k" / "summary.csv").exists() and (tmp_path / "k" / "market.parquet").exists()
    table = run_script.run(compose_run(["data=csv", f"data.path={SHARED / 'binance' / 'spot_1h'}"]), tmp_path / "b")
    assert len(table) == 13 and table.loc["BTC", "bars"] == 61_246
    assert "missing_hours" in capsys.readouterr().out


def test_bad_data_exits_non_zero_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "XBTUSD_60.csv").write_text("1672531200,10,11,9,10.5,1,1\n1672534800,10,9,9,10.5,1,1\n")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run.py"), "stages=[summary]", "data=kraken_csv", f"data.path={tmp_path}",
         f"hydra.run.dir={tmp_path / 'out'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode != 0
    assert "XBTUSD_60.csv: asset BTC: row 2: high=9.0" in proc.stderr


def test_default_run_prints_summary_and_outputs_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run.py"), "stages=[summary]", f"hydra.run.dir={tmp_path / 'out'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == f"outputs: {tmp_path / 'out'}"
    assert "synthetic" in proc.stdout and "ann_vol_pct" in proc.stdout
