"""The one large input of a batch of tasks, sent to local worker processes once, as a memory map.

`dump_shared` pickles the object with protocol 5, writing every large buffer (each NumPy
array's data) to one file beside the small pickle; `resolve` in a worker maps that file and
rebuilds the object over it, zero-copy and read-only, once per process. This is the joblib
backend's counterpart of Ray's object store (``ray.put`` once, the reference in every task);
the serial backend passes the object itself.
"""

from __future__ import annotations

import mmap
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ALIGN = 64  # byte alignment of every buffer in the file (NumPy is fastest on aligned data)
_loaded: dict[str, Any] = {}  # path -> object, per worker process (the last one only)


@dataclass(frozen=True)
class SharedFile:
    """A handle to an object dumped by `dump_shared`: small to pickle, resolved in the worker."""

    folder: str


def dump_shared(obj: Any, folder: str | Path) -> SharedFile:
    """Write ``obj`` to ``folder`` (``skeleton.pkl`` + ``buffers.bin``); the handle to pass to tasks."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buffers: list[pickle.PickleBuffer] = []
    skeleton = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    spans: list[tuple[int, int]] = []
    with open(folder / "buffers.bin", "wb") as f:
        pos = 0
        for buf in buffers:
            raw = buf.raw()
            pad = -pos % ALIGN
            f.write(b"\0" * pad)
            pos += pad
            f.write(raw)
            spans.append((pos, raw.nbytes))
            pos += raw.nbytes
    (folder / "skeleton.pkl").write_bytes(pickle.dumps((spans, skeleton), protocol=5))
    return SharedFile(str(folder))


def load_shared(handle: SharedFile) -> Any:
    """The object behind ``handle``, its arrays read-only views of the memory-mapped file."""
    folder = Path(handle.folder)
    spans, skeleton = pickle.loads((folder / "skeleton.pkl").read_bytes())
    views: list[memoryview] = []
    if spans:
        whole = memoryview(b"")
        if (folder / "buffers.bin").stat().st_size > 0:  # mmap refuses an empty file
            with open(folder / "buffers.bin", "rb") as f:
                whole = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
        views = [whole[start : start + size] for start, size in spans]
    return pickle.loads(skeleton, buffers=views)


def resolve(shared: Any) -> Any:
    """In a task: the shared object (loaded once per process when it is a `SharedFile`)."""
    if not isinstance(shared, SharedFile):
        return shared
    if shared.folder not in _loaded:
        _loaded.clear()  # one batch at a time: do not keep an old market mapped
        _loaded[shared.folder] = load_shared(shared)
    return _loaded[shared.folder]


__all__ = ["SharedFile", "dump_shared", "load_shared", "resolve"]
