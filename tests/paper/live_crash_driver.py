"""A live paper run (KrakenFeed over the replayed Kraken API, fake clock) in a subprocess, for crash tests.

``python -m tests.paper.live_crash_driver STATE HOURS [--kill-backoff K]`` runs the live loop
until the open hour is ``H0 + HOURS``. Every hour two read timeouts are injected into the
next OHLC requests, so the feed backs off twice per hour before the retry succeeds. With
``--kill-backoff K`` the process SIGKILLs itself inside its K-th backoff wait: the crash
point "during backoff". The restarted process (same command, no kill) must end with the
state an uninterrupted run leaves. The restart's clock starts a minute after the open hour's
execution bar closed (the process comes back at once; nothing is due late, nothing missed).
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from paper import StateStore
from tests.paper.live_helpers import H0, T0, FakeClock, H, live_run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("state")
    ap.add_argument("hours", type=int)
    ap.add_argument("--kill-backoff", type=int)
    args = ap.parse_args()
    waits = {"n": 0}
    box: dict[str, FakeClock] = {}

    def backoff(seconds: float) -> None:
        waits["n"] += 1
        if args.kill_backoff is not None and waits["n"] == args.kill_backoff:
            os.kill(os.getpid(), signal.SIGKILL)
        box["clock"].sleep(seconds)

    def faults(session, fake) -> None:  # type: ignore[no-untyped-def]
        box["clock"] = fake
        for k in range(args.hours + 3):
            if T0 + k * H + 30 >= fake():  # a restart does not replay the faults of hours already past
                fake.at(T0 + k * H + 30, lambda: session.fail_next("timeout", "timeout"))

    t0 = T0
    if Path(args.state).exists():  # a restart right after the crash: the open hour's bar closed a minute ago
        peek = StateStore.open(Path(args.state), readonly=True)
        t0 = max(T0, peek.next_hour() + 2 * H + 60)
        peek.close()
    store, runner, _, _ = live_run(Path(args.state), t0=t0, feed_sleep=backoff, setup_session=faults)
    end = H0 + args.hours * H
    runner.stop = lambda: store.next_hour() >= end
    runner.run()
    store.close()
    print(f"backoff waits: {waits['n']}")


if __name__ == "__main__":
    main()
