"""Sequence windows and the shared torch training loop of the LSTM and Transformer families.

``build_windows`` turns pooled (bar, asset) rows into ``(n, window, F)`` arrays of the
last ``window`` feature rows of that asset, oldest first, bars ``<= t`` only (rows before
the first bar are NaN padding). ``SequencePredictor`` trains one network with ``2H``
outputs (H up-logits, H scaled returns) on a masked loss, so NaN labels of one horizon
do not drop the row for the others; early stopping keeps the best validation epoch.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator
from typing import Protocol, Self

import numpy as np
import torch
from torch import nn

from envs.errors import ConfigError
from predictors.base import Prediction, Predictor, Standardizer, Targets

log = logging.getLogger(__name__)


def build_windows(values: np.ndarray, t_idx: np.ndarray, a_idx: np.ndarray, window: int) -> np.ndarray:
    """``(n, window, F)`` float32 windows ending at ``values[t_idx, a_idx]`` (causal)."""
    if window < 1:
        raise ConfigError(f"window: expected >= 1, got {window}")
    offsets = np.arange(-window + 1, 1)
    tt = t_idx[:, None] + offsets[None, :]  # (n, window)
    out = values[np.clip(tt, 0, None), a_idx[:, None]].astype(np.float32)
    out[tt < 0] = np.nan
    return out


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` intra-op threads, then restore. On small nets and shared CPUs one
    thread is many times faster than several (measured 18x for the transformer)."""
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; CPU otherwise (the default everywhere)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"device: expected 'cpu', 'cuda[:k]' or 'auto', got {device!r}")
    return torch.device(device)


