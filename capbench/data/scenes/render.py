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

from capbench.data.scenes.backgrounds import background
from capbench.data.scenes.canvas import draw_layer, fill, jitter, paint
from capbench.data.scenes.layout import Scene, SceneObject
from capbench.data.scenes.vocab import COLOUR_BY_NAME


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

    return draw_layer(size, draw)


def object_texture(obj: SceneObject, rng: np.random.Generator, size: int) -> np.ndarray:
    """Object colour (jittered, with a lighting gradient) and its pattern, over the whole canvas."""
    base = jitter(rng, COLOUR_BY_NAME[obj.colour].rgb, 18)
    img = fill(size, base)
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
        second = jitter(rng, COLOUR_BY_NAME[obj.pattern_colour].rgb, 15)
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
        img = paint(img, mask, tex)
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
