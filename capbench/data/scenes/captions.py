"""Caption grammar: Visual Genome style region phrases with boxes, and COCO style sentences.

Grammar (documented in data_cards/scenes.md):
    object phrase   := [article] [size] colour [pattern] shape | "the" shape "is" colour
                     | shape "with" pattern-noun | colour "colored" shape | shape "on the" scene
    relation phrase := object-ref relation object-ref   (relation from geometry)
    scene phrase    := one of the scene type's phrases
    filler phrase   := a phrase with no scene information ("an image", "the background")
Every word slot draws from the concept's synonym list (canonical word half of the time), and
with a small probability a colour or shape word is replaced by a wrong one (annotator noise):
tf-idf over all of an image's phrases recovers its content, a single phrase may mislead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from capbench.data.records import Region
from capbench.data.scenes.layout import Scene, SceneObject
from capbench.data.scenes.vocab import (
    COLOUR_BY_NAME,
    COLOURS,
    FILLER_PHRASES,
    NUMBER_WORDS,
    PATTERNS,
    RELATIONS,
    SCENE_BY_NAME,
    SHAPE_BY_NAME,
    SHAPES,
    SIZES,
)

WRONG_WORD_P = 0.04  # a colour or shape word names the wrong concept
CANONICAL_P = 0.6  # the canonical word is used 60% of the time, a synonym otherwise
MIN_REGIONS, MAX_REGIONS = 5, 20


def pick(rng: np.random.Generator, words: Sequence[str], canonical_p: float = CANONICAL_P) -> str:
    """The canonical (first) word with probability ``canonical_p``, else a uniform synonym."""
    if len(words) == 1 or rng.random() < canonical_p:
        return words[0]
    return words[1 + int(rng.integers(len(words) - 1))]


def colour_word(rng: np.random.Generator, colour: str) -> str:
    if rng.random() < WRONG_WORD_P:
        colour = COLOURS[rng.integers(len(COLOURS))].name
    return pick(rng, COLOUR_BY_NAME[colour].words)


def shape_word(rng: np.random.Generator, shape: str) -> str:
    if rng.random() < WRONG_WORD_P:
        shape = SHAPES[rng.integers(len(SHAPES))].name
    return pick(rng, SHAPE_BY_NAME[shape].words)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def with_article(rng: np.random.Generator, phrase: str, definite_p: float = 0.3) -> str:
    return f"the {phrase}" if rng.random() < definite_p else f"{article(phrase)} {phrase}"


def object_ref(rng: np.random.Generator, obj: SceneObject, detail: float = 0.5) -> str:
    """A noun phrase for the object: colour + shape, sometimes size and pattern."""
    words = []
    if rng.random() < detail * 0.6:
        words.append(pick(rng, SIZES[obj.size][1]))
    words.append(colour_word(rng, obj.colour))
    if obj.pattern != "plain" and rng.random() < detail:
        words.append(pick(rng, PATTERNS[obj.pattern][0]))
    words.append(shape_word(rng, obj.shape))
    return " ".join(words)


def object_phrases(rng: np.random.Generator, obj: SceneObject, scene: str) -> list[str]:
    """Two to four phrases about one object, from different templates."""
    shape = lambda: shape_word(rng, obj.shape)  # noqa: E731
    colour = lambda: colour_word(rng, obj.colour)  # noqa: E731
    templates = [
        lambda: with_article(rng, object_ref(rng, obj, detail=0.8)),
        lambda: f"the {shape()} is {colour()}",
        lambda: f"{colour()} colored {shape()}",
        lambda: f"{article(w := pick(rng, SIZES[obj.size][1]))} {w} {shape()}",
        lambda: f"{shape()} on the {pick(rng, SCENE_BY_NAME[scene].words)}",
    ]
    if obj.pattern != "plain":
        nouns = PATTERNS[obj.pattern][1]
        templates.append(lambda: f"{shape()} with {pick(rng, nouns)}")
        templates.append(
            lambda: (
                f"{colour()} {shape()} with {colour_word(rng, obj.pattern_colour)} {pick(rng, nouns)}"
            )
        )
    if obj.visible < 0.6:
        templates.append(lambda: f"a partly hidden {shape()}")
    n = int(rng.integers(2, 5))
    chosen = rng.choice(len(templates), size=min(n, len(templates)), replace=False)
    return [templates[int(k)]() for k in chosen]


def _union(a: SceneObject, b: SceneObject) -> tuple[float, float, float, float]:
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    x1, y1 = max(a.x + a.w, b.x + b.w), max(a.y + a.h, b.y + b.h)
    return (x0, y0, x1 - x0, y1 - y0)


def _jitter_box(
    rng: np.random.Generator, box: tuple[float, float, float, float], size: int
) -> tuple[int, int, int, int]:
    """Integer box, loosened by a few pixels as human-drawn VG boxes are, clipped to the image."""
    x, y, w, h = box
    pad = rng.uniform(0, 0.08, 4) * max(w, h)
    x0, y0 = max(0, round(x - pad[0])), max(0, round(y - pad[1]))
    x1, y1 = min(size, round(x + w + pad[2])), min(size, round(y + h + pad[3]))
    return (x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def region_phrases(scene: Scene, rng: np.random.Generator) -> list[Region]:
    """5-20 VG style regions: object, relation, scene and filler phrases, with pixel boxes."""
    size = scene.size
    regions: list[Region] = []
    for obj in scene.objects:
        for phrase in object_phrases(rng, obj, scene.scene):
            regions.append(Region(*_jitter_box(rng, (obj.x, obj.y, obj.w, obj.h), size), phrase))
    rels = list(scene.relations)
    if rels:
        n = min(len(rels), int(rng.integers(1, 5)))
        for k in rng.choice(len(rels), size=n, replace=False):
            rel = rels[int(k)]
            a, b = scene.objects[rel.subject], scene.objects[rel.object]
            phrase = (
                f"{object_ref(rng, a, 0.3)} {pick(rng, RELATIONS[rel.predicate])} "
                f"{with_article(rng, object_ref(rng, b, 0.3), definite_p=0.6)}"
            )
            regions.append(Region(*_jitter_box(rng, _union(a, b), size), phrase))
    scene_type = SCENE_BY_NAME[scene.scene]
    for k in rng.choice(len(scene_type.phrases), size=int(rng.integers(2, 4)), replace=False):
        regions.append(Region(0, 0, size, size, scene_type.phrases[int(k)]))
    while len(regions) < MIN_REGIONS or (len(regions) < MAX_REGIONS and rng.random() < 0.3):
        filler = FILLER_PHRASES[rng.integers(len(FILLER_PHRASES))]
        x, y = rng.uniform(0, 0.5, 2) * size
        box = _jitter_box(rng, (float(x), float(y), size / 2, size / 2), size)
        regions.append(Region(*box, filler))
    if len(regions) > MAX_REGIONS:  # keep a random subset, in the original order
        keep = np.sort(rng.choice(len(regions), size=MAX_REGIONS, replace=False))
        regions = [regions[int(k)] for k in keep]
    return regions


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[0].upper() + text[1:] + "."


def sentence_captions(scene: Scene, rng: np.random.Generator, n: int = 5) -> list[str]:
    """``n`` COCO style sentences, each from a different template where possible."""
    objs = scene.objects
    where = lambda: pick(rng, SCENE_BY_NAME[scene.scene].words)  # noqa: E731
    prep = lambda: ["on the", "in the", "at the"][int(rng.integers(3))]  # noqa: E731

    def listing() -> str:
        refs = [with_article(rng, object_ref(rng, o, 0.4), 0.0) for o in objs]
        return f"{_join(refs)} {prep()} {where()}"

    def relation() -> str:
        if not scene.relations:
            return f"there is {with_article(rng, object_ref(rng, objs[0], 0.7), 0.0)} {prep()} {where()}"
        rel = scene.relations[int(rng.integers(len(scene.relations)))]
        a, b = objs[rel.subject], objs[rel.object]
        return (
            f"there is {with_article(rng, object_ref(rng, a), 0.0)} "
            f"{pick(rng, RELATIONS[rel.predicate])} {with_article(rng, object_ref(rng, b), 0.6)}"
        )

    def counting() -> str:
        noun = "shape" if len(objs) == 1 else "shapes"
        shapes = _join([shape_word(rng, o.shape) for o in objs])
        return f"{NUMBER_WORDS[len(objs)]} {noun} {prep()} {where()}: {shapes}"

    def picture() -> str:
        o = objs[int(rng.integers(len(objs)))]
        return f"a picture of {with_article(rng, object_ref(rng, o, 0.9), 0.0)} {prep()} {where()}"

    def colours() -> str:
        words = _join([colour_word(rng, o.colour) for o in objs])
        return f"{words} objects {prep()} {where()}"

    templates = [listing, relation, counting, picture, colours]
    order = rng.permutation(len(templates))
    return [_sentence(templates[int(order[k % len(order)])]()) for k in range(n)]