class SequenceTraining(Protocol):
    """The training fields every torch family's config carries (`LSTMConfig`, `TransformerConfig`)."""

    @property
    def window(self) -> int: ...
    @property
    def epochs(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def lr(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def patience(self) -> int: ...
    @property
    def device(self) -> str: ...
    @property
    def threads(self) -> int: ...


class SequencePredictor(Predictor):
    """Base of the torch families; subclasses implement ``_build(n_features) -> nn.Module``."""

    def __init__(self, horizons: tuple[int, ...], seed: int, config: SequenceTraining) -> None:
        super().__init__(horizons, seed)
        c = config
        if c.epochs < 1 or c.batch_size < 1:
            raise ConfigError(
                f"{self.name}: expected epochs >= 1 and batch_size >= 1, got {c.epochs}, {c.batch_size}"
            )
        self.window, self.epochs, self.batch_size = int(c.window), int(c.epochs), int(c.batch_size)
        self.lr, self.weight_decay, self.patience = float(c.lr), float(c.weight_decay), int(c.patience)
        self.device = resolve_device(c.device)
        self.threads = int(c.threads)
        self.scaler = Standardizer()
        self.ret_scale = np.ones(len(self.horizons))
        self.net: nn.Module | None = None
        self.best_epoch = -1

    def _build(self, n_features: int) -> nn.Module:
        raise NotImplementedError

    # ------------------------------------------------------------------ data
    def _targets(self, y: Targets) -> tuple[np.ndarray, np.ndarray]:
        up = np.column_stack([y[h][0] for h in self.horizons]).astype(np.float32)
        ret = np.column_stack([y[h][1] for h in self.horizons]) / self.ret_scale
        return up, ret.astype(np.float32)

    def _batch(self, X: np.ndarray, idx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.scaler.transform(X[idx])).to(self.device)

    def _loss(self, out: torch.Tensor, up: torch.Tensor, ret: torch.Tensor) -> torch.Tensor:
        H = len(self.horizons)
        m_up, m_ret = torch.isfinite(up), torch.isfinite(ret)
        bce = nn.functional.binary_cross_entropy_with_logits(
            out[:, :H][m_up], up[m_up], reduction="sum"
        ) / m_up.sum().clamp(min=1)
        mse = ((out[:, H:][m_ret] - ret[m_ret]) ** 2).sum() / m_ret.sum().clamp(min=1)
        return bce + mse

    def _eval_loss(self, X: np.ndarray, up: np.ndarray, ret: np.ndarray) -> float:
        assert self.net is not None
        self.net.eval()
        total, n = 0.0, 0
        with torch.no_grad():
            for s in range(0, X.shape[0], 4096):
                idx = np.arange(s, min(s + 4096, X.shape[0]))
                out = self.net(self._batch(X, idx))
                loss = self._loss(
                    out, torch.from_numpy(up[idx]).to(self.device), torch.from_numpy(ret[idx]).to(self.device)
                )
                total, n = total + float(loss) * len(idx), n + len(idx)
        return total / max(n, 1)

    # ------------------------------------------------------------------ API
    def fit(self, X_train: np.ndarray, y_train: Targets, X_val: np.ndarray, y_val: Targets) -> Self:
        self._check_fit_inputs(X_train, y_train, X_val, y_val)
        if X_train.shape[1] != self.window:
            raise ConfigError(f"{self.name}: expected windows of {self.window} rows, got {X_train.shape[1]}")
        self.scaler.fit(X_train[:, -1, :])  # training rows only (WF-2)
        scale = np.array([np.nanstd(y_train[h][1]) for h in self.horizons])
        self.ret_scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        up, ret = self._targets(y_train)
        up_v, ret_v = self._targets(y_val)
        has_val = X_val.shape[0] > 0 and bool(np.isfinite(up_v).any())
        rng = np.random.default_rng(self.seed)
        with torch.random.fork_rng(devices=[]), torch_threads(self.threads):
            torch.manual_seed(self.seed)
            self.net = self._build(X_train.shape[2]).to(self.device)
            opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            best, best_state, waited = np.inf, copy.deepcopy(self.net.state_dict()), 0
            for epoch in range(self.epochs):
                self.net.train()
                order = rng.permutation(X_train.shape[0])
                for s in range(0, len(order), self.batch_size):
                    idx = np.sort(order[s : s + self.batch_size])
                    out = self.net(self._batch(X_train, idx))
                    loss = self._loss(
                        out,
                        torch.from_numpy(up[idx]).to(self.device),
                        torch.from_numpy(ret[idx]).to(self.device),
                    )
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                if not has_val:
                    best_state, self.best_epoch = copy.deepcopy(self.net.state_dict()), epoch
                    continue
                val = self._eval_loss(X_val, up_v, ret_v)
                if val < best - 1e-6:
                    best, best_state, waited, self.best_epoch = (
                        val,
                        copy.deepcopy(self.net.state_dict()),
                        0,
                        epoch,
                    )
                else:
                    waited += 1
                    if waited >= self.patience:
                        break
            self.net.load_state_dict(best_state)
        log.debug("%s: best epoch %d", self.name, self.best_epoch)
        return self

    def predict(self, X: np.ndarray) -> Prediction:
        self._check_predict_input(X)
        assert self.net is not None
        H = len(self.horizons)
        self.net.eval()
        outs = []
        with torch.no_grad(), torch_threads(self.threads):
            for s in range(0, X.shape[0], 4096):
                outs.append(self.net(self._batch(X, np.arange(s, min(s + 4096, X.shape[0])))).cpu().numpy())
        out = np.concatenate(outs).astype(np.float64) if outs else np.zeros((0, 2 * H))
        p = 1.0 / (1.0 + np.exp(-out[:, :H]))
        return Prediction(self.horizons, p, out[:, H:] * self.ret_scale)

    def __getstate__(self) -> dict:
        """Pickle on CPU so a model trained on CUDA loads anywhere (MLflow artifacts)."""
        state = self.__dict__.copy()
        if self.net is not None:
            state["net"] = copy.deepcopy(self.net).cpu()
        state["device"] = torch.device("cpu")
        return state
