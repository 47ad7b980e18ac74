"""A features extractor for the per-asset views (`agents.views`): SB3's seam for a Dict observation.

Every asset row goes through one shared small MLP together with the portfolio vector, so
the network learns one rule for "how attractive is this asset now" instead of N separate
ones (12 assets and a year of hourly data are not much). The output concatenates the
per-asset embeddings (order kept: the policy head maps them to per-asset actions), their
mean (the market as a whole) and the portfolio vector.
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class AssetSetExtractor(BaseFeaturesExtractor):
    """``{"assets": (N, F), "portfolio": (P,)}`` -> ``N * hidden + hidden + P`` features."""

    def __init__(self, observation_space: spaces.Dict, hidden: int = 32) -> None:
        assets, port = observation_space["assets"], observation_space["portfolio"]
        assert assets.shape is not None and port.shape is not None
        n, f = assets.shape
        p = port.shape[0]
        super().__init__(observation_space, features_dim=n * hidden + hidden + p)
        self.n_assets = n
        self.asset_net = nn.Sequential(nn.Linear(f + p, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        a, pf = observations["assets"], observations["portfolio"]
        x = torch.cat([a, pf[:, None, :].expand(-1, self.n_assets, -1)], dim=-1)
        h = self.asset_net(x)
        return torch.cat([h.flatten(1), h.mean(dim=1), pf], dim=1)


__all__ = ["AssetSetExtractor"]
