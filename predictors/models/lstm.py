"""LSTM family: a small recurrent net over the last ``window`` feature rows of an asset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from envs.config_mapping import MappingConfig
from predictors.models.sequences import SequencePredictor


@dataclass(frozen=True)
class LSTMConfig(MappingConfig):
    """Sizes are small by default so a year of 12 assets trains in seconds per fold on CPU."""

    config_section: ClassVar[str] = "predictor.models.lstm"

    window: int = 16
    hidden: int = 32
    layers: int = 1
    dropout: float = 0.1
    epochs: int = 6
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 2
    device: str = "cpu"  # "auto" picks CUDA when present
    threads: int = 1  # torch intra-op threads while fitting/predicting


class _LSTMNet(nn.Module):
    def __init__(self, n_features: int, n_out: int, c: LSTMConfig) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            n_features, c.hidden, c.layers, batch_first=True, dropout=c.dropout if c.layers > 1 else 0.0
        )
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(self.drop(out[:, -1, :]))


class LSTMPredictor(SequencePredictor):
    name = "lstm"

    def __init__(self, horizons: tuple[int, ...], seed: int = 0, config: LSTMConfig | None = None) -> None:
        c = config or LSTMConfig()
        super().__init__(horizons, seed, c)
        self.config = c

    def _build(self, n_features: int) -> nn.Module:
        return _LSTMNet(n_features, 2 * len(self.horizons), self.config)
