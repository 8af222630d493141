"""The fine-grained variant (CUB / Flowers-like): classes are attribute combinations
(body shape x primary colour x pattern x pattern colour); each image shows one large object of
its class on a random background; ten attribute-describing captions per image.

Classes share attributes across the zero-shot splits (a test class "red striped star" has train
classes with red, with stripes, with stars), which is what makes zero-shot transfer from
captions possible, as in Reed et al. 2016.

Attributes (the input of Reed's attributes baseline) follow CUB's definition: each image gets
0/1 attribute labels from a simulated annotator (``annotate_attributes``), and the CUB writer
turns them into the per-class percentage of images labelled with each attribute. A class's true
attributes are its shape, colour, pattern and pattern colour (none when plain); the annotator
misses a true one with probability ``ATTRIBUTE_MISS`` and marks a false one with
``ATTRIBUTE_FALSE_ALARM`` (simulation choices: CUB's labels come from one MTurk worker per image
and are noisy too), so class vectors are continuous, as CUB's are, not exact 0/100 class codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from capbench.data.scenes.captions import pick
from capbench.data.scenes.layout import Scene, sample_object
from capbench.data.scenes.vocab import (
    COLOUR_BY_NAME,
    COLOURS,
    PATTERNS,
    SCENES,
    SHAPE_BY_NAME,
    SHAPES,
    SIZES,
)

CAPTIONS_PER_IMAGE = 10
# CUB-style attribute names ("has_<group>::<value>"), in the order of the attribute vectors.
ATTRIBUTE_NAMES: tuple[str, ...] = (
    *(f"has_shape::{s.name}" for s in SHAPES),
    *(f"has_primary_color::{c.name}" for c in COLOURS),
    *(f"has_pattern::{p}" for p in PATTERNS),
    *(f"has_pattern_color::{c.name}" for c in COLOURS),
)
ATTRIBUTE_MISS = 0.2
ATTRIBUTE_FALSE_ALARM = 0.03
# Class splits as fractions of the classes (Reed's CUB split is 100/50/50 of 200).
SPLIT_FRACTIONS = {"train": 0.5, "val": 0.25, "test": 0.25}


@dataclass(frozen=True)
class FineClass:
    index: int  # 0-based label
    shape: str
    colour: str
    pattern: str
    pattern_colour: str  # "" when plain
    split: str  # zero-shot class split: train / val / test

    @property
    def title(self) -> str:
        """CUB-style words, e.g. ``Red_Striped_Blue_Star``."""
        parts = [self.colour]
        if self.pattern != "plain":
            parts += [self.pattern, self.pattern_colour]
        parts.append(self.shape)
        return "_".join(p.capitalize() for p in parts)

    @property
    def cub_name(self) -> str:
        return f"{self.index + 1:03d}.{self.title}"


def class_table(n_classes: int, table_seed: int) -> list[FineClass]:
    """``n_classes`` distinct attribute combinations in a seeded random order, split by class.

    The table depends on ``table_seed`` only (not on the image seed) so class definitions are
    stable; CUB and Flowers use different table seeds and so different class sets.
    """
    combos = [
        (s.name, c.name, p, pc.name if p != "plain" else "")
        for s in SHAPES
        for c in COLOURS
        for p in PATTERNS
        for pc in (COLOURS if p != "plain" else COLOURS[:1])
        if p == "plain" or pc.name != c.name
    ]
    if n_classes > len(combos):
        raise ValueError(f"at most {len(combos)} fine-grained classes, asked for {n_classes}")
    rng = np.random.default_rng([table_seed, 0xF1E])
    chosen = [combos[int(k)] for k in rng.choice(len(combos), size=n_classes, replace=False)]
    n_train = round(n_classes * SPLIT_FRACTIONS["train"])
    n_val = round(n_classes * SPLIT_FRACTIONS["val"])
    splits = ["train"] * n_train + ["val"] * n_val + ["test"] * (n_classes - n_train - n_val)
    return [FineClass(i, *combo, split=splits[i]) for i, combo in enumerate(chosen)]


def sample_instance(cls: FineClass, rng: np.random.Generator, size: int) -> Scene:
    """One large object of the class, at a random place, pose and background."""
    obj = sample_object(
        rng,
        size,
        [],
        shape=cls.shape,
        colour=cls.colour,
        pattern=cls.pattern,
        pattern_colour=cls.pattern_colour,
        size_name="large",
    )
    # Bigger than a "large" scene object: the class is in the details, as a bird fills a CUB photo.
    scale = float(rng.uniform(1.3, 1.7))
    obj.w, obj.h = min(obj.w * scale, size - 4), min(obj.h * scale, size - 4)
    obj.x = float(rng.uniform(1, size - obj.w - 1))
    obj.y = float(rng.uniform(1, size - obj.h - 1))
    return Scene(SCENES[rng.integers(len(SCENES))].name, size, [obj])


def attribute_captions(
    cls: FineClass, rng: np.random.Generator, n: int = CAPTIONS_PER_IMAGE
) -> list[str]:
    """``n`` CUB-style captions ("this shape is red with blue stripes"), each naming 2+ attributes."""
    shape = SHAPE_BY_NAME[cls.shape]
    colour = lambda: pick(rng, COLOUR_BY_NAME[cls.colour].words)  # noqa: E731
    second = lambda: pick(rng, COLOUR_BY_NAME[cls.pattern_colour].words)  # noqa: E731
    noun = lambda: pick(rng, shape.words)  # noqa: E731
    subject = lambda: ["this shape", "this object", "the figure", "this item"][int(rng.integers(4))]  # noqa: E731
    if cls.pattern == "plain":
        detail = [
            lambda: f"{subject()} is {colour()} all over with no pattern",
            lambda: f"a {pick(rng, PATTERNS['plain'][0])} {colour()} {noun()}",
            lambda: f"{subject()} has a solid {colour()} surface",
        ]
    else:
        adj, nouns = PATTERNS[cls.pattern]
        detail = [
            lambda: f"{subject()} is {colour()} with {second()} {pick(rng, nouns)}",
            lambda: f"a {colour()} {noun()} covered in {second()} {pick(rng, nouns)}",
            lambda: f"{subject()} has a {pick(rng, adj)} pattern in {second()} and {colour()}",
        ]
    general = [
        lambda: f"{subject()} is a {colour()} {noun()}",
        lambda: f"a {pick(rng, SIZES['large'][1])} {noun()} that is mostly {colour()}",
        lambda: f"{subject()} has the outline of a {noun()} and a {colour()} body",
    ]
    if shape.sides:
        general.append(lambda: f"{subject()} has {shape.sides} sides and is {colour()}")
    else:
        general.append(lambda: f"{subject()} has a curved {colour()} outline like a {noun()}")
    templates = detail + general
    captions = []
    for k in range(n):
        text = (
            templates[int(rng.integers(len(templates)))]()
            if k >= len(templates)
            else templates[k]()
        )
        captions.append(" ".join(text.split()).capitalize() + ".")
    order = rng.permutation(n)
    return [captions[int(k)] for k in order]


def class_attributes(cls: FineClass) -> np.ndarray:
    """The class's true attributes as 0/1 over ``ATTRIBUTE_NAMES`` (no pattern colour when
    plain)."""
    true = {f"has_shape::{cls.shape}", f"has_primary_color::{cls.colour}"}
    true.add(f"has_pattern::{cls.pattern}")
    if cls.pattern != "plain":
        true.add(f"has_pattern_color::{cls.pattern_colour}")
    return np.array([name in true for name in ATTRIBUTE_NAMES], dtype=np.int64)


def annotate_attributes(cls: FineClass, rng: np.random.Generator) -> list[int]:
    """One image's attribute labels from a noisy annotator (see the module docstring)."""
    truth = class_attributes(cls)
    u = rng.random(len(truth))
    marked = np.where(truth == 1, u >= ATTRIBUTE_MISS, u < ATTRIBUTE_FALSE_ALARM)
    return [int(m) for m in marked]
