"""scripts/download_data.py end to end behind the replayer, its config errors, and ``data=store`` for the entry points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from envs.data.align import iso
from envs.data.download import Downloader
from envs.data.loaders import read_table_file
from envs.data.market import MarketData
from envs.data.store import BarStore
from envs.data.trades import trades_to_bars
from envs.errors import ConfigError, DataError
from tests.conftest import SHARED_DATA, load_script
from tests.data.replay import binance_session, coinbase_rows, coinbase_session, kraken_session, recorded

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
H = 3600




def _cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="download_data", overrides=overrides)


def test_download_script_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the recorded XBTUSDT tape served as Kraken XXBTZUSD; references hand-made around its hourly closes
    tape = recorded("http_trades.json")["result"]["XBTUSDT"]
    t = np.array([int(float(r[2]) * 1000) for r in tape])
    bars = trades_to_bars(t, np.array([float(r[0]) for r in tape]), np.array([float(r[1]) for r in tape]))
    start, end = int(bars.timestamps[0]), int(bars.timestamps[-1])
    bump = np.where(bars.timestamps == bars.timestamps[3], 1.01, 1.0)  # one hour where Binance is 1 % off
    klines = [[int(ts) * 1000, repr(float(o)), repr(float(h * b)), repr(float(lo)), repr(float(c * b)), "1.0", int(ts) * 1000 + 3_599_999, "0", 0,
               "0", "0", "0"] for ts, o, h, lo, c, b in zip(bars.timestamps, bars.open, bars.high, bars.low, bars.close,
                                                             bump, strict=True)]  # fmt: skip
    cb = coinbase_rows(list(zip(bars.timestamps, bars.open, bars.high, bars.low, bars.close, bars.volume, strict=True)))
    sessions = {"kraken": kraken_session(trades={"XXBTZUSD": tape}), "binance": binance_session({"BTCUSDT": klines}),
                "coinbase": coinbase_session({"BTC-USD": cb})}  # fmt: skip
    store = tmp_path / "store"
    cfg = _cfg([f"store={store}", "pairs=[XBT/USD]", f"start={iso(start)}",
                f"end={iso(end)}", "download.kraken.sources=[trades]", "download.page_limit=100",
                "download.progress=false"])  # fmt: skip
    summary = load_script("download_data").run(cfg, tmp_path / "out", sessions=sessions, now=lambda: end + 6 * H,
                                           sleep=lambda s: None, exchange_options={"rateLimit": 5})  # fmt: skip
    out = capsys.readouterr().out
    assert "bars fetched" in out and "integrity flags" in out
    by = {(s.exchange, s.source): s for s in summary.series}
    assert by[("kraken", "trades")].bars_added == 8 and by[("kraken", "trades")].trades == 1000
    assert by[("binance", "ohlcv")].bars_added == 8 and by[("coinbase", "ohlcv")].bars_added == 8
    for name in ("summary.json", "integrity.csv", "integrity_events.csv", "integrity.png"):
        assert (tmp_path / "out" / name).is_file(), name
    assert BarStore(store).verify() == []
    market = instantiate(_data_cfg(store))
    assert isinstance(market, MarketData) and market.integrity_ok is not None and market.n_bars == 8


def test_download_config_errors_name_the_key(tmp_path: Path) -> None:
    run = load_script("download_data").run
    base = [f"store={tmp_path}", "start=2024-01-01", "end=2024-01-02"]
    cases = [
        (["pairs=[FOO/USD]"], DataError, "unknown pair 'FOO/USD'"),
        (["pairs=[]"], ConfigError, "pairs: expected"),
        (["download.kraken.sources=[trades,ticks]"], ConfigError, "download.kraken.sources"),
        (["download.references=[bitstamp]"], ConfigError, "download.references"),
        (["download.page_limit=0"], ConfigError, "download.page_limit"),
        (["start=2024-02-01"], ConfigError, "end: expected"),
        (["start=not-a-date"], ConfigError, "start/end"),
        (["download.kraken.csv_dir=/no/such/dir"], ConfigError, "download.kraken.csv_dir"),
        (["exchange=binance"], ConfigError, "exchange: only 'kraken'"),
    ]
    for extra, exc, match in cases:
        with pytest.raises(exc, match=match):
            run(_cfg(base + extra), tmp_path / "out", sessions={})


def _data_cfg(store: Path, config: str = "train_predictors", extra: list[str] | None = None):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=config, overrides=["data=store", f"data.path={store}", *(extra or [])]).data


def _real_store(root: Path, start: int, end: int) -> Path:
    """Kraken CSV dump (BTC, ETH) and Binance references (from the shared CSVs) in one store."""
    store = BarStore(root)
    dl = Downloader(store, {}, progress=False)
    for asset, name in (("BTC", "XBTUSD_60.csv.gz"), ("ETH", "ETHUSD_60.csv.gz")):
        dl.kraken_csv(SHARED_DATA / "kraken" / "ohlcvt_1h" / name, asset, start, end)
        ref = read_table_file(SHARED_DATA / "binance" / "spot_1h" / f"{asset}USDT_1h.csv.gz", asset)
        store.append("binance", f"{asset}-USDT", ref.take((ref.timestamps >= start) & (ref.timestamps <= end)), "csv")
    return root


def test_data_store_feeds_train_and_train_predictors_configs(tmp_path: Path) -> None:
    start, end = 1_640_995_200, 1_640_995_200 + 999 * H  # 2022-01-01, 1,000 hours
    store = _real_store(tmp_path / "store", start, end)
    for config in ("train_predictors", "train"):
        market = instantiate(_data_cfg(store, config))
        assert isinstance(market, MarketData) and market.assets == ("BTC", "ETH") and market.n_bars == 1000
        assert market.integrity_ok is not None and market.integrity_ok.mean() > 0.99
    from envs.data.loaders import load_kraken_dir

    direct = load_kraken_dir(SHARED_DATA / "kraken" / "ohlcvt_1h", assets=["BTC", "ETH"], start=start, end=end)
    assert market.equals(direct.__class__(**{**direct.__dict__, "integrity_ok": market.integrity_ok,
                                             "source": market.source}))  # fmt: skip
    plain = instantiate(_data_cfg(store, extra=["data.reference=[]", "data.assets=[XBT/USD]"]))
    assert plain.integrity_ok is None and plain.assets == ("BTC",)


@pytest.mark.slow
def test_train_predictors_runs_on_the_store(tmp_path: Path) -> None:
    import torch

    torch.set_num_threads(1)
    start, end = 1_640_995_200, 1_640_995_200 + 999 * H
    store = _real_store(tmp_path / "store", start, end)
    from tests.predictors.test_pred_train_script import OVERRIDES

    keep = [o for o in OVERRIDES if not o.startswith("data.")]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train_predictors",
                      overrides=["data=store", f"data.path={store}", *keep, "mlflow.enabled=false"])  # fmt: skip
    summary = load_script("train_predictors").run(cfg, tmp_path / "out")
    assert (tmp_path / "out" / "predictions.parquet").is_file()
    assert 0.0 <= summary["overall"]["meta"]["1"]["auc"] <= 1.0
