"""One writer per state file: an exclusive ``flock`` on a sidecar ``<state>.lock`` file.

The kernel drops a ``flock`` when its file descriptor closes, which includes the death of the
process (SIGKILL, OOM): a crashed run never leaves a stale lock behind, and no pid-file
heuristics are needed. The holder writes its pid into the file only so that the refusal can
name it. The lock file is never deleted (deleting it would let two processes each lock a
different inode). ``flock`` is advisory and local: it does not protect a state file on NFS.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from paper.errors import StateLockedError


def lock_path(state_path: str | os.PathLike[str]) -> Path:
    """The sidecar lock file of a state file."""
    p = Path(state_path)
    return p.with_name(p.name + ".lock")


class StateLock:
    """Exclusive, non-blocking lock on a state file (context manager)."""

    def __init__(self, state_path: str | os.PathLike[str]) -> None:
        self.state_path = Path(state_path)
        self.path = lock_path(state_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> StateLock:
        """Take the lock or raise `StateLockedError` naming the holder; never waits."""
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StateLockedError(
                f"{self.state_path}: state is in use by another process (pid {holder}, lock {self.path}); "
                "refusing to start a second one"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
