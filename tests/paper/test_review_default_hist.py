"""Review reproducer: ``feed=kraken`` with conf/feed/kraken.yaml's defaults (history_hours 720, store null).

history_hours(first, open, 720) asks for 720 closed bars ending at the open hour, which starts ~2 h
before the oldest row of Kraken's 720-row OHLC window (the running bar included): the very first start
fails, and a restart of any live run without feed.store fails once elapsed + history_hours > ~718.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paper.app import COMMANDS
from tests.agents.pipeline_helpers import compose_config
from tests.paper.kraken_replay import KrakenReplay, kraken_exchange
from tests.paper.live_helpers import T0, FakeClock


@pytest.mark.xfail(strict=True, reason="review finding: the default live config cannot load its history")
def test_feed_kraken_with_the_default_history_and_no_store_starts(tmp_path: Path) -> None:
    session = KrakenReplay(T0)
    fake = FakeClock(T0, session)
    cfg = compose_config("paper_trade", ["command=run", "feed=kraken", "feed.assets=[BTC,ETH]",
                                         "policy=baseline:equal_weight_daily", f"state={tmp_path / 'x.db'}",
                                         "max_hours=1"])
    assert COMMANDS["run"](cfg, print, exchange=kraken_exchange(session, 1), clock=fake, sleep=fake.sleep) == 0  # type: ignore[call-arg]
