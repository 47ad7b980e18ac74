"""Entry points that load the env classes from this distribution's own ``envs`` package.

``import envs`` takes the first ``envs`` on ``sys.path``; a user's folder of that name in
the working directory wins over the installed package. `import_own` instead loads the
package from the folder beside ``krakenrl`` (a wheel's site-packages or an editable
checkout) by file location, and fails with a clear message if another ``envs`` was
imported first. Attribute access (``krakenrl.entry:KrakenSpotEnv``, what Gymnasium's
``load_env_creator`` does) imports lazily, so registering costs nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the folder holding krakenrl/, envs/, risk/ ...

_TARGETS = {
    "KrakenSpotEnv": ("envs.kraken_spot", "KrakenSpotEnv"),
    "KrakenSpotVectorEnv": ("envs.vector", "KrakenSpotVectorEnv"),
    "RiskWrapper": ("risk.wrapper", "RiskWrapper"),
}


def _is_ours(module: ModuleType, home: Path) -> bool:
    origin = getattr(module, "__file__", None)
    return origin is not None and Path(origin).resolve().parent == home.resolve()


def import_own(name: str) -> ModuleType:
    """Import ``name`` (e.g. ``"envs.kraken_spot"``) from this distribution, not from ``sys.path`` order."""
    top = name.split(".")[0]
    home = ROOT / top
    loaded = sys.modules.get(top)
    if loaded is None:
        spec = importlib.util.spec_from_file_location(top, home / "__init__.py", submodule_search_locations=[str(home)])
        if spec is None or spec.loader is None:  # pragma: no cover - the file ships with the package
            raise ImportError(f"krakenrl: cannot load package {top!r} from {home}")
        package = importlib.util.module_from_spec(spec)
        sys.modules[top] = package
        try:
            spec.loader.exec_module(package)
        except BaseException:
            sys.modules.pop(top, None)
            raise
    elif not _is_ours(loaded, home):
        where = getattr(loaded, "__file__", None) or repr(loaded)
        raise ImportError(
            f"krakenrl: the module {top!r} imported in this process is {where}, "
            f"not krakenrl's {home}: a folder or module named {top!r} on sys.path (e.g. in the working "
            f"directory) shadows it. Rename yours, or create the env before importing it."
        )
    return importlib.import_module(name)


def __getattr__(name: str) -> Any:
    if name in _TARGETS:
        module, attr = _TARGETS[name]
        return getattr(import_own(module), attr)
    raise AttributeError(f"module 'krakenrl.entry' has no attribute {name!r}")
