"""``hydra/launcher=ray``: the launcher's config, registered in Hydra's ConfigStore."""

# no `from __future__ import annotations`: Hydra executes this module without registering it in
# sys.modules, where dataclasses would look the string annotations up; OmegaConf needs real types too
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class RayLauncherConf:
    _target_: str = "hydra_plugins.krakenrl_ray_launcher.launcher.RayLauncher"
    # null: start a local Ray on demand (in this process, stopped at exit); "auto": the cluster
    # this machine joined with `ray start`; "ray://HOST:10001" or "HOST:6379": a remote head
    address: Any = None
    num_cpus: Any = None  # a local Ray's CPUs (null: all); ignored when joining a cluster
    cpus_per_job: float = 1.0  # Ray resources one job reserves: jobs run side by side up to the CPUs
    max_retries: int = 1  # a job whose worker died or that raised is run again this many times
    init: dict[str, Any] = field(default_factory=dict)  # further ray.init keyword arguments


ConfigStore.instance().store(group="hydra/launcher", name="ray", node=RayLauncherConf,
                             provider="krakenrl_ray_launcher")
