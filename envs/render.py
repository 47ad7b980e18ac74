"""``render_mode="rgb_array"``: the episode so far (equity, drawdown, weights) as an RGB image.

matplotlib is imported here, inside `episode_image`, and draws on its own Agg canvas
(no pyplot, no global figure state), so ``step()`` costs nothing extra and rendering works
without a display. The image is built from the env's step history (`EpisodeRecorder`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

WIDTH, HEIGHT, DPI = 640, 480, 80


def episode_image(frame: pd.DataFrame, assets: Sequence[str], initial_cash: float) -> np.ndarray:
    """(HEIGHT, WIDTH, 3) uint8 picture of an episode's history frame (`KrakenSpotEnv.history`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    ax_eq, ax_dd, ax_w = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1, 2]})
    steps = len(frame)
    x = np.arange(steps + 1)
    equity = np.concatenate([[initial_cash], frame["equity"].to_numpy(dtype=np.float64)]) if steps else np.array(
        [initial_cash]
    )
    peak = np.maximum.accumulate(equity)
    drawdown = np.where(peak > 0, 1.0 - equity / peak, 0.0)
    ax_eq.plot(x, equity, color="tab:blue", lw=1.2)
    ax_eq.set_ylabel("equity (USD)")
    title = f"step {steps}" + (f"  {frame['time'].iloc[-1]:%Y-%m-%d %H:%M} UTC" if steps else "  (no steps yet)")
    ax_eq.set_title(title, fontsize=9)
    ax_dd.fill_between(x, -100.0 * drawdown, 0.0, color="tab:red", alpha=0.5, lw=0)
    ax_dd.set_ylabel("drawdown %")
    if steps:
        weights = np.vstack([np.zeros(len(assets)), frame[[f"w_{a}" for a in assets]].to_numpy(dtype=np.float64)])
        ax_w.stackplot(x, weights.T, labels=list(assets), lw=0)
        ax_w.legend(loc="upper left", fontsize=6, ncol=min(len(assets), 6), frameon=False)
    ax_w.set_ylim(0.0, 1.0)
    ax_w.set_ylabel("weights")
    ax_w.set_xlabel("step")
    for ax in (ax_eq, ax_dd, ax_w):
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


__all__ = ["HEIGHT", "WIDTH", "episode_image"]
