"""Background looks: one drawing recipe per kind of place, coloured by the scene type's palette.

A recipe gives the structure (a horizon, grass blades, floor planks, tiles, lane marks, tree
trunks, waves, bricks) and the palette gives the colours, so 36 scene types need only ten
recipes. Every recipe adds random tints, geometry and noise, so two images of one type never
share pixels and raw pixels stay a weak cue for content. All randomness comes from ``rng``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import ImageDraw

from capbench.data.scenes.canvas import (
    draw_layer,
    fill,
    jitter,
    paint,
    smooth_noise,
    vertical_blend,
)
from capbench.data.scenes.scene_types import SCENE_BY_NAME, Palette

DAY_SKY: Palette = ((70, 130, 215), (170, 205, 240), (245, 245, 250))


def sky(rng: np.random.Generator, size: int, pal: Palette) -> np.ndarray:
    """(top, bottom, cloud): a vertical gradient with 1-4 clouds."""
    top, bottom = jitter(rng, pal[0], 25), jitter(rng, pal[1], 20)
    t = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(top * (1 - t) + bottom * t, (size, size, 3)).copy()
    boxes = [
        (rng.uniform(-0.2, 0.9) * size, rng.uniform(0, 0.7) * size, rng.uniform(0.2, 0.5) * size)
        for _ in range(int(rng.integers(1, 5)))
    ]

    def clouds(d: ImageDraw.ImageDraw, s: int) -> None:
        for x, y, w in boxes:
            d.ellipse([x * s, y * s, (x + w) * s, (y + w * 0.45) * s], fill=200)

    return paint(img, draw_layer(size, clouds), jitter(rng, pal[2], 8))


def coast(rng: np.random.Generator, size: int, pal: Palette) -> np.ndarray:
    """(water, ground): day sky, a band of water, then grainy ground."""
    horizon = int(size * rng.uniform(0.25, 0.45))
    img = vertical_blend(sky(rng, size, DAY_SKY), fill(size, jitter(rng, pal[0], 25)), horizon)
    shore = horizon + int(size * rng.uniform(0.08, 0.18))
    img = vertical_blend(img, fill(size, jitter(rng, pal[1], 20)), shore)
    return img + rng.normal(0, 9, (size, size, 1))


def grass(rng: np.random.Generator, size: int, pal: Palette) -> np.ndarray:
    """(ground, blades): a filled ground with short light strokes."""
    img = fill(size, jitter(rng, pal[0], 25))
    strokes = rng.uniform(0, size, (int(size * 1.5), 2))
    heights = rng.uniform(2, 6, len(strokes))

    def blades(d: ImageDraw.ImageDraw, s: int) -> None:
        for (x, y), h in zip(strokes, heights):
            d.line([x * s, y * s, (x + 1) * s, (y - h) * s], fill=255, width=s)

    return paint(img, draw_layer(size, blades), jitter(rng, pal[1], 20), alpha=0.35)


def interior(rng: np.random.Generator, size: int, pal: Palette) -> np.ndarray:
    """(wall, floor): a wall above a floor of planks."""
    floor_at = int(size * rng.uniform(0.5, 0.7))
    wall = fill(size, jitter(rng, pal[0], 35))
    floor = fill(size, jitter(rng, pal[1], 25))
    plank = max(3, int(size * rng.uniform(0.05, 0.09)))
    floor = floor * np.where((np.arange(size) % plank == 0)[:, None, None], 0.7, 1.0)
    return vertical_blend(wall, floor, floor_at, soft=1)


def tiles(rng: np.random.Generator, size: int, pal: Palette) -> np.ndarray:
    """(tile, grout): square tiles over the whole image, some a shade off."""
    cell = max(4, int(size * rng.uniform(0.08, 0.16)))
    n = size // cell + 2
    shade = rng.uniform(0.9, 1.08, (n, n)).astype(np.float32)
    ox, oy = rng.integers(0, cell, 2)
    rows, cols = (np.arange(size) + oy) // cell, (np.arange(size) + ox) // cell
    img = fill(size, jitter(rng, pal[0], 15)) * shade[rows][:, cols][..., None]
    grout = ((np.arange(size) + oy) % cell < 1)[:, None] | ((np.arange(size) + ox) % cell < 1)
    return paint(img, grout.astype(np.float32), jitter(rng, pal[1], 15))


def road(rng: np.random.Generator, size: int, pal: Palette) -> np.ndarray:
    """(surface, marking): a grainy surface with one dashed centre line."""
    img = fill(size, jitter(rng, pal[0], 20)) + rng.normal(0, 12, (size, size, 1))
    centre = size * rng.uniform(0.35, 0.65)
    dash = rng.uniform(0.08, 0.15) * size
    start = -rng.uniform(0, dash)

    def lanes(d: ImageDraw.ImageDraw, s: int) -> None:
        y = start
        while y < size:
            d.rectangle([(centre - 1.2) * s, y * s, (centre + 1.2) * s, (y + dash) * s], fill=255)
            y += 2 * dash

    return paint(img, draw_layer(size, lanes), jitter(rng, pal[1], 15))


def trunks(rng: np.random.Generator, size: int, pal: Palette) -> np.ndarray:
    """(canopy, trunk): 3-7 vertical trunks over a mottled canopy."""
    img = fill(size, jitter(rng, pal[0], 18))
    stems = [(rng.uniform(0, size), rng.uniform(2, 6)) for _ in range(int(rng.integers(3, 8)))]

    def trees(d: ImageDraw.ImageDraw, s: int) -> None:
        for x, w in stems:
            d.rectangle([x * s, 0, (x + w) * s, size * s], fill=255)

    img = paint(img, draw_layer(size, trees), jitter(rng, pal[1], 15))
    return img + 25 * smooth_noise(rng, size, 12)[..., None]


def horizon(rng: np.random.Generator, size: int, pal: Palette) -> np.ndarray:
    """(upper band, ground): a narrow band above a wide, finely grained ground."""
    ground = fill(size, jitter(rng, pal[1], 12))
    line = int(size * rng.uniform(0.15, 0.35))
    img = vertical_blend(fill(size, jitter(rng, pal[0], 20)), ground, line)
    return img + rng.normal(0, 5, (size, size, 1))


def waves(rng: np.random.Generator, size: int, pal: Palette) -> np.ndarray:
    """(trough, crest): wavy horizontal bands blending the two colours."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    freq, wobble = rng.uniform(5, 10), rng.uniform(1.5, 4)
    phase = rng.uniform(0, 2 * np.pi, 2)
    t = 0.5 + 0.5 * np.sin(
        2 * np.pi * freq * yy + 0.6 * np.sin(2 * np.pi * wobble * xx + phase[0]) + phase[1]
    )
    a, b = jitter(rng, pal[0], 18), jitter(rng, pal[1], 18)
    return a * (1 - t[..., None]) + b * t[..., None]


