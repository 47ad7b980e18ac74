"""``paper_trade.py command=run feed=kraken``: the live path of the command, on a real ccxt kraken replaying
Kraken's API and a fake clock (`tests.paper.live_helpers`), then ``status`` on what it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.errors import ConfigError
from paper import StateStore
from paper.app import COMMANDS, check_books
from tests.agents.pipeline_helpers import compose_config
from tests.paper.kraken_replay import KrakenReplay, kraken_exchange
from tests.paper.live_helpers import H0, T0, FakeClock, H


def live_cfg(state: Path, *extra: str):  # type: ignore[no-untyped-def]
    return compose_config("paper_trade", ["command=run", "feed=kraken", "feed.assets=[BTC,ETH]",
                                          "policy=baseline:equal_weight_daily", f"state={state}",
                                          "feed.history_hours=200", "paper.live.poll_s=60", *extra])


def test_feed_kraken_runs_live_hours_and_status_reads_them(tmp_path: Path) -> None:
    session = KrakenReplay(T0)
    fake = FakeClock(T0, session)
    lines: list[str] = []
    state = tmp_path / "live.db"
    rc = COMMANDS["run"](live_cfg(state, "max_hours=3"), lines.append, exchange=kraken_exchange(session, 1),  # type: ignore[call-arg]
                         clock=fake, sleep=fake.sleep)
    assert rc == 0
    assert [x.split()[0] for x in lines if " equity=" in x] == \
        [f"{h}" for h in ("2023-03-30T07:00:00Z", "2023-03-30T08:00:00Z", "2023-03-30T09:00:00Z")]
    store = StateStore.open(state, readonly=True)
    try:
        assert store.first_hour == H0  # feed.start=null: the first hour still on time at T0
        assert store.next_hour() == H0 + 3 * H and check_books(store) == []
        store.verify()
        assert store.fills()  # equal-weight daily bought BTC and ETH
    finally:
        store.close()
    status: list[str] = []
    assert COMMANDS["status"](compose_config("paper_trade", ["command=status", f"state={state}"]), status.append) == 0
    assert any("kill switch off" in x for x in status) and any("positions {'BTC'" in x for x in status)
    # no request carried a credential (paper mode holds no keys and calls public endpoints only)
    assert all(p.startswith("/0/public/") for p, _ in session.log)
    assert not any("API-Key" in h or "API-Sign" in h for hs in session.sent_headers for h in hs)


def test_feed_kraken_refuses_a_trained_policy_and_an_empty_universe(tmp_path: Path) -> None:
    session = KrakenReplay(T0)
    with pytest.raises(ConfigError, match="feed=kraken runs a baseline"):
        COMMANDS["run"](live_cfg(tmp_path / "a.db", "policy=outputs/train/some_run"), print,  # type: ignore[call-arg]
                        exchange=kraken_exchange(session, 1))
    with pytest.raises(ConfigError, match=r"feed\.assets"):
        COMMANDS["run"](live_cfg(tmp_path / "b.db", "feed.assets=null"), print,  # type: ignore[call-arg]
                        exchange=kraken_exchange(session, 1))
    with pytest.raises(ConfigError, match="apiKey"):
        COMMANDS["run"](live_cfg(tmp_path / "c.db", "+feed.ccxt.apiKey=abc"), print,  # type: ignore[call-arg]
                        exchange=None)
