"""The scenes vocabulary: shapes, colours, sizes, patterns, relations and their words.

The scene types live in ``scene_types.py`` (with their looks) and are re-exported here.

Every concept has a canonical name (used for labels, synsets and the true semantics) and a
list of surface words. Captions draw their words from the lists, so two captions of the same
scene rarely share every word: tf-idf over many region phrases still recovers the concept
(the canonical word is listed first and is the most frequent), but a single phrase does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from capbench.data.scenes.scene_types import SCENE_BY_NAME, SCENES, SceneType


@dataclass(frozen=True)
class Shape:
    name: str
    synset: str
    words: tuple[str, ...]  # first = canonical
    sides: int  # 0 for curved shapes; used by fine-grained captions ("has six sides")


@dataclass(frozen=True)
class Colour:
    name: str
    rgb: tuple[int, int, int]
    words: tuple[str, ...]


SHAPES: tuple[Shape, ...] = (
    Shape("circle", "circle.n.01", ("circle", "disc", "round shape", "ball"), 0),
    Shape("square", "square.n.01", ("square", "box", "block"), 4),
    Shape("triangle", "triangle.n.01", ("triangle", "wedge", "three-sided shape"), 3),
    Shape("star", "star.n.03", ("star", "starburst", "five-pointed star"), 10),
    Shape("heart", "heart.n.07", ("heart", "love heart", "heart shape"), 0),
    Shape("cross", "cross.n.01", ("cross", "plus sign", "crucifix shape"), 12),
    Shape("hexagon", "hexagon.n.01", ("hexagon", "six-sided shape", "hex tile"), 6),
    Shape("diamond", "diamond.n.02", ("diamond", "rhombus", "lozenge"), 4),
    Shape("ring", "ring.n.08", ("ring", "donut", "hoop"), 0),
)

COLOURS: tuple[Colour, ...] = (
    Colour("red", (215, 40, 40), ("red", "crimson", "scarlet")),
    Colour("green", (40, 165, 60), ("green", "emerald", "leafy green")),
    Colour("blue", (40, 85, 215), ("blue", "azure", "cobalt")),
    Colour("yellow", (240, 210, 40), ("yellow", "golden", "lemon")),
    Colour("orange", (245, 135, 25), ("orange", "tangerine", "amber")),
    Colour("purple", (135, 55, 185), ("purple", "violet", "lilac")),
    Colour("pink", (245, 130, 190), ("pink", "rosy", "magenta")),
    Colour("brown", (125, 75, 35), ("brown", "chocolate", "tan")),
    Colour("white", (242, 242, 242), ("white", "ivory", "pale")),
    Colour("black", (25, 25, 30), ("black", "jet black", "dark")),
)

SIZES: dict[str, tuple[tuple[float, float], tuple[str, ...]]] = {
    # name -> (side length as a fraction of the image side, words). Generator 2.1 made objects
    # larger (2.0: 0.16-0.22 / 0.25-0.32 / 0.35-0.44), so that, as in Visual Genome, the objects
    # the captions name hold much of the picture rather than a few pixels of a background.
    "small": ((0.22, 0.28), ("small", "little", "tiny")),
    "medium": ((0.32, 0.40), ("medium", "medium-sized", "mid-sized")),
    "large": ((0.44, 0.54), ("large", "big", "huge")),
}

PATTERNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name -> (adjectives, "with ..." nouns)
    "plain": (("plain", "solid", "plain-coloured"), ("no pattern", "a flat colour")),
    "striped": (("striped", "banded", "stripy"), ("stripes", "bands", "lines")),
    "dotted": (("dotted", "spotted", "polka-dot"), ("dots", "spots", "speckles")),
    "checkered": (("checkered", "checked", "chequered"), ("checks", "squares", "a checkerboard")),
}

RELATIONS: dict[str, tuple[str, ...]] = {
    "left of": ("to the left of", "left of", "on the left side of"),
    "right of": ("to the right of", "right of", "on the right side of"),
    "above": ("above", "over", "higher than"),
    "below": ("below", "under", "beneath"),
    "next to": ("next to", "near", "beside", "close to"),
}

# Region phrases with (almost) no information: high document frequency, low idf.
FILLER_PHRASES: tuple[str, ...] = (
    "a picture of shapes",
    "an image",
    "the background",
    "some objects in the scene",
    "a colorful shape",
    "part of the picture",
    "the edge of the image",
)

NUMBER_WORDS = ("no", "one", "two", "three", "four", "five")

SHAPE_BY_NAME = {s.name: s for s in SHAPES}
COLOUR_BY_NAME = {c.name: c for c in COLOURS}

__all__ = [
    "COLOURS", "COLOUR_BY_NAME", "FILLER_PHRASES", "NUMBER_WORDS", "PATTERNS", "RELATIONS",
    "SCENES", "SCENE_BY_NAME", "SHAPES", "SHAPE_BY_NAME", "SIZES", "Colour", "SceneType", "Shape",
]  # fmt: skip
