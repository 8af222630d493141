"""Attention maps of ``att-fc`` drawn over held-out images: the picture, the masked caption,
the true and predicted word, the attention (upsampled) and the boxes of the named object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from capbench.atomic import atomic_savefig


def draw_attention(example: dict[str, Any], image_side: int, path: Path) -> Path:
    """One PNG: the image as the model saw it (longest side ``image_side``, centred square) with
    its attention map over it and the object's boxes outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from capbench.data.images import load_rgb

    image = load_rgb(example["image_path"])
    w, h = image.size
    scale = image_side / max(w, h)
    pad_x, pad_y = (image_side - w * scale) / 2, (image_side - h * scale) / 2
    fig, ax = plt.subplots(figsize=(3.2, 3.6), dpi=100)
    ax.imshow(image, extent=(pad_x, pad_x + w * scale, pad_y + h * scale, pad_y))
    ax.imshow(example["attention"], extent=(0, image_side, image_side, 0), alpha=0.5, cmap="jet")
    for x, y, bw, bh in example["boxes"]:
        ax.add_patch(
            Rectangle((x * scale + pad_x, y * scale + pad_y), bw * scale, bh * scale,
                      fill=False, edgecolor="white", linewidth=1.5)
        )  # fmt: skip
    ax.set_xlim(0, image_side)
    ax.set_ylim(image_side, 0)
    ax.set_axis_off()
    caption = example["caption"]
    ax.set_title(
        f"{caption[:40]}{'...' if len(caption) > 40 else ''}\n"
        f"masked: {example['word']}  predicted: {example['predicted']}",
        fontsize=7,
    )
    atomic_savefig(fig, path, bbox_inches="tight")
    plt.close(fig)
    return path


def peak_cell_shares(
    peak_cells: list[int], inside: list[np.ndarray], grid: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """``(h, w)`` arrays: the share of scored examples whose attention peaks at each cell, and
    the share whose named object covers it (where objects sit, whatever the attention does)."""
    peaks = np.bincount(np.asarray(peak_cells), minlength=grid[0] * grid[1]) / len(peak_cells)
    covered = np.stack(inside).astype(np.float64).mean(axis=0)
    return peaks.reshape(grid), covered.reshape(grid)


def draw_peak_cells(
    peaks: np.ndarray, covered: np.ndarray, n: int, rates: dict[str, float], path: Path
) -> Path:
    """Two heat maps side by side (``peak_cell_shares`` of ``n`` scored examples): where att-fc's
    attention peaks, and where the named objects are. An attention that looks at the object
    moves with it; one that always picks the same cells scores the right panel's value there
    whatever the image (the position prior)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4), dpi=100)
    panels = (("attention peaks here", peaks), ("named object covers the cell", covered))
    for ax, (title, values) in zip(axes, panels, strict=True):
        ax.imshow(values, vmin=0.0, vmax=1.0, cmap="viridis")
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, f"{100 * v:.0f}%", ha="center", va="center", fontsize=8,
                    color="white" if v < 0.6 else "black")  # fmt: skip
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"att-fc, {n} held-out object words: peak on the object "
        f"{rates.get('mlm_attention_peak', float('nan')):.1f}%, position prior "
        f"{rates.get('mlm_attention_position_prior', float('nan')):.1f}%, random cell "
        f"{rates.get('mlm_attention_chance', float('nan')):.1f}%",
        fontsize=8,
    )
    atomic_savefig(fig, path, bbox_inches="tight")
    plt.close(fig)
    return path


def figure_dir(workdir: Path, profile: str, results: Path | None = None) -> Path:
    """``<results>/sariyildiz2020/attention-<profile>``: beside the runner's ``work`` folder when
    the row runs under the runner, else under ``$CAPBENCH_RESULTS``."""
    from capbench.paths import results_root

    work = Path(workdir).parent
    base = work.parent if work.name == "work" else (results or results_root()) / "sariyildiz2020"
    return base / f"attention-{profile}"
