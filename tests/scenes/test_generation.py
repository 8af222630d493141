"""The generated content itself: geometry-derived relations, caption grammar, fine-grained
classes, graded relevance and the CLI."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from capbench.cli import main as capbench_main
from capbench.data.scenes import cli
from capbench.data.scenes.captions import (
    MAX_REGIONS,
    MIN_REGIONS,
    region_phrases,
    sentence_captions,
)
from capbench.data.scenes.finegrained import class_table
from capbench.data.scenes.graded import grade, scene_similarity
from capbench.data.scenes.layout import (
    CLOSEUP_SIDE,
    Scene,
    SceneObject,
    relations_from_geometry,
    sample_closeup,
    sample_scene,
)
from capbench.data.scenes.render import render
from capbench.data.scenes.vocab import COLOURS, SCENES, SHAPES


def _obj(shape: str, colour: str, x: float, y: float) -> SceneObject:
    return SceneObject(shape, colour, "medium", "plain", "", x, y, 20, 20)


def test_relations_follow_geometry():
    left, right, low = (
        _obj("circle", "red", 5, 10),
        _obj("square", "blue", 70, 12),
        _obj("star", "green", 8, 70),
    )
    rels = {
        (r.subject, r.predicate, r.object) for r in relations_from_geometry([left, right, low], 96)
    }
    assert (0, "left of", 1) in rels and (1, "right of", 0) in rels
    assert (0, "above", 2) in rels and (2, "below", 0) in rels
    assert not any(p == "next to" for _, p, _ in rels)  # all centres >= 0.3 * 96 apart
    near = relations_from_geometry([_obj("circle", "red", 10, 10), _obj("ring", "red", 30, 12)], 96)
    assert {(r.subject, r.predicate, r.object) for r in near} >= {
        (0, "next to", 1),
        (0, "left of", 1),
    }


def test_closeups_hold_one_object_that_fills_the_frame():
    """The pretraining images: one object, inside the image, its side in CLOSEUP_SIDE (the
    renderer's aspect jitter is at most 15%), every shape and scene type drawn."""
    rng = np.random.default_rng(0)
    shapes, scenes = set(), set()
    for _ in range(400):
        scene = sample_closeup(rng, 96)
        assert len(scene.objects) == 1 and not scene.relations
        obj = scene.objects[0]
        side = np.sqrt(obj.w * obj.h) / 96
        assert CLOSEUP_SIDE[0] - 1e-6 <= side <= CLOSEUP_SIDE[1] + 1e-6
        assert obj.x >= 0 and obj.x + obj.w <= 96 and obj.y >= 0 and obj.y + obj.h <= 96
        shapes.add(obj.shape)
        scenes.add(scene.scene)
    assert shapes == {s.name for s in SHAPES} and scenes == {s.name for s in SCENES}


def test_vocabulary_sizes():
    assert len(SHAPES) >= 6 and len(COLOURS) >= 8 and len(SCENES) >= 5


def test_captions_describe_the_scene():
    named = []
    for i in range(30):
        rng = np.random.default_rng([7, i])
        scene = sample_scene(rng, 96)
        image = render(scene, rng)
        assert image.size == (96, 96) and image.mode == "RGB"
        regions = region_phrases(scene, rng)
        assert MIN_REGIONS <= len(regions) <= MAX_REGIONS
        captions = sentence_captions(scene, rng)
        assert len(captions) == 5 and all(c[0].isupper() and c.endswith(".") for c in captions)
        text = " ".join(r.phrase for r in regions).lower()
        scene_words = next(s for s in SCENES if s.name == scene.scene)
        assert any(w in text for p in scene_words.phrases for w in p.split() if len(w) > 4)
        for obj in scene.objects:  # objects are named by a word of their shape (4% noise)
            shape = next(s for s in SHAPES if s.name == obj.shape)
            named.append(any(w in text for w in shape.words))
    assert np.mean(named) >= 0.95


def test_similarity_and_grades():
    a = Scene("beach", 96, [_obj("circle", "red", 5, 5), _obj("square", "blue", 60, 5)])
    a.relations = relations_from_geometry(a.objects, 96)
    same = Scene("beach", 96, [_obj("square", "blue", 60, 5), _obj("circle", "red", 5, 5)])
    same.relations = relations_from_geometry(same.objects, 96)
    other = Scene("snow", 96, [_obj("star", "green", 5, 5)])
    assert scene_similarity(a, same) == pytest.approx(1.0) and grade(1.0) == 3
    assert scene_similarity(a, other) == pytest.approx(0.65 * 0.1 / 2)  # only "plain" matches
    assert grade(scene_similarity(a, other)) == 0
    recoloured = Scene("beach", 96, [_obj("circle", "green", 5, 5), _obj("square", "blue", 60, 5)])
    recoloured.relations = relations_from_geometry(recoloured.objects, 96)
    assert scene_similarity(a, other) < scene_similarity(a, recoloured) < 1.0


def test_fine_grained_classes_share_attributes_across_splits():
    table = class_table(60, 2011)
    assert len({(c.shape, c.colour, c.pattern, c.pattern_colour) for c in table}) == 60
    train = [c for c in table if c.split == "train"]
    for cls in (c for c in table if c.split == "test"):
        assert any(c.shape == cls.shape for c in train) or any(
            c.colour == cls.colour for c in train
        )
    assert class_table(60, 2011) == table and class_table(60, 102) != table


def test_cli_run_and_dispatcher(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        ["--out", str(tmp_path / "s"), "--size", "tiny", "--formats", "cub", "--workers", "1"]
    )
    assert cli.run(args) == 0
    assert "cub" in capsys.readouterr().out and (tmp_path / "s" / "cub" / "CUB_200_2011").is_dir()
    argv = [
        "data",
        "scenes",
        "--out",
        str(tmp_path / "s"),
        "--size",
        "tiny",
        "--formats",
        "cub",
        "--workers",
        "1",
    ]
    assert capbench_main(argv) == 0
    assert "already written" in capsys.readouterr().out
    bad = parser.parse_args(["--out", str(tmp_path / "s2"), "--size", "tiny", "--image-size", "8"])
    assert cli.run(bad) == 2
    assert "image size" in capsys.readouterr().err
