"""The real paper loop in a subprocess, for the loop-level crash/restart test (REC-1, REC-2).

``python -m tests.paper.loop_crash_driver MARKET.pkl STATE START END [--kill POINT@N]`` replays
``START .. END`` of the pickled market with the scripted policy into ``STATE`` (created or
resumed). With ``--kill`` the store's fault hook SIGKILLs the process the N-th time it
reaches ``POINT`` (``"FETCHED:before"``, ``"INTENTS:mid"``, ``"LEDGER_COMMITTED:after"`` ...).
The clock is fixed, so an interrupted-and-resumed run must leave a byte-identical audit chain.
"""

from __future__ import annotations

import argparse
import os
import pickle
import signal
from decimal import Decimal
from pathlib import Path

from envs.config import EnvConfig
from envs.data.loaders import to_unix
from paper import StateStore
from paper.feeds.replay import ReplayFeed
from paper.loop import PaperLoop, PaperSetup
from risk.limits import resolve_limits
from tests.paper.loop_policy import ScriptedPolicy, clock


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("market")
    ap.add_argument("state")
    ap.add_argument("start")
    ap.add_argument("end")
    ap.add_argument("--kill")
    args = ap.parse_args()
    hook = None
    if args.kill:
        point, n = args.kill.rsplit("@", 1)
        seen = {"n": 0}

        def hook(p: str) -> None:  # type: ignore[misc]
            if p == point:
                seen["n"] += 1
                if seen["n"] == int(n):
                    os.kill(os.getpid(), signal.SIGKILL)

    market = pickle.loads(Path(args.market).read_bytes())
    cfg = EnvConfig()
    path = Path(args.state)
    if path.exists():
        store = StateStore.open(path, clock=clock, fault_hook=hook)
    else:
        store = StateStore.create(path, run_id="crash-loop", config_hash="cfg", first_hour=int(to_unix(args.start)),
                                  initial_cash=Decimal(repr(float(cfg.initial_cash))), clock=clock, fault_hook=hook)
    feed = ReplayFeed(market, end=args.end)
    loop = PaperLoop(store, feed, PaperSetup(cfg, resolve_limits("spec_a"), ScriptedPolicy()),
                     feed.history(store.next_hour(), 10**9), status=lambda s: None)
    loop.run()
    store.close()


if __name__ == "__main__":
    main()
