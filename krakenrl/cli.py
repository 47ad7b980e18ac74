"""What every entry point in ``scripts/`` shares: one thin ``main``, checked instantiation, loud failures.

- `hydra_main(job, "train")` is the whole ``main`` of a Hydra script: ``@hydra.main`` on
  ``conf/<name>.yaml`` (version_base 1.3: the working directory is not changed) around
  `run_job`. Hydra still names the job after the script (``train``), because the wrapper
  keeps ``job`` as its ``__wrapped__``.
- `run_job` runs ``job(cfg, out_dir)`` in the Hydra output folder. A
  `envs.errors.KrakenRLError` (bad data, bad config value, an overlapping evaluation
  period) exits with status 2 and its message on stderr, without a traceback: it is the
  user's input that is wrong, and the message names what. The last line on stdout is
  ``outputs: <folder>`` (ARCHITECTURE.md), written by `print_outputs`.
- `cli_main(main)` is the same for the argparse scripts (``spread_report``, ``mutation``):
  ``main()``'s return value is the exit status, a KrakenRLError exits 2 naming it.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from omegaconf import DictConfig

from envs.errors import ConfigError, KrakenRLError

T = TypeVar("T")
CONFIG_PATH = "../conf"  # relative to the script (scripts/<name>.py), as Hydra resolves it
VERSION_BASE = "1.3"


def build(node: Any, cls: type[T], key: str) -> T:
    """``hydra.utils.instantiate(node)``, checked to be a ``cls``; a ConfigError naming ``key`` otherwise."""
    from hydra.utils import instantiate

    obj = instantiate(node)
    if not isinstance(obj, cls):
        raise ConfigError(f"{key}: expected a config that builds {cls.__name__}, got {type(obj).__name__}")
    return obj


def print_outputs(*paths: str | Path) -> None:
    """The last line of every entry point: ``outputs: <path> [<path> ...]``."""
    print("outputs: " + " ".join(str(p) for p in paths))


class UserErrorExit(SystemExit):
    """``sys.exit(2)`` that keeps the message: a multirun launcher reports it with the job."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message


def _exit_on_user_error(exc: KrakenRLError) -> NoReturn:
    print(f"error: {exc}", file=sys.stderr)
    raise UserErrorExit(str(exc))


def run_job(job: Callable[[DictConfig, Path], Any], cfg: DictConfig) -> None:
    """Run ``job(cfg, out_dir)`` in the Hydra output folder; exit 2 naming a KrakenRLError."""
    from hydra.core.hydra_config import HydraConfig

    logging.basicConfig(level=logging.WARNING)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        job(cfg, out_dir)
    except KrakenRLError as exc:
        _exit_on_user_error(exc)
    print_outputs(out_dir)


NOT_IN_JOB_DIRNAME = ("experiment", "progress", "cache_dir", "tensorboard", "mlflow.enabled", "mlflow.register")


def job_dirname(overrides: Any) -> str:
    """A multirun job's folder name from its overrides: one path part, short, never empty, deterministic.

    ``overrides``: the job's ``hydra.overrides.task`` (a list) or a ready ``key=value,...`` text.
    Keys that do not change the result (`NOT_IN_JOB_DIRNAME`: the experiment names the sweep
    folder already) are left out and the rest sorted, so a rerun with ``progress=false`` added
    lands in the same folder. ``data.path=../x`` would otherwise nest folders (``/`` -> ``_``);
    a long list is cut and keeps a hash so that two jobs never share a folder.
    """
    import hashlib

    if isinstance(overrides, str):
        name = overrides
    else:
        kept = [str(o) for o in overrides if str(o).lstrip("+~").split("=", 1)[0] not in NOT_IN_JOB_DIRNAME]
        name = ",".join(sorted(kept))
    name = name.replace("/", "_").replace("\\", "_") or "default"
    if len(name) > 200:  # file names stop at 255 bytes
        name = name[:180] + "-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return name


def register_resolvers() -> None:
    """``${krakenrl.job_dirname:${hydra.overrides.task}}``: train.py's multirun job folders (hydra/output)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("krakenrl.job_dirname"):
        OmegaConf.register_new_resolver("krakenrl.job_dirname", job_dirname)


register_resolvers()  # at import: a Ray or joblib worker resolves the subdir after unpickling the task from here


def hydra_main(job: Callable[[DictConfig, Path], Any], config_name: str) -> Callable[[], Any]:
    """The ``main`` of a Hydra entry point: ``conf/<config_name>.yaml`` -> `run_job` ``(job, cfg)``."""
    import hydra

    @functools.wraps(job)  # __wrapped__ = job: Hydra names the task after job's file (the script)
    def task(cfg: DictConfig) -> None:
        run_job(job, cfg)

    return hydra.main(config_path=CONFIG_PATH, config_name=config_name, version_base=VERSION_BASE)(task)


def cli_main(main: Callable[[], int | None]) -> NoReturn:
    """Exit with ``main()``'s status (None = 0); a KrakenRLError exits 2 with its message on stderr."""
    try:
        status = main()
    except KrakenRLError as exc:
        _exit_on_user_error(exc)
    sys.exit(status or 0)


__all__ = ["build", "cli_main", "hydra_main", "job_dirname", "print_outputs", "register_resolvers", "run_job"]
