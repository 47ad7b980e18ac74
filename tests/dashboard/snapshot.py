"""Screenshot the dashboard over any state file (full page), for notes and reviews.

    python -m tests.dashboard.snapshot STATE OUT.png [--width 1400] [--now UNIX_S]

Serves the app on a free loopback port, opens it in headless chromium, waits for the charts,
resizes the window to the page's height and saves a PNG. ``--now`` pins the dashboard's clock
(a replayed run otherwise shows as stale, which is true but not what a review wants to see).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.dashboard.server import running_dashboard
from tests.dashboard.test_browser import make_driver, png_size, wait_rendered


def snapshot(state: Path, out: Path, width: int = 1400, now: float | None = None) -> tuple[int, int]:
    kw = {} if now is None else {"clock": lambda: now}
    with running_dashboard(state, **kw) as base:
        driver = make_driver()
        try:
            driver.set_window_size(width, 1000)
            driver.get(base + "/")
            wait_rendered(driver)
            height = int(driver.execute_script("return document.documentElement.scrollHeight"))
            driver.set_window_size(width, height + 140)  # window chrome; charts keep their width
            wait_rendered(driver)
            data = driver.get_screenshot_as_png()
        finally:
            driver.quit()
    out.write_bytes(data)
    return png_size(data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("state", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--now", type=float, default=None)
    args = ap.parse_args(argv)
    w, h = snapshot(args.state, args.out, args.width, args.now)
    print(f"{w}x{h} {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
