"""Regression (review finding): readiness's fee check drops the 30-day volume credit after the first hour.

The ledger prices a fill at the tier of (window volume + fee_volume_30d x max(720 - hours, 0) / 720)
(`envs.execution.ledger`); `paper.app.readiness` starts from fee_volume_30d but then uses the
account's ``volume_30d`` (the window alone), so with a credit every later fill is checked at the
wrong tier and the item read "not met" although the fills were right.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from envs.config import EnvConfig
from paper.app import readiness
from tests.paper.live_helpers import live_run


def test_readiness_fee_check_holds_with_a_volume_credit(tmp_path: Path) -> None:
    env = EnvConfig(order_type="market", fee_model="kraken_tiers", fee_volume_30d=60_000.0)
    store, runner, _fake, _ = live_run(tmp_path / "fee.db", env=env)
    store.record_event("start", {"config": {"env": dataclasses.asdict(env)}})
    runner.run(max_hours=6)
    assert sum(bool(store.fills(r["hour"])) for r in store.ledger_rows()) >= 2  # fills in two or more hours
    items = {i["item"].split(" (")[0]: i for i in readiness(store)}
    fee = items["fee model checked against the paper fills"]
    assert fee["met"], fee["evidence"]
    store.close()
