"""Pillow + numpy rendering of a scene: textured, noisy backgrounds and patterned, possibly
occluded objects.

The point of the textures, colour jitter, lighting and noise is to make raw pixel similarity a
weak cue for scene semantics (two beaches with different objects look alike; a red circle on
snow and on a road do not), so that the semantics in the captions have to be learned.
All randomness comes from the ``rng`` passed in, so one (seed, index) gives one image.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from capbench.data.scenes.layout import Scene, SceneObject
from capbench.data.scenes.vocab import COLOUR_BY_NAME

SUPERSAMPLE = 2  # shapes are drawn at 2x and box-filtered down: anti-aliased edges


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise in [-1, 1]: a cells x cells random grid upsampled bicubically to size x size."""
    grid = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((size, size), Image.BICUBIC))


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int], amount: float) -> np.ndarray:
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


def _fill(size: int, rgb: np.ndarray) -> np.ndarray:
    return np.broadcast_to(rgb, (size, size, 3)).astype(np.float32).copy()


def _vertical_blend(top: np.ndarray, bottom: np.ndarray, split: int, soft: int = 2) -> np.ndarray:
    size = top.shape[0]
    rows = np.clip((np.arange(size) - split + soft) / (2 * soft), 0, 1)[:, None, None]
    return top * (1 - rows) + bottom * rows


def _draw_layer(size: int, draw_fn) -> np.ndarray:
    """A float mask in [0, 1] drawn by ``draw_fn(ImageDraw, scale)`` at SUPERSAMPLE resolution."""
    big = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE), 0)
    draw_fn(ImageDraw.Draw(big), SUPERSAMPLE)
    return np.asarray(big.resize((size, size), Image.BOX), dtype=np.float32) / 255.0


def _sky(rng: np.random.Generator, size: int) -> np.ndarray:
    top, bottom = _jitter(rng, (70, 130, 215), 25), _jitter(rng, (170, 205, 240), 20)
    t = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(top * (1 - t) + bottom * t, (size, size, 3)).copy()
    n_clouds = int(rng.integers(1, 5))
    boxes = [
        (rng.uniform(-0.2, 0.9) * size, rng.uniform(0, 0.7) * size, rng.uniform(0.2, 0.5) * size)
        for _ in range(n_clouds)
    ]

    def clouds(d: ImageDraw.ImageDraw, s: int) -> None:
        for x, y, w in boxes:
            d.ellipse([x * s, y * s, (x + w) * s, (y + w * 0.45) * s], fill=200)

    mask = _draw_layer(size, clouds)[..., None]
    return img * (1 - mask) + _jitter(rng, (245, 245, 250), 8) * mask


