"""The COCO multi-label SVM protocol (ICMLM's supplementary) on the tiny scenes COCO layout,
whose instance categories are the scenes shapes."""

from __future__ import annotations

import numpy as np
import pytest

from capbench.eval.protocols import coco_classification as coco
from capbench.eval.protocols import voc07_classification as voc07

SCENES = {"splits": "karpathy", "instances": True}


@pytest.fixture(scope="module")
def data(tiny_scenes):
    return coco.load_coco_labels(
        coco.DataConfig(test_split="test", reader_options=SCENES), tiny_scenes
    )


def test_labels_are_the_instance_categories(data):
    assert data.classes and len(data.classes) == data.train_labels.shape[1]
    for rec, row in zip(data.train, data.train_labels, strict=True):
        names = {rec.meta["categories"][c] for c in rec.labels}
        assert {data.classes[i] for i in np.flatnonzero(row)} == names & set(data.classes)
    assert not data.train_difficult.any()  # COCO has no difficult flag
    for labels in (data.train_labels, data.test_labels):  # every kept class is scorable
        assert (labels.sum(0) > 0).all()
    assert (data.train_labels.sum(0) < len(data.train)).all()


def test_informative_features_beat_noise(data):
    rng = np.random.default_rng(0)
    cfg = voc07.EvalConfig(c_grid=(1.0,))
    good = voc07.score_features(
        data.train_labels + 0.3 * rng.normal(size=data.train_labels.shape),
        data.test_labels + 0.3 * rng.normal(size=data.test_labels.shape),
        data,
        cfg,
    )
    noise = voc07.score_features(
        rng.normal(size=data.train_labels.shape), rng.normal(size=data.test_labels.shape), data, cfg
    )
    assert good["mAP"] > 90.0 and noise["mAP"] < good["mAP"] - 20.0


def test_unscorable_categories_are_dropped_and_named(data, tiny_scenes):
    # cap the test split to 2 images: categories without a test positive cannot have an AP
    capped = coco.load_coco_labels(
        coco.DataConfig(test_split="test", reader_options=SCENES, max_test_images=2),
        tiny_scenes,
    )
    present = {data.classes.index(c) for c in capped.classes}
    assert len(capped.test) == 2 and (capped.test_labels.sum(0) > 0).all()
    dropped = capped.dataset["dropped_classes"]
    assert sorted(capped.classes + dropped) == sorted(capped.train[0].meta["categories"])
    assert len(present) == len(capped.classes)


def test_the_probe_needs_instances(tiny_scenes):
    with pytest.raises(ValueError, match="instance labels"):
        coco.load_coco_labels(coco.DataConfig(reader_options={"splits": "karpathy"}), tiny_scenes)
