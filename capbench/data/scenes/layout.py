"""A scene's ground truth: background type, objects (shape, colour, size, pattern, box) and the
relations between them, derived from geometry.

The ground truth is what captions describe, what the graded relevance and the simulated users
judge, and what the renderer draws; keeping it separate from pixels and words is what lets the
tests measure how much of it each representation recovers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from capbench.data.scenes.vocab import COLOURS, PATTERNS, SCENES, SHAPES, SIZES


@dataclass
class SceneObject:
    shape: str
    colour: str
    size: str
    pattern: str
    pattern_colour: str  # second colour of the pattern ("" when plain)
    x: float  # box: top-left corner, width, height, in pixels
    y: float
    w: float
    h: float
    angle: float = 0.0  # rotation in degrees (rotated polygons stay inside the box)
    visible: float = 1.0  # fraction of the object's pixels not hidden by later objects

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    @property
    def occluded(self) -> bool:
        """Heavily occluded (VOC's "difficult")."""
        return self.visible < 0.35


@dataclass
class Relation:
    subject: int  # object indices
    predicate: str  # a key of vocab.RELATIONS
    object: int


@dataclass
class Scene:
    scene: str
    size: int  # image side in pixels
    objects: list[SceneObject]
    relations: list[Relation] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "scene": self.scene,
            "objects": [
                {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(o).items()}
                for o in self.objects
            ],
            "relations": [[r.subject, r.predicate, r.object] for r in self.relations],
        }


def _overlap(a: SceneObject, b: tuple[float, float, float, float]) -> float:
    """Intersection area over the smaller box's area."""
    x, y, w, h = b
    ix = max(0.0, min(a.x + a.w, x + w) - max(a.x, x))
    iy = max(0.0, min(a.y + a.h, y + h) - max(a.y, y))
    return ix * iy / max(1e-6, min(a.w * a.h, w * h))


def sample_object(
    rng: np.random.Generator,
    size: int,
    placed: list[SceneObject],
    shape: str | None = None,
    colour: str | None = None,
    pattern: str | None = None,
    pattern_colour: str | None = None,
    size_name: str | None = None,
    max_overlap: float = 0.45,
    side_range: tuple[float, float] | None = None,
) -> SceneObject:
    """One object at a random place; retries keep most objects mostly visible (some occlude).

    ``side_range`` overrides the side length (as a fraction of the image side) that
    ``size_name`` would give, for close-ups."""
    shape = shape or SHAPES[rng.integers(len(SHAPES))].name
    colour = colour or COLOURS[rng.integers(len(COLOURS))].name
    size_name = size_name or list(SIZES)[rng.integers(len(SIZES))]
    if pattern is None:
        pattern = (
            "plain" if rng.random() < 0.55 else list(PATTERNS)[1 + rng.integers(len(PATTERNS) - 1)]
        )
    if pattern_colour is None:
        others = [c.name for c in COLOURS if c.name != colour]
        pattern_colour = "" if pattern == "plain" else others[rng.integers(len(others))]
    lo, hi = side_range or SIZES[size_name][0]
    side = float(rng.uniform(lo, hi)) * size
    aspect = float(rng.uniform(0.85, 1.15))
    w, h = side * aspect, side / aspect
    box = (0.0, 0.0, w, h)
    for _ in range(12):
        box = (float(rng.uniform(1, size - w - 1)), float(rng.uniform(1, size - h - 1)), w, h)
        if all(_overlap(o, box) <= max_overlap for o in placed):
            break
    # Small rotations only: a square turned by 45 degrees would be a diamond.
    angle = float(rng.uniform(-20, 20)) if shape not in ("circle", "ring") else 0.0
    return SceneObject(shape, colour, size_name, pattern, pattern_colour, *box, angle=angle)


def relations_from_geometry(objects: list[SceneObject], size: int) -> list[Relation]:
    """For each ordered pair: the dominant direction (left/right of, above/below) and, when the
    centres are close, also "next to". Derived from box centres, as a person would read them."""
    rels: list[Relation] = []
    for i, a in enumerate(objects):
        for j, b in enumerate(objects):
            if i == j:
                continue
            (ax, ay), (bx, by) = a.centre, b.centre
            dx, dy = ax - bx, ay - by
            if abs(dx) >= abs(dy):
                rels.append(Relation(i, "left of" if dx < 0 else "right of", j))
            else:
                rels.append(Relation(i, "above" if dy < 0 else "below", j))
            if np.hypot(dx, dy) < 0.3 * size:
                rels.append(Relation(i, "next to", j))
    return rels


def sample_scene(rng: np.random.Generator, size: int, max_objects: int = 4) -> Scene:
    """A background type and 1..max_objects objects (more objects are a bit more likely)."""
    scene = SCENES[rng.integers(len(SCENES))].name
    n = int(rng.choice(np.arange(1, max_objects + 1), p=_count_probs(max_objects)))
    objects: list[SceneObject] = []
    for _ in range(n):
        objects.append(sample_object(rng, size, objects))
    return Scene(scene, size, objects, relations_from_geometry(objects, size))


# A close-up's object side, as a fraction of the image side: the object fills the frame the way
# an ImageNet photo's object does, so a trunk can learn what it is from few updates.
CLOSEUP_SIDE = (0.5, 0.8)


def sample_closeup(rng: np.random.Generator, size: int) -> Scene:
    """An object-centric image: a background type and one large object (the pretraining set's
    stand-in for ImageNet's one-object photos)."""
    scene = SCENES[rng.integers(len(SCENES))].name
    obj = sample_object(rng, size, [], size_name="large", side_range=CLOSEUP_SIDE)
    return Scene(scene, size, [obj], [])


def _count_probs(max_objects: int) -> np.ndarray:
    weights = np.arange(1, max_objects + 1, dtype=float) ** 0.5
    return weights / weights.sum()
