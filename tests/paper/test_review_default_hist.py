"""``feed=kraken`` with conf/feed/kraken.yaml's defaults (no bar store) starts, and a run that outgrew Kraken's
OHLC window without a store is refused up front, naming ``feed.store`` (review finding: the old default,
720 warm-up hours, could never load its history: the window holds 719 closed bars)."""

from __future__ import annotations

from pathlib import Path

import pytest

from paper.app import COMMANDS
from tests.agents.pipeline_helpers import compose_config
from tests.paper.kraken_replay import KrakenReplay, kraken_exchange
from tests.paper.live_helpers import T0, FakeClock


def test_feed_kraken_with_the_default_history_and_no_store_starts(tmp_path: Path) -> None:
    session = KrakenReplay(T0)
    fake = FakeClock(T0, session)
    cfg = compose_config("paper_trade", ["command=run", "feed=kraken", "feed.assets=[BTC,ETH]",
                                         "policy=baseline:equal_weight_daily", f"state={tmp_path / 'x.db'}",
                                         "max_hours=1"])
    assert COMMANDS["run"](cfg, print, exchange=kraken_exchange(session, 1), clock=fake, sleep=fake.sleep) == 0  # type: ignore[call-arg]


def test_a_live_run_that_outgrew_the_ohlc_window_without_a_store_is_refused_naming_feed_store(tmp_path: Path) -> None:
    from envs.errors import ConfigError
    from tests.paper.live_helpers import H

    state = tmp_path / "y.db"
    session = KrakenReplay(T0)
    fake = FakeClock(T0, session)
    cfg = compose_config("paper_trade", ["command=run", "feed=kraken", "feed.assets=[BTC,ETH]", "feed.history_hours=700",
                                         "policy=baseline:equal_weight_daily", f"state={state}", "max_hours=1"])
    assert COMMANDS["run"](cfg, print, exchange=kraken_exchange(session, 1), clock=fake, sleep=fake.sleep) == 0  # type: ignore[call-arg]
    later = T0 + 30 * H  # 30 hours later: 700 warm-up + 30 > 719
    session2 = KrakenReplay(later)
    fake2 = FakeClock(later, session2)
    with pytest.raises(ConfigError, match=r"feed\.store: this live run needs 730 hours"):
        COMMANDS["run"](cfg, print, exchange=kraken_exchange(session2, 1), clock=fake2, sleep=fake2.sleep)  # type: ignore[call-arg]
