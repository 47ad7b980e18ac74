"""Paper trading: ``command=run|status|verify|replay-hour|reactivate`` (logic in `paper.app`, docs/paper.md).

    python scripts/paper_trade.py command=run policy=RUN_FOLDER feed=replay feed.start=ISO feed.end=ISO state=FILE
    python scripts/paper_trade.py command=status state=FILE

A refused state file (tampered audit record, corrupted, foreign, locked) exits 2 naming the
file and the record; ``verify`` exits 1 when a books invariant fails.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from envs.errors import ConfigError
from krakenrl.cli import hydra_main
from paper.app import COMMANDS
from paper.errors import PaperStateError


def paper_trade(cfg: DictConfig, out_dir: Path) -> Any:
    command = str(cfg.command)
    if command not in COMMANDS:
        raise ConfigError(f"command: expected one of {sorted(COMMANDS)}, got {command!r}")
    try:
        status = COMMANDS[command](cfg, lambda line: print(line, flush=True))
    except PaperStateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    if status:
        sys.exit(status)
    return None


main = hydra_main(paper_trade, "paper_trade")


if __name__ == "__main__":
    main()
