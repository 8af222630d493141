"""The scene types: many small, flat places, each written in its own words and visible in its
own pixels (why: capbench/data/scenes/scene_types.py)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from capbench.data.scenes.backgrounds import LOOKS, background
from capbench.data.scenes.layout import sample_scene
from capbench.data.scenes.scene_types import SCENES
from capbench.data.tfidf import StemAnalyzer

ARTICLES = ("a", "an", "the", "of", "in", "on", "and", "by", "at", "with", "from", "between")


def test_names_and_nouns_are_unique_and_every_look_exists():
    assert len({s.name for s in SCENES}) == len(SCENES) >= 30
    assert all(s.words[0] == s.name for s in SCENES)  # canonical noun first
    nouns = Counter(w for s in SCENES for w in s.words)
    assert [w for w, n in nouns.items() if n > 1] == []
    assert {s.look for s in SCENES} == set(LOOKS)
    assert all(len(s.phrases) >= 4 and len(s.palette) >= 2 for s in SCENES)


def test_each_type_has_private_caption_stems():
    """tf-idf must be able to tell the types apart: each type's phrases and nouns hold at
    least two stems that no other type uses."""
    stem = StemAnalyzer(stop_words=ARTICLES)
    stems = {s.name: set(stem(" ".join(s.phrases + s.words))) for s in SCENES}
    for name, own in stems.items():
        others = set().union(*(v for k, v in stems.items() if k != name))
        assert len(own - others) >= 2, (name, sorted(own - others))


def test_every_type_renders_deterministically():
    for s in SCENES:
        a = background(s.name, np.random.default_rng([3, 1]), 40)
        b = background(s.name, np.random.default_rng([3, 1]), 40)
        assert a.shape == (40, 40, 3) and a.dtype == np.float32 and np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)


def test_the_type_is_visible_in_the_pixels():
    """Nearest class mean on 8x8 thumbnails names the type of unseen backgrounds far above
    chance (1/36), yet not perfectly: tints and noise keep raw pixels a weak cue."""

    def thumb(name: str, i: int) -> np.ndarray:
        img = background(name, np.random.default_rng([11, i]), 32)
        return img.reshape(8, 4, 8, 4, 3).mean(axis=(1, 3)).ravel()

    means = np.stack([np.mean([thumb(s.name, i) for i in range(8)], axis=0) for s in SCENES])
    hits = [
        int(np.argmin(((means - thumb(s.name, 100 + i)) ** 2).sum(1)) == k)
        for k, s in enumerate(SCENES)
        for i in range(4)
    ]
    assert 0.5 < np.mean(hits) < 1.0


def test_no_type_dominates():
    """At demo size (1,500 test images) the largest type must stay well under R_max = 150."""
    counts = Counter(sample_scene(np.random.default_rng([5, i]), 32).scene for i in range(1500))
    assert len(counts) == len(SCENES)
    assert max(counts.values()) < 0.06 * 1500


def test_unknown_type_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown scene type 'moon'"):
        background("moon", np.random.default_rng(0), 16)
