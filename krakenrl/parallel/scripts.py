"""Tasks that call a function of an entry point in ``scripts/`` (not a package, so not importable by
name in a worker): the payload names the file and the function; the worker loads the file once."""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_modules: dict[str, Any] = {}  # script path -> module, per worker process


@dataclass(frozen=True)
class ScriptCall:
    """``function(*args)`` of the script at ``path`` (absolute)."""

    path: str
    function: str
    args: tuple[Any, ...] = ()


def load_script_file(path: str | Path) -> Any:
    """The script at ``path`` as a module (its functions; ``main`` is not run)."""
    path = str(Path(path).resolve())
    if path not in _modules:
        name = "krakenrl_task_" + hashlib.sha256(path.encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[path] = module
    return _modules[path]


def call_script(shared: Any, call: ScriptCall) -> Any:
    """The task function: ``call.function(*call.args)`` in the loaded script (``shared`` unused)."""
    return getattr(load_script_file(call.path), call.function)(*call.args)


__all__ = ["ScriptCall", "call_script", "load_script_file"]
