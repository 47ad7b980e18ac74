"""Per-task result cache: completed tasks survive a failed run, so a rerun does only what is missing.

One pickle per task under ``folder/<namespace>/<sha of task key>.pkl``; ``namespace`` hashes
the inputs and config of the run (the market and predictor config for the walk-forward), so a
result is only reused for exactly the work that produced it. Writes are atomic
(`envs.atomic.atomic_write`): a crash mid-write leaves no half file for the rerun to trust.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import shutil
from pathlib import Path
from typing import Any

from envs.atomic import atomic_write

log = logging.getLogger(__name__)
_MISSING = object()


class ResultCache:
    """Results of completed tasks of one run (``namespace``) under ``folder``."""

    def __init__(self, folder: str | Path, namespace: str) -> None:
        self.folder = Path(folder) / namespace

    def _path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.pkl"

    def get(self, key: str, default: Any = _MISSING) -> Any:
        """The stored ``(key, result, seconds)`` entry's result and seconds, or ``default``."""
        path = self._path(key)
        if not path.is_file():
            return default
        try:
            stored_key, result, seconds = pickle.loads(path.read_bytes())
        except Exception:  # unreadable (e.g. written by another version): recompute
            return default
        return (result, seconds) if stored_key == key else default

    def put(self, key: str, result: Any, seconds: float) -> None:
        """Store one result; best effort: a full disk or a concurrent run's `clear` only costs a recompute."""
        try:
            atomic_write(self._path(key), pickle.dumps((key, result, seconds), protocol=pickle.HIGHEST_PROTOCOL))
        except OSError as exc:
            log.warning("task cache: could not store %s (%s); it will be recomputed on a rerun", key, exc)

    def keys_on_disk(self) -> int:
        """How many task results are stored (for summaries and tests)."""
        return len(list(self.folder.glob("*.pkl"))) if self.folder.is_dir() else 0

    def clear(self) -> None:
        """Drop this run's results (once the run's own outputs are written, they are the record)."""
        shutil.rmtree(self.folder, ignore_errors=True)


MISSING = _MISSING

__all__ = ["MISSING", "ResultCache"]