def bricks(rng: np.random.Generator, size: int, pal: Palette) -> np.ndarray:
    """(brick, mortar): courses of bricks, every other course offset by half a brick."""
    h = max(3, int(size * rng.uniform(0.06, 0.1)))
    w = 2 * h + int(rng.integers(0, h))
    n_rows, n_cols = size // h + 2, size // w + 3
    shade = rng.uniform(0.85, 1.12, (n_rows, n_cols)).astype(np.float32)
    ys, xs = np.arange(size), np.arange(size)
    course = ys // h
    shift = np.where(course % 2 == 1, w // 2, 0)
    col = (xs[None, :] + shift[:, None]) // w
    img = fill(size, jitter(rng, pal[0], 15)) * shade[course[:, None], col][..., None]
    mortar = (ys % h < 1)[:, None] | ((xs[None, :] + shift[:, None]) % w < 1)
    return paint(img, mortar.astype(np.float32), jitter(rng, pal[1], 12))


LOOKS: dict[str, Callable[[np.random.Generator, int, Palette], np.ndarray]] = {
    "sky": sky, "coast": coast, "grass": grass, "interior": interior, "tiles": tiles,
    "road": road, "trunks": trunks, "horizon": horizon, "waves": waves, "bricks": bricks,
}  # fmt: skip


def background(scene: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """The scene type's background as float32 H x W x 3 in [0, 255], with a smooth tint."""
    if scene not in SCENE_BY_NAME:
        raise ValueError(f"unknown scene type {scene!r}; known: {sorted(SCENE_BY_NAME)}")
    kind = SCENE_BY_NAME[scene]
    tex = smooth_noise(rng, size, int(rng.integers(4, 9)))[..., None]
    img = LOOKS[kind.look](rng, size, kind.palette) + tex * float(rng.uniform(8, 22))
    return img.astype(np.float32)