def background(scene: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """The scene type's background as float32 H x W x 3 in [0, 255]."""
    tex = smooth_noise(rng, size, int(rng.integers(4, 9)))[..., None]
    if scene == "sky":
        img = _sky(rng, size)
    elif scene == "beach":
        horizon = int(size * rng.uniform(0.25, 0.45))
        sea = _fill(size, _jitter(rng, (40, 120, 175), 25))
        sand = _fill(size, _jitter(rng, (220, 195, 145), 20))
        img = _vertical_blend(_sky(rng, size), sea, horizon)
        img = _vertical_blend(img, sand, horizon + int(size * rng.uniform(0.08, 0.18)))
        img += rng.normal(0, 9, (size, size, 1))  # grains of sand
    elif scene == "field":
        img = _fill(size, _jitter(rng, (75, 145, 55), 25))
        strokes = rng.uniform(0, size, (int(size * 1.5), 2))
        heights = rng.uniform(2, 6, len(strokes))

        def grass(d: ImageDraw.ImageDraw, s: int) -> None:
            for (x, y), h in zip(strokes, heights):
                d.line([x * s, y * s, (x + 1) * s, (y - h) * s], fill=255, width=s)

        mask = _draw_layer(size, grass)[..., None]
        img = img * (1 - 0.35 * mask) + 0.35 * mask * _jitter(rng, (150, 200, 90), 20)
    elif scene == "room":
        floor_at = int(size * rng.uniform(0.5, 0.7))
        wall = _fill(size, _jitter(rng, (215, 205, 185), 35))
        floor = _fill(size, _jitter(rng, (150, 100, 60), 25))
        plank = max(3, int(size * rng.uniform(0.05, 0.09)))
        rows = (np.arange(size) % plank == 0)[:, None, None]
        floor = floor * np.where(rows, 0.7, 1.0)
        img = _vertical_blend(wall, floor, floor_at, soft=1)
    elif scene == "road":
        img = _fill(size, _jitter(rng, (105, 105, 110), 20))
        img += rng.normal(0, 12, (size, size, 1))
        centre = size * rng.uniform(0.35, 0.65)
        dash = rng.uniform(0.08, 0.15) * size
        colour = (235, 235, 225) if rng.random() < 0.6 else (230, 190, 40)

        def lanes(d: ImageDraw.ImageDraw, s: int) -> None:
            y = -rng.uniform(0, dash)
            while y < size:
                d.rectangle(
                    [(centre - 1.2) * s, y * s, (centre + 1.2) * s, (y + dash) * s], fill=255
                )
                y += 2 * dash

        mask = _draw_layer(size, lanes)[..., None]
        img = img * (1 - mask) + np.asarray(colour, np.float32) * mask
    elif scene == "forest":
        img = _fill(size, _jitter(rng, (35, 80, 40), 18))
        trunks = [(rng.uniform(0, size), rng.uniform(2, 6)) for _ in range(int(rng.integers(3, 8)))]

        def trees(d: ImageDraw.ImageDraw, s: int) -> None:
            for x, w in trunks:
                d.rectangle([x * s, 0, (x + w) * s, size * s], fill=255)

        mask = _draw_layer(size, trees)[..., None]
        img = img * (1 - mask) + _jitter(rng, (85, 55, 30), 15) * mask
        img += 25 * smooth_noise(rng, size, 12)[..., None]
    elif scene == "snow":
        img = _fill(size, _jitter(rng, (235, 238, 245), 10))
        horizon = int(size * rng.uniform(0.15, 0.35))
        img = _vertical_blend(_fill(size, _jitter(rng, (175, 180, 190), 20)), img, horizon)
        img += rng.normal(0, 5, (size, size, 1))
    else:
        raise ValueError(f"unknown scene type {scene!r}")
    return img + tex * float(rng.uniform(8, 22))


def _polygon(shape: str) -> list[tuple[float, float]]:
    """Unit outline in [-1, 1]^2 (y down)."""
    if shape == "square":
        return [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    if shape == "triangle":
        return [(0, -1), (1, 1), (-1, 1)]
    if shape == "diamond":
        return [(0, -1), (0.7, 0), (0, 1), (-0.7, 0)]
    if shape == "hexagon":
        return [(math.cos(math.pi / 3 * k), math.sin(math.pi / 3 * k)) for k in range(6)]
    if shape == "star":
        return [
            ((1.0 if k % 2 == 0 else 0.45) * math.sin(math.pi / 5 * k),
             -(1.0 if k % 2 == 0 else 0.45) * math.cos(math.pi / 5 * k))
            for k in range(10)
        ]  # fmt: skip
    if shape == "cross":
        a = 0.36
        return [(-a, -1), (a, -1), (a, -a), (1, -a), (1, a), (a, a), (a, 1), (-a, 1), (-a, a),
                (-1, a), (-1, -a), (-a, -a)]  # fmt: skip
    if shape == "heart":
        pts = []
        for k in range(40):
            t = 2 * math.pi * k / 40
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((x / 16, -y / 16))
        return pts
    raise ValueError(f"no polygon for shape {shape!r}")


def object_mask(obj: SceneObject, size: int) -> np.ndarray:
    """The object's coverage in [0, 1] (size x size), rotated and fitted to its box."""

    def draw(d: ImageDraw.ImageDraw, s: int) -> None:
        box = [obj.x * s, obj.y * s, (obj.x + obj.w) * s, (obj.y + obj.h) * s]
        if obj.shape in ("circle", "ring"):
            d.ellipse(box, fill=255)
            if obj.shape == "ring":
                mx, my = obj.w * 0.27 * s, obj.h * 0.27 * s
                d.ellipse([box[0] + mx, box[1] + my, box[2] - mx, box[3] - my], fill=0)
            return
        c, sn = math.cos(math.radians(obj.angle)), math.sin(math.radians(obj.angle))
        pts = [(x * c - y * sn, x * sn + y * c) for x, y in _polygon(obj.shape)]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        # One scale for both axes (a rotated diamond must not be stretched into a square),
        # the outline centred in its box.
        scale = min(
            (box[2] - box[0]) / (max(xs) - min(xs)), (box[3] - box[1]) / (max(ys) - min(ys))
        )
        cx = (box[0] + box[2]) / 2 - scale * (max(xs) + min(xs)) / 2
        cy = (box[1] + box[3]) / 2 - scale * (max(ys) + min(ys)) / 2
        d.polygon([(cx + scale * x, cy + scale * y) for x, y in pts], fill=255)

    return _draw_layer(size, draw)


def object_texture(obj: SceneObject, rng: np.random.Generator, size: int) -> np.ndarray:
    """Object colour (jittered, with a lighting gradient) and its pattern, over the whole canvas."""
    base = _jitter(rng, COLOUR_BY_NAME[obj.colour].rgb, 18)
    img = _fill(size, base)
    if obj.pattern != "plain":
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        period = max(3.0, obj.w * rng.uniform(0.18, 0.3))
        if obj.pattern == "striped":
            theta = rng.uniform(0, math.pi)
            on = ((xx * math.cos(theta) + yy * math.sin(theta)) / period) % 1.0 < 0.45
        elif obj.pattern == "dotted":
            gx, gy = (xx - obj.x) % period - period / 2, (yy - obj.y) % period - period / 2
            on = gx**2 + gy**2 < (period * 0.28) ** 2
        else:  # checkered
            on = ((np.floor((xx - obj.x) / period) + np.floor((yy - obj.y) / period)) % 2) == 0
        second = _jitter(rng, COLOUR_BY_NAME[obj.pattern_colour].rgb, 15)
        img[on] = second
    gx, gy = rng.uniform(-0.15, 0.15, 2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    return img * (1.0 + gx * xx + gy * yy)[..., None]


def render(scene: Scene, rng: np.random.Generator) -> Image.Image:
    """Draw the scene; also sets each object's ``visible`` fraction (later objects occlude)."""
    size = scene.size
    img = background(scene.scene, rng, size)
    masks = []
    for obj in scene.objects:
        mask = object_mask(obj, size)
        tex = object_texture(obj, rng, size)
        img = img * (1 - mask[..., None]) + tex * mask[..., None]
        masks.append(mask)
    for i, (obj, mask) in enumerate(zip(scene.objects, masks)):
        cover = mask.copy()
        for later in masks[i + 1 :]:
            cover *= 1 - later
        obj.visible = float(cover.sum() / max(mask.sum(), 1e-6))
    # Global lighting, colour cast and sensor noise: the same scene never has the same pixels.
    img = img * rng.uniform(0.8, 1.15) + rng.uniform(-15, 15, 3)
    img += rng.normal(0, rng.uniform(3, 9), img.shape)
    return Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8), "RGB")
