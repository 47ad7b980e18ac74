"""Running the paper loop against the clock: wait for bars, outages, stale data, downtime, clean stops.

`PaperLoop` processes an hour once its execution bar is closed; `LiveRunner` decides when to
ask and what a silence means (``feed=kraken``; a replay feed runs through it too, with its
own pace):

- **start-up**: hours whose cycle was due while the process was down are recorded ``missed``,
  never filled retroactively. The cycle of hour H is due when its execution bar H + 1
  closes (at H + 2 h, `paper.loop`'s time contract); ``grace_s`` later it is too late.
  Conservative on purpose: a process that died at any moment between deciding-time and
  the due time loses the hour, as a live trader would have;
- **waiting**: while the next bar is not published, sleep until it is due, then poll every
  ``poll_s``;
- **stale data**: no bar ``stale_after_s`` after it was due -> a `FeedDown("stale")` outage;
- **outage** (`FeedDown`: retries spent, maintenance, cancel-only, bad responses, stale):
  recorded once (`PaperLoop.feed_down`: the kill switch engages at the next decision); the
  runner probes every ``poll_s``; when bars flow again the hours whose cycle was due
  meanwhile are recorded ``missed`` and the loop resumes (the switch stays engaged
  until an operator reactivates);
- **stop** (SIGINT / SIGTERM through ``stop()``): checked between hours and while waiting, so
  the hour in progress always finishes its cycle; a second signal interrupts at once and
  the store's transaction rolls back (a restart resumes at the last recorded stage).

The clock, the sleep and the stop flag are injected, so the tests drive hours of waiting in
milliseconds.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from envs.errors import ConfigError
from paper.feeds.base import HOUR_S, BarBatch, FeedDown, NotPublished
from paper.hours import iso
from paper.loop import HourOutcome, PaperLoop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveConfig:
    """The runner's timing (seconds): ``conf/paper/default.yaml``'s ``live`` block."""

    poll_s: float = 30.0  # between polls while a bar is due but not published, and during an outage
    stale_after_s: float = 1800.0  # a bar not published this long after it closed: stale data -> kill switch
    grace_s: float = 600.0  # how late after its due time (H + 2 h) the cycle of hour H may still run

    def __post_init__(self) -> None:
        for name in ("poll_s", "stale_after_s", "grace_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
                raise ConfigError(f"paper.live.{name}: expected seconds > 0, got {value!r}")


def first_decidable_hour(now: float, grace_s: float) -> int:
    """The earliest hour whose cycle is still on time at ``now`` (H + 2 h + grace_s > now)."""
    return int((now - grace_s - 2 * HOUR_S) // HOUR_S) * HOUR_S + HOUR_S


def history_hours(first_hour: int, open_hour: int, warmup_hours: int) -> int:
    """Bars of history a (re)started live loop loads: from ``warmup_hours`` before the run's first hour.

    Anchored at the run's start, not at the open hour, so that a restart rebuilds the very
    market the uninterrupted process had (same first bar, same row numbers): a decision
    after a restart must equal the one the process would have made. Beyond Kraken's 720-hour
    OHLC window the feed reads the local bar store (``feed.store``).
    """
    return (open_hour - first_hour) // HOUR_S + int(warmup_hours)


class LiveRunner:
    """Drives ``loop`` hour after hour against ``clock`` (Unix seconds); see the module docstring."""

    def __init__(self, loop: PaperLoop, config: LiveConfig | None = None, *,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 stop: Callable[[], bool] = lambda: False) -> None:
        self.loop, self.config = loop, config or LiveConfig()
        self.clock, self._sleep, self.stop = clock, sleep, stop

    def sleep(self, seconds: float) -> None:
        """Sleep in slices of at most 1 s so that a stop request is seen promptly."""
        end = self.clock() + max(seconds, 0.0)
        while not self.stop():
            left = end - self.clock()
            if left <= 0:
                return
            self._sleep(min(left, 1.0))

    def catch_up(self, reason: str) -> list[int]:
        """Record ``missed`` every hour whose cycle is overdue (start-up, end of an outage)."""
        hours = self.loop.record_downtime(first_decidable_hour(self.clock(), self.config.grace_s), reason)
        if hours:
            log.warning("%d hour(s) recorded missed (%s): %s .. %s", len(hours), reason, iso(hours[0]), iso(hours[-1]))
        return hours

    def run(self, max_hours: int | None = None) -> list[HourOutcome]:
        """Process hours until ``stop()`` (or ``max_hours`` processed); returns their outcomes."""
        cfg, loop = self.config, self.loop
        out: list[HourOutcome] = []
        self.catch_up("process down")
        down = loop.outage()
        while not self.stop() and (max_hours is None or len(out) < max_hours):
            proceed, fetched = self._prefetch(loop.store.next_hour(), down)
            if not proceed:
                down = loop.outage()
                continue
            down = None
            try:
                outcome = loop.step(fetched=fetched)
            except FeedDown:
                down = loop.outage()
                self.sleep(cfg.poll_s)
                continue
            except NotPublished as exc:  # the new open hour's bars lag behind the clock: wait
                log.info("%s: waiting", exc)
                self._wait_or_stale()
                down = loop.outage()
                continue
            if outcome is None:
                self._wait_or_stale()
                down = loop.outage()
                continue
            out.append(outcome)
            loop.status(outcome.status_line())
        return out

    def _prefetch(self, hour: int, down: str | None) -> tuple[bool, BarBatch | None]:
        """Look at the open hour's execution bar before its cycle when that decides what happens.

        During an outage (``down``) it is the probe: bars flowing again end the outage, and the
        hours that came due meanwhile are recorded missed. Without one, an hour overdue without
        a crash (suspend, a long stall) gets the start-up rule once its bar is there, so a running
        process never decides an hour late. Returns (go on with the cycle, the bar to hand it);
        (False, None) after waiting or recording a `FeedDown`.
        """
        loop = self.loop
        overdue = loop.store.open_cycle() is None and hour < first_decidable_hour(self.clock(), self.config.grace_s)
        if down is None and not overdue:
            return True, None
        try:
            batch = loop.feed.next_bar(hour)
        except FeedDown as exc:
            loop.feed_down(exc)  # a different reason is a new record; the same one is not
            self.sleep(self.config.poll_s)
            return False, None
        if down is not None:
            if batch is None:
                self._wait_or_stale()
                return False, None
            self.catch_up(f"feed down ({down})")
            return True, batch  # step ignores it if the open hour moved on
        if batch is not None and self.catch_up("process stalled"):
            return True, None  # the open hour moved on
        return True, batch

    def _wait_or_stale(self) -> None:
        """The open hour's execution bar (closing at hour + 2 h) is not published: wait, or call it stale.

        The open hour is read afresh: an outage's end may just have recorded hours missed.
        """
        hour = self.loop.store.next_hour()
        due = hour + 2 * HOUR_S
        now = self.clock()
        if now < due:
            self.sleep(due - now)
        elif now >= due + self.config.stale_after_s:
            self.loop.feed_down(FeedDown("stale", f"no bar at {iso(hour + HOUR_S)} {now - due:.0f} s after it closed"))
            self.sleep(self.config.poll_s)
        else:
            self.sleep(min(self.config.poll_s, due + self.config.stale_after_s - now))


class StopFlag:
    """SIGINT / SIGTERM handling for a run: the first signal asks to stop after the hour in progress,
    a second one interrupts at once (KeyboardInterrupt: the open transaction rolls back)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self) -> bool:
        return self.signal is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt(f"second signal {signal.Signals(signum).name}: interrupted")
        self.signal = signum
        log.warning("%s received: stopping after the hour in progress", signal.Signals(signum).name)

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """Install the handlers for the block (main thread only), restoring the previous ones after."""
        old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


__all__ = ["LiveConfig", "LiveRunner", "StopFlag", "first_decidable_hour", "history_hours"]
