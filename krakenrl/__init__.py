"""Gymnasium registration of the KrakenSpot env under the unique top-level name ``krakenrl``.

The package's code lives in top-level modules named ``envs``, ``risk``, ``predictors`` and
``agents``. A user's own ``envs/`` package in the working directory comes first on
``sys.path`` and would shadow ours, so registration must not go through the name ``envs``:
this tiny module registers ``krakenrl/KrakenSpot-v0`` with entry points in `krakenrl.entry`,
which load the env from *this distribution's* files whatever ``sys.path`` holds.

How the id becomes known to Gymnasium:

- ``gym.make("krakenrl:krakenrl/KrakenSpot-v0")``: Gymnasium's ``module:id`` form imports
  this module first; no import in user code (works on every Gymnasium version);
- ``import krakenrl`` (or ``import envs``), then ``gym.make("krakenrl/KrakenSpot-v0")``;
- the ``gymnasium.envs`` entry point in ``pyproject.toml`` names `register_envs`, for the
  plugin loaders that read it (Gymnasium 0.26-0.29 called them at ``import gymnasium``;
  Gymnasium 1.x removed that loader, so there the two lines above are the way).
"""

from __future__ import annotations

ENV_ID = "krakenrl/KrakenSpot-v0"


def register_envs() -> None:
    """Register ``krakenrl/KrakenSpot-v0`` (single and vector entry points); idempotent."""
    from gymnasium.envs.registration import register, registry

    if ENV_ID not in registry:
        register(
            id=ENV_ID,
            entry_point="krakenrl.entry:KrakenSpotEnv",
            vector_entry_point="krakenrl.entry:KrakenSpotVectorEnv",
        )


register_envs()

__all__ = ["ENV_ID", "register_envs"]
