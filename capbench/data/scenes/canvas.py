"""Small numpy/Pillow drawing helpers shared by the background looks and the object renderer.

Images are float32 H x W x 3 arrays in [0, 255] until the very end, so layers blend without
rounding; masks are drawn by Pillow at SUPERSAMPLE resolution and box-filtered down, which
gives anti-aliased edges.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 2


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise in [-1, 1]: a cells x cells random grid upsampled bicubically to size x size."""
    grid = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((size, size), Image.BICUBIC))


def jitter(rng: np.random.Generator, rgb: tuple[int, int, int], amount: float) -> np.ndarray:
    """The colour with each channel moved by up to ``amount``: no two images share a tint."""
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


def fill(size: int, rgb: np.ndarray) -> np.ndarray:
    return np.broadcast_to(rgb, (size, size, 3)).astype(np.float32).copy()


def vertical_blend(top: np.ndarray, bottom: np.ndarray, split: int, soft: int = 2) -> np.ndarray:
    """``top`` above row ``split``, ``bottom`` below it, with a soft seam."""
    size = top.shape[0]
    rows = np.clip((np.arange(size) - split + soft) / (2 * soft), 0, 1)[:, None, None]
    return top * (1 - rows) + bottom * rows


def draw_layer(size: int, draw_fn: Callable[[ImageDraw.ImageDraw, int], None]) -> np.ndarray:
    """A float mask in [0, 1] drawn by ``draw_fn(ImageDraw, scale)`` at SUPERSAMPLE resolution."""
    big = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE), 0)
    draw_fn(ImageDraw.Draw(big), SUPERSAMPLE)
    return np.asarray(big.resize((size, size), Image.BOX), dtype=np.float32) / 255.0


def paint(img: np.ndarray, mask: np.ndarray, rgb: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``rgb`` (a colour or an image) laid over ``img`` where ``mask`` is set, with opacity
    ``alpha``."""
    m = alpha * mask[..., None]
    return img * (1 - m) + rgb * m
