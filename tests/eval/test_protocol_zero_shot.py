"""The zero-shot protocol of Reed et al. (capbench.eval.protocols.zero_shot) against the metric
functions it must agree with, and its Figure 4 curve."""

from __future__ import annotations

import numpy as np
import pytest

from capbench.eval.metrics import ap_at_50, zero_shot_top1
from capbench.eval.protocols.zero_shot import (
    chance_top1,
    class_embeddings,
    score_zero_shot,
    sentences_per_class_curve,
    single_sentence_ap,
)


def test_class_embeddings_average_every_caption_of_a_class_whatever_its_label():
    emb = np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0], [2.0, 2.0]])
    classes, means = class_embeddings(emb, [17, 17, 5, 17])
    assert classes.tolist() == [5, 17]
    np.testing.assert_allclose(means, [[0.0, 4.0], [2.0, 4 / 3]])


def test_score_matches_the_metrics_on_hand_built_data():
    captions = np.array([[1.0, 0.0], [1.0, 0.2], [0.0, 1.0], [0.2, 1.0]])
    caption_labels = [40, 40, 9, 9]  # class ids of a test split need not start at 0
    images = np.array([[1.0, 0.1], [0.1, 1.0], [0.9, 0.0], [0.6, 0.5]])
    image_labels = [40, 9, 9, 9]
    got = score_zero_shot(images, image_labels, captions, caption_labels, ap_k=2)
    means = np.array([[0.1, 1.0], [1.0, 0.1]])  # rows: class 9, class 40
    y = np.array([1, 0, 0, 0])
    assert got["top1"] == pytest.approx(zero_shot_top1(images, means, y))
    assert got["ap50"] == pytest.approx(ap_at_50(images, means, y, k=2))
    # by hand: class 40 has 1/1 right, class 9 has 1/3 (images 2 and 3 look like class 40)
    assert got["top1"] == pytest.approx(100 * (1 + 1 / 3) / 2)


def test_single_sentence_ap_equals_class_ap_when_each_class_has_one_caption():
    """With one caption per class the class mean is that caption: both AP@k agree; with two,
    each caption is scored alone (by hand)."""
    images = np.array([[1.0, 0.1], [0.1, 1.0], [0.9, 0.0], [0.6, 0.5]])
    labels = [40, 9, 9, 9]
    one = np.array([[1.0, 0.0], [0.0, 1.0]])
    got = score_zero_shot(images, labels, one, [40, 9], ap_k=2)
    assert got["ap50_single"] == pytest.approx(got["ap50"])
    two = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    # caption 0 (class 40): top-2 images 0, 2 -> 1/2; captions 1, 2 (class 9): images 1, 3 -> 2/2
    got = single_sentence_ap(images, labels, two, [40, 9, 9], k=2)
    assert got == pytest.approx(100 * (0.5 + 1 + 1) / 3)


def test_a_test_class_without_captions_is_an_error():
    with pytest.raises(ValueError, match="no caption"):
        score_zero_shot(np.eye(2), [0, 3], np.eye(2), [0, 1])


def test_chance_is_one_over_the_number_of_test_classes():
    assert chance_top1([3, 3, 8, 11]) == pytest.approx(100 / 3)


def test_sentences_per_class_curve_reaches_the_full_score_with_every_sentence():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 8))
    caption_labels = np.repeat(np.arange(4), 6)
    captions = centres[caption_labels] + 2.0 * rng.standard_normal((24, 8))
    image_labels = np.repeat(np.arange(4), 3)
    images = centres[image_labels] + 0.5 * rng.standard_normal((12, 8))
    curve = sentences_per_class_curve(
        images, image_labels, captions, caption_labels, [1, 6], draws=5, seed=1
    )
    full = score_zero_shot(images, image_labels, captions, caption_labels)["top1"]
    assert curve["x"] == [1.0, 6.0]
    assert curve["y"][1] == pytest.approx(full) and curve["sd"][1] == pytest.approx(0.0)
    assert curve["sd"][0] > 0.0  # one random sentence per class: the draws differ
