"""A month of real Kraken hourly closes (XBT, ETH, LTC; May 2022) through the fixture's run, then a screenshot.

    python -m tests.dashboard.kraken_month OUT_DIR [--month 2022-05]

The prices are real (``/work/shared/data/kraken/ohlcvt_1h``, Kraken's OHLCVT CSVs; gaps
forward-filled on the hourly grid); the decisions, predictions and the scripted kill switch
are the fixture's (tests/dashboard/fixture.py), not a trained policy: this shows the dashboard
on real market moves until the paper loop's own replay is available. Writes ``state.db`` and
``dashboard.png`` into OUT_DIR.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tests.dashboard import fixture
from tests.dashboard.snapshot import snapshot

DATA = Path("/work/shared/data/kraken/ohlcvt_1h")
PAIRS = {"BTC": "XBTUSD", "ETH": "ETHUSD", "LTC": "LTCUSD"}


def closes(pair: str, start: int, n: int) -> np.ndarray:
    """Hourly closes on the grid ``start, start + 3600, ...`` (n of them), forward-filled over gaps."""
    out = np.full(n, np.nan)
    with gzip.open(DATA / f"{pair}_60.csv.gz", "rt") as f:
        for line in f:
            t, _o, _h, _l, c = line.split(",")[:5]
            i = (int(t) - start) // 3600
            if 0 <= i < n and int(t) % 3600 == 0:
                out[i] = float(c)
    last = np.nan
    for i in range(n):
        last = out[i] = out[i] if np.isfinite(out[i]) else last
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{pair}: no bar at the start of the window")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--month", default="2022-05")
    args = ap.parse_args(argv)
    y, m = map(int, args.month.split("-"))
    start = int(datetime(y, m, 1, tzinfo=UTC).timestamp())
    end = int(datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC).timestamp())
    n = (end - start) // 3600
    prices = np.stack([closes(p, start, n) for p in PAIRS.values()], axis=1)
    fixture.use_market(tuple(PAIRS), prices, start)
    args.out.mkdir(parents=True, exist_ok=True)
    state = args.out / "state.db"
    pinned = datetime.fromtimestamp(end, tz=UTC)
    fixture.build_state(state, n, pinned=pinned)
    size = snapshot(state, args.out / "dashboard.png", now=end + 300)
    print(f"{n} hours of {args.month} -> {state}; screenshot {size[0]}x{size[1]} {args.out / 'dashboard.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
