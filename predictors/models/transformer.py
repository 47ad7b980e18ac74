"""Transformer family: a small encoder over the last ``window`` feature rows of an asset,
with a learned positional embedding; the last token's state feeds the heads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from envs.config_mapping import MappingConfig
from envs.errors import ConfigError
from predictors.models.sequences import SequencePredictor


@dataclass(frozen=True)
class TransformerConfig(MappingConfig):
    config_section: ClassVar[str] = "predictor.models.transformer"

    window: int = 16
    d_model: int = 32
    heads: int = 2
    layers: int = 1
    ff_mult: int = 2
    dropout: float = 0.1
    epochs: int = 6
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 2
    device: str = "cpu"
    threads: int = 1  # torch intra-op threads while fitting/predicting


class _TransformerNet(nn.Module):
    def __init__(self, n_features: int, n_out: int, c: TransformerConfig) -> None:
        super().__init__()
        self.proj = nn.Linear(n_features, c.d_model)
        self.pos = nn.Parameter(torch.zeros(1, c.window, c.d_model))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(c.d_model, c.heads, c.ff_mult * c.d_model, c.dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(self.proj(x) + self.pos[:, : x.shape[1]])
        return self.head(self.norm(z[:, -1, :]))


class TransformerPredictor(SequencePredictor):
    name = "transformer"

    def __init__(self, horizons: tuple[int, ...], seed: int = 0, config: TransformerConfig | None = None) -> None:
        c = config or TransformerConfig()
        if c.d_model % c.heads:
            raise ConfigError(f"transformer: expected d_model divisible by heads, got {c.d_model} and {c.heads}")
        super().__init__(horizons, seed, c)
        self.config = c

    def _build(self, n_features: int) -> nn.Module:
        return _TransformerNet(n_features, 2 * len(self.horizons), self.config)
