"""The VOC07 linear-SVM protocol on the tiny scenes VOC layout."""

from __future__ import annotations

import numpy as np
import pytest

from capbench.eval.protocols import voc07_classification as voc07


@pytest.fixture(scope="module")
def voc(tiny_scenes):
    return voc07.load_voc_data(voc07.DataConfig(), tiny_scenes)


def test_label_matrices_follow_the_reader(voc):
    assert voc.train_labels.shape == (len(voc.train), len(voc.classes))
    assert voc.test_labels.shape == (len(voc.test), len(voc.classes))
    first = voc.train[0]
    assert set(np.flatnonzero(voc.train_labels[0])) == set(first.labels)
    assert voc.train_difficult.dtype == bool


def test_max_train_images_keeps_the_first_train_images_and_every_test_image(tiny_scenes, voc):
    part = voc07.load_voc_data(voc07.DataConfig(max_train_images=5), tiny_scenes)
    assert [r.image_id for r in part.train] == [r.image_id for r in voc.train[:5]]
    assert len(part.test) == len(voc.test) and part.train_labels.shape[0] == 5
    assert part.dataset["train_images"] == f"first 5 of {len(voc.train)}"
    with pytest.raises(ValueError, match="max_train_images must be >= 1"):
        voc07.load_voc_data(voc07.DataConfig(max_train_images=0), tiny_scenes)


def test_informative_features_beat_noise(voc):
    rng = np.random.default_rng(0)
    cfg = voc07.EvalConfig(c_grid=(1.0,))

    def noisy(labels: np.ndarray, scale: float) -> np.ndarray:
        return labels + scale * rng.normal(size=labels.shape)

    good = voc07.score_features(noisy(voc.train_labels, 0.3), noisy(voc.test_labels, 0.3), voc, cfg)
    noise = voc07.score_features(
        rng.normal(size=voc.train_labels.shape), rng.normal(size=voc.test_labels.shape), voc, cfg
    )
    assert good["mAP"] > 90.0
    assert noise["mAP"] < good["mAP"] - 20.0
    assert good["classes"] == voc.classes


def test_unknown_metric_is_refused(voc):
    x = np.ones((len(voc.train), 2))
    with pytest.raises(ValueError, match=r"eval\.metric"):
        voc07.score_features(x, x[: len(voc.test)], voc, voc07.EvalConfig(metric="acc"))


def test_missing_dataset_names_the_data_card(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data_cards/voc2007\.md"):
        voc07.load_voc_data(voc07.DataConfig(root="nope"), tmp_path)
