"""Review reproducer: an outage ends while Kraken's OHLC still lags; the runner must wait, not crash.

The probe finds the open hour's bar, `LiveRunner.catch_up` then records missed up to the first hour
still on time *by the wall clock*, and `PaperLoop._catch_up` asks `feed.history` for bars Kraken has
not published yet: an uncaught DataError ends the run (and every restart, until the bars appear).
"""

from __future__ import annotations

from pathlib import Path

from tests.paper.live_helpers import T0, H, live_run


def test_outage_end_with_a_lagging_feed_waits_instead_of_crashing(tmp_path: Path) -> None:
    store, runner, fake, session = live_run(tmp_path / "l.db")
    runner.run(max_hours=2)
    fake.at(T0 + 2 * H + 1800, lambda: setattr(session, "status", "maintenance"))
    fake.at(T0 + 8 * H, lambda: setattr(session, "status", "online"))
    fake.freeze_at = T0 + 3 * H + 600  # after the maintenance Kraken's OHLC lags: bars up to ~T0+3h only
    stop_at = T0 + 12 * H
    runner.stop = lambda: fake() >= stop_at
    runner.run()
    store.verify()
    recs = store.audit_records()
    reasons = [r.payload_obj()["reasons"][0] for r in recs if r.kind == "kill_switch"
               and r.payload_obj().get("source") == "feed"]
    assert reasons[0] == "maintenance" and "stale" in reasons  # the lag after the maintenance is stale data
    store.close()
