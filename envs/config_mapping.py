"""One way from a config mapping to a config dataclass: `from_mapping` and the `MappingConfig` mixin.

Every config dataclass of the package (`EnvConfig`, `RiskLimits`, `AgentConfig`,
`WalkForwardConfig`, the predictor families' configs ...) is built from a Hydra node or a
plain dict by ``Cls.from_mapping(values)``, which calls `from_mapping` here, so that all of
them treat a mapping the same way:

- Hydra's reserved keys (``_target_``, ``_convert_`` ...) are dropped; a ``_target_`` must
  name this class (a YAML file pointing at another class is a ConfigError, not a silent mix);
- an unknown key is a ConfigError naming the key(s), the class and the config section;
- values are converted by the field's declared type: a list becomes a tuple for a
  ``tuple[...]`` field (elements converted too), an integer-valued float becomes an int for
  an ``int`` field (``5.0`` -> 5; ``2.5``, a bool or a string is a ConfigError), an int
  becomes a float for a ``float`` field, a mapping becomes ``{str(k): float(v)}`` for a
  ``dict[str, float]`` field; ``None`` for a container field that does not allow ``None``
  means its default. Strings, bools and ``Any`` are passed as given; range checks stay in
  each class's ``__post_init__``.

OmegaConf nodes (``DictConfig`` / ``ListConfig``) are read as plain mappings and sequences,
so this module does not import Hydra.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Self, TypeVar

from envs.errors import ConfigError

HYDRA_KEYS = frozenset({"_target_", "_convert_", "_recursive_", "_partial_", "_args_"})

T = TypeVar("T")


def from_mapping(cls: type[T], values: Mapping[str, Any] | T | None, *, section: str | None = None,
                 ignore: Iterable[str] = ()) -> T:
    """A ``cls`` dataclass from ``values`` (a mapping, an instance, or None for the defaults).

    ``section`` names the config in errors (``"env"``, ``"walk_forward"`` ...; default the
    class name); keys in ``ignore`` are dropped like Hydra's reserved keys.
    """
    where = section or cls.__name__
    if values is None:
        return cls()
    if isinstance(values, cls):
        return values
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(values).__name__}")
    plain = {str(k): v for k, v in values.items()}
    if "_target_" in plain:
        _check_target(cls, plain["_target_"], where)
    skip = HYDRA_KEYS | set(ignore)
    plain = {k: v for k, v in plain.items() if k not in skip}
    hints = _field_types(cls)
    unknown = sorted(set(plain) - set(hints))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown} for {cls.__name__}; expected some of {sorted(hints)}")
    kwargs = {name: _convert(value, hints[name], f"{where}.{name}") for name, value in plain.items()}
    kwargs = {k: v for k, v in kwargs.items() if v is not _DEFAULT}
    return cls(**kwargs)


class MappingConfig:
    """Mixin of the config dataclasses: ``Cls.from_mapping(values)`` (see the module docstring).

    ``config_section`` is the config path named in errors (``"walk_forward"``, ``"agent"`` ...).
    """

    config_section: ClassVar[str] = ""
    config_ignore: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | Self | None = None, *, section: str | None = None) -> Self:
        """An instance from a Hydra node or a plain mapping; unknown keys are a ConfigError."""
        return from_mapping(cls, values, section=section or cls.config_section or None, ignore=cls.config_ignore)


# ------------------------------------------------------------------ helpers
_DEFAULT = object()  # "use the field's default" (None for a container field that does not take None)


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    """Declared types of the init fields of a dataclass (string annotations resolved; cached)."""
    if cls not in _FIELD_TYPES:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"from_mapping: {cls.__name__} is not a dataclass")
        hints = typing.get_type_hints(cls)
        _FIELD_TYPES[cls] = {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}
    return _FIELD_TYPES[cls]


def _check_target(cls: type, target: Any, where: str) -> None:
    module, _, name = str(target).rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name) if module else None
    except ImportError:
        obj = None
    if obj is not cls:
        raise ConfigError(
            f"{where}: _target_ {target!r} does not name {cls.__module__}.{cls.__qualname__}, "
            f"the class this config maps onto"
        )


def _convert(value: Any, tp: Any, where: str) -> Any:
    """``value`` converted to the declared type ``tp`` (see the module docstring)."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, members[0], where) if len(members) == 1 else _plain(value)
    if tp is bool or tp is str or tp is Any:
        return _plain(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected an integer, got {value!r} ({type(value).__name__})")
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r} ({type(value).__name__})")
        return float(value)
    if origin is tuple:
        if value is None:
            return _DEFAULT
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise ConfigError(f"{where}: expected a list, got {value!r} ({type(value).__name__})")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        return tuple(value)
    if origin is dict:
        if value is None:
            return _DEFAULT
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r} ({type(value).__name__})")
        key_t, val_t = typing.get_args(tp) or (Any, Any)
        return {(str(k) if key_t is str else k): _convert(v, val_t, f"{where}.{k}") for k, v in value.items()}
    return _plain(value)


def _plain(value: Any) -> Any:
    """OmegaConf containers (or any other mapping / sequence type) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes | tuple):
        return [_plain(v) for v in value]
    return value


__all__ = ["HYDRA_KEYS", "MappingConfig", "from_mapping"]
