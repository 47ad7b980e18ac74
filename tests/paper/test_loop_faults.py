"""Every Kraken fault of the feed's table, injected into a live paper run: the loop's reaction and no corrupted state.

The feed-level tests (tests/paper/test_kraken_feed.py) check what `KrakenFeed` reports; these
run the whole loop (`LiveRunner` -> `PaperLoop` -> `StateStore`) on the replayed Kraken API
with the fault injected while the cycle of hour H0 + 2 h fetches its execution bar, and check:

- ``retry``: the retried call succeeds: the books equal a fault-free run's, no outage recorded;
- ``down:<reason>`` / exchange status: one ``kill_switch`` event (source feed, that reason), the
  outage ends when the fault does, the hour is decided with the switch engaged (``halted``);
- ``nan`` (a data fault): skip with flag: the finding is in the FETCHED record's flags, the
  asset's bar is stored as null (never repaired) and nothing fills in it, as the backtest
  treats an hour without a bar (a gap); stale bars beyond ``max_stale_hours`` of a held asset
  engage the kill switch (its data-integrity trigger, tests/risk);
- ``kept`` (out-of-order, identical duplicates): flagged, the bar used: books equal the reference.

Every case ends with the audit chain verified and cash + units x marks = equity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paper import Stage, StateStore
from paper.app import check_books
from tests.paper.kraken_replay import PAIRS
from tests.paper.live_helpers import H0, T0, H, live_run
from tests.paper.test_kraken_feed import DATA_FAULTS, FAULTS, STATUS_FAULTS

FAULT_HOUR = H0 + 2 * H  # its cycle fetches bar H0 + 3h when it closes, at H0 + 4h = T0 + 2h - 60 s
BAR = FAULT_HOUR + H
INJECT, CLEAR = T0 + 2 * H - 61, T0 + 2 * H + 1800
HOURS = 4
DEFAULT = {"timeout", "503,503,503,503", "malformed,malformed", "maintenance", "missing", "nan_close",
           "out_of_order", "high_below_low"}


def at_bar(fn: Any) -> Any:
    """A row mutation of the feed tests re-targeted at this test's execution bar."""
    import tests.paper.test_kraken_feed as kf

    def mutate(rows: list[list[Any]]) -> list[list[Any]]:
        saved, kf.T = kf.T, BAR
        try:
            return fn(rows)  # type: ignore[no-any-return]
        finally:
            kf.T = saved

    return mutate


def high_below_low(rows: list[list[Any]]) -> list[list[Any]]:
    return [[*r[:2], repr(float(r[3]) * 0.99), *r[3:]] if r[0] == BAR else r for r in rows]


def run(tmp: Path, name: str, inject: Any = None, clear: Any = None) -> StateStore:
    store, runner, fake, session = live_run(tmp / f"{name}.db")
    if inject is not None:
        fake.at(INJECT, lambda: inject(session))
        fake.at(CLEAR, lambda: clear(session))
    runner.run(max_hours=HOURS)
    return store


def books(store: StateStore) -> list[Any]:
    return [(r["hour"], r["cash"], r["equity"], r["fees"], r["positions"]) for r in store.ledger_rows()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    store = run(tmp_path_factory.mktemp("ref"), "ref")
    rows = books(store)
    assert len(rows) == HOURS and store.fills()
    store.close()
    return rows


def sound(store: StateStore) -> None:
    store.verify()
    assert check_books(store) == []
    assert store.open_cycle() is None


def feed_events(store: StateStore) -> list[list[str]]:
    return [r.payload_obj()["reasons"] for r in store.audit_records()
            if r.kind == "kill_switch" and r.payload_obj().get("source") == "feed"]


def mark(ids: list[str]) -> list[Any]:
    return [i if i in DEFAULT else pytest.param(i, marks=pytest.mark.slow) for i in ids]


TRANSPORT = {",".join(k): (k, expect) for k, expect, _, _ in FAULTS}


@pytest.mark.parametrize("case", mark(list(TRANSPORT)))
def test_transport_fault_in_the_loop(tmp_path: Path, reference: list[Any], case: str) -> None:
    kinds, expect = TRANSPORT[case]

    def inject(s: Any) -> None:
        s.fail_next(*kinds)

    def clear(s: Any) -> None:
        s.failures.clear()

    store = run(tmp_path, "t", inject, clear)
    try:
        sound(store)
        if expect == "retry":
            assert books(store) == reference and feed_events(store) == []
        else:
            reason = expect.split(":", 1)[1]
            assert feed_events(store) == [[reason]]
            outcome = [r.kind for r in store.audit_records() if r.terminal and r.hour == FAULT_HOUR]
            assert outcome == ["halted"] and store.risk_state().kill_switch_engaged
            assert books(store)[:2] == reference[:2]  # the hours before the fault are untouched
    finally:
        store.close()


@pytest.mark.parametrize("case", mark([s for s, _ in STATUS_FAULTS]))
def test_exchange_status_in_the_loop(tmp_path: Path, reference: list[Any], case: str) -> None:
    reason = dict(STATUS_FAULTS)[case]
    store = run(tmp_path, "s", lambda s: setattr(s, "status", case), lambda s: setattr(s, "status", "online"))
    try:
        sound(store)
        assert feed_events(store) == [[reason]]
        assert store.risk_state().kill_switch_engaged and "exchange_down" in str(store.risk_state().kill_switch_trigger)
    finally:
        store.close()


DATA = {name: (asset, mutate, flags, bar) for name, asset, mutate, flags, bar in DATA_FAULTS}
DATA["high_below_low"] = ("BTC", high_below_low, ("invalid_bar:BTC",), "nan")


@pytest.mark.parametrize("case", mark(list(DATA)))
def test_data_fault_in_the_loop(tmp_path: Path, reference: list[Any], case: str) -> None:
    asset, mutate, flags, bar = DATA[case]
    pair = PAIRS[asset]
    fn = mutate if case == "high_below_low" else at_bar(mutate)

    def inject(s: Any) -> None:
        s.mutate[pair] = fn

    def clear(s: Any) -> None:
        s.mutate.pop(pair, None)

    store = run(tmp_path, "d", inject, clear)
    try:
        sound(store)
        fetched = store.stage_payload(FAULT_HOUR, Stage.FETCHED)["snapshot"]["bar"]
        assert set(flags) <= set(fetched["flags"])
        i = fetched["assets"].index(asset)
        if bar == "nan":
            assert fetched["close"][i] is None  # stored as the feed saw it: no bar, never repaired
            # the backtest's rule for an hour without a bar: the asset does not trade in it (no fill on
            # a bar nobody saw), the next bars carry its last close as a filled gap
            orders = {o.client_order_id: o.pair for o in store.orders(FAULT_HOUR)}
            assert not [f for f in store.fills(FAULT_HOUR) if asset in orders[f.client_order_id]
                        or (asset == "BTC" and "XBT" in orders[f.client_order_id])]
            assert feed_events(store) == []  # a bad bar is a data fault, not an outage
        else:
            assert fetched["close"][i] is not None and books(store) == reference
    finally:
        store.close()


def test_the_fault_table_is_the_feed_tests_table() -> None:
    """Counted in the notes: every feed-level case also runs through the loop here."""
    assert len(TRANSPORT) == len(FAULTS) and len(DATA) == len(DATA_FAULTS) + 1
    assert len(TRANSPORT) + len(STATUS_FAULTS) + len(DATA) >= 45
