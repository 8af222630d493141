"""Every layout the generator writes is read back unchanged by the real readers, with the
counts, splits and captions the generator meant, and ``capbench data check`` accepts it."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from capbench.cli import main as capbench_main
from capbench.data.scenes.generate import SIZES, VOC_CLASSES
from capbench.data.scenes.vocab import SCENE_BY_NAME, SHAPE_BY_NAME
from capbench.data.sources import read
from capbench.data.user_study import read_user_study

SPEC = SIZES["tiny"]
N_SCENES = sum(SPEC.splits.values())


def test_visual_genome_regions_objects_and_splits(tiny):
    out, _, _ = tiny
    records = read("visual_genome", out / "visual_genome")
    assert len(records) == N_SCENES
    assert Counter(r.split for r in records) == Counter(SPEC.splits)
    truth = json.loads((out / "scenes_truth.json").read_text())["visual_genome"]
    for rec in records:
        assert 5 <= len(rec.regions) <= 20, rec.image_id
        for reg in rec.regions:
            assert reg.phrase and reg.x >= 0 and reg.x + reg.w <= 96 and reg.y + reg.h <= 96
        objects = truth[rec.image_id]["objects"]
        expected = [SHAPE_BY_NAME[o["shape"]].synset for o in objects]
        expected.append(SCENE_BY_NAME[truth[rec.image_id]["scene"]].synset)
        assert sorted(s for o in rec.meta["objects"] for s in o["synsets"]) == sorted(expected)
        for o, obj in zip(objects, rec.meta["objects"]):  # boxes in the same order
            assert abs(obj["x"] - o["x"]) <= 1 and abs(obj["w"] - o["w"]) <= 1


@pytest.mark.parametrize("name", ["coco", "flickr8k", "flickr30k"])
def test_sentence_caption_layouts(tiny, name):
    out, _, _ = tiny
    options = {"splits": "karpathy"} if name == "coco" else {}
    records = read(name, out / name, **options)
    assert len(records) == N_SCENES
    assert Counter(r.split for r in records) == Counter(SPEC.splits)  # restval counts as train
    vg = {r.image_id: r for r in read("visual_genome", out / "visual_genome")}
    for rec in records:
        assert len(rec.captions) == 5 and all(c.endswith(".") for c in rec.captions)
    if name == "coco":  # same image, same captions in both layouts: coco id == VG id
        for rec in records:
            assert rec.meta["karpathy_split"] in ("train", "restval", "val", "test")
        by_id = {str(r.meta.get("coco_id", r.image_id)): r for r in records}
        assert set(by_id) == set(vg)


@pytest.mark.parametrize("name", ["cub", "flowers"])
def test_fine_grained_layouts(tiny, name):
    out, _, _ = tiny
    records = read(name, out / name)
    n_classes = SPEC.cub_classes if name == "cub" else SPEC.flowers_classes
    per_class = SPEC.cub_per_class if name == "cub" else SPEC.flowers_per_class
    assert len(records) == n_classes * per_class
    assert len({r.label for r in records}) == n_classes >= 50
    classes_of = {s: {r.label for r in records if r.split == s} for s in ("train", "val", "test")}
    assert all(classes_of.values())
    assert not (classes_of["train"] & classes_of["val"]) and not (
        classes_of["train"] & classes_of["test"]
    )
    assert not (classes_of["val"] & classes_of["test"])
    for rec in records:
        assert len(rec.captions) == 10 and len(set(rec.captions)) >= 5


def test_voc_layouts(tiny):
    out, _, _ = tiny
    truth = json.loads((out / "scenes_truth.json").read_text())["visual_genome"]
    records = read("voc2007", out / "voc2007")
    assert len(records) == N_SCENES
    for rec in records:
        objects = truth[str(int(rec.image_id))]["objects"]
        shown = {o["shape"] for o in objects if o["visible"] >= 0.35}
        assert {rec.meta["classes"][k] for k in rec.labels} == shown
        assert rec.meta["classes"] == VOC_CLASSES
    pretrain = read("voc2007", out / "scenes_pretrain")
    assert len(pretrain) == SPEC.pretrain
    # one-object close-ups, labelled by their shape only (the object classes, as ImageNet's)
    assert all(len(r.labels) == 1 for r in pretrain)
    assert pretrain[0].meta["classes"] == VOC_CLASSES


def test_graded_retrieval(tiny):
    out, _, _ = tiny
    records = read("graded_retrieval", out / "graded_retrieval")
    queries = [r for r in records if r.split == "query"]
    refs = {r.image_id for r in records if r.split == "reference"}
    assert len(queries) == SPEC.graded_queries and len(refs) == SPEC.graded_references
    for q in queries:
        assert set(q.meta["relevance"]) == refs
        assert set(q.meta["relevance"].values()) <= {0, 1, 2, 3}


def test_user_study_files(tiny):
    out, _, _ = tiny
    vg_ids = {
        s: {r.image_id for r in read("visual_genome", out / "visual_genome", s)}
        for s in ("train", "val", "test")
    }
    for split in ("train", "val", "test"):
        study = read_user_study(out / "user_study" / f"triplets_{split}.json")
        assert study.split == split and study.dataset == "visual_genome"
        assert len(study.triplets) == SPEC.study.triplets
        common = study.triplets[: SPEC.study.common]
        assert all(len(t.votes) == SPEC.study.common_annotators for t in common)
        assert all(
            len(t.votes) == SPEC.study.per_triplet for t in study.triplets[SPEC.study.common :]
        )
        for t in study.triplets:
            assert {t.query, t.a, t.b} <= vg_ids[split]


@pytest.mark.parametrize(
    "name, folder, extra",
    [
        ("visual_genome", "visual_genome", []),
        ("coco", "coco", ["--splits", "karpathy"]),
        ("coco", "coco", []),
        ("flickr8k", "flickr8k", []),
        ("flickr30k", "flickr30k", []),
        ("cub", "cub", []),
        ("flowers", "flowers", []),
        ("voc2007", "voc2007", []),
        ("voc2007", "scenes_pretrain", []),
        ("graded_retrieval", "graded_retrieval", []),
    ],
)
def test_data_check_passes(tiny, name, folder, extra, capsys):
    out, _, _ = tiny
    assert capbench_main(["data", "check", name, str(out / folder), *extra]) == 0
    assert "OK" in capsys.readouterr().out
