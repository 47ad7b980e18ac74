"""A live paper run on a fake clock: `KrakenFeed` over the Kraken replay session, driven by `LiveRunner`.

The clock only moves when the runner (or the feed's backoff) sleeps, and the replay session
serves Kraken's rows up to the clock, so hours of waiting run in milliseconds and every run
is deterministic. ``freeze_at``: the session stops publishing bars after that time (stale data).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from envs.config import EnvConfig
from paper import StateStore
from paper.feeds.faults import RetryPolicy
from paper.feeds.kraken import KrakenFeed
from paper.live import LiveConfig, LiveRunner, history_hours
from paper.loop import PaperLoop, PaperSetup
from risk.limits import resolve_limits
from tests.paper.kraken_replay import END, H, KrakenReplay, kraken_exchange
from tests.paper.loop_policy import ScriptedPolicy, clock

H0 = END - 40 * H  # the first decision hour of the live tests
T0 = H0 + 2 * H + 60  # its execution bar closed a minute ago
LIVE = LiveConfig(poll_s=60.0, stale_after_s=1800.0, grace_s=600.0)
RETRY = RetryPolicy(retries=3, backoff_s=1.0, max_backoff_s=4.0, jitter=0.5)  # as the feed tests


class FakeClock:
    """Unix seconds that advance only by `sleep`; ``on_time`` hooks fire once the clock passes their time."""

    def __init__(self, t: float, session: KrakenReplay) -> None:
        self.t, self.session = float(t), session
        self.freeze_at: float | None = None
        self.hooks: list[tuple[float, Callable[[], None]]] = []
        self.sync()

    def __call__(self) -> float:
        return self.t

    def sync(self) -> None:
        self.session.now = self.t if self.freeze_at is None else min(self.t, self.freeze_at)
        due = [h for h in self.hooks if h[0] <= self.t]
        self.hooks = [h for h in self.hooks if h[0] > self.t]
        for _, fn in due:
            fn()

    def sleep(self, s: float) -> None:
        self.t += max(float(s), 0.0)
        self.sync()

    def at(self, t: float, fn: Callable[[], None]) -> None:
        self.hooks.append((float(t), fn))


def live_run(path: Path, t0: float = T0, first_hour: int = H0, feed_sleep: Callable[[float], None] | None = None,
             setup_session: Callable[[KrakenReplay, FakeClock], None] | None = None,
             config: LiveConfig = LIVE, env: EnvConfig | None = None, **kw: Any) -> tuple[StateStore, LiveRunner, FakeClock, KrakenReplay]:
    """A `LiveRunner` over a new (or existing) state file, not yet run."""
    session = KrakenReplay(t0)
    fake = FakeClock(t0, session)
    if setup_session is not None:
        setup_session(session, fake)
    feed = KrakenFeed(("BTC", "ETH"), exchange=kraken_exchange(session, 1), policy=RETRY, min_interval_ms=1,
                      sleep=feed_sleep or fake.sleep, rng=lambda: 0.5, now=fake)
    cfg = env or EnvConfig()
    if path.exists():
        store = StateStore.open(path, clock=clock)
    else:
        store = StateStore.create(path, run_id="live-test", config_hash="cfg", first_hour=first_hour,
                                  initial_cash=Decimal(repr(float(cfg.initial_cash))), clock=clock)
    loop = PaperLoop(store, feed, PaperSetup(cfg, resolve_limits("spec_a"), ScriptedPolicy()),
                     feed.history(store.next_hour(), history_hours(store.first_hour, store.next_hour(), 300)),
                     status=lambda s: None)
    return store, LiveRunner(loop, config, clock=fake, sleep=fake.sleep, **kw), fake, session


__all__ = ["H0", "LIVE", "RETRY", "T0", "FakeClock", "H", "live_run"]
