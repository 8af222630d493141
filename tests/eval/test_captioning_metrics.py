"""Caption metrics through pycocoevalcap: exact and partial matches, the random-caption
baseline, and the errors for mismatched inputs."""

from __future__ import annotations

import pytest

from capbench.eval.captioning import caption_scores, random_caption_baseline


def test_identical_captions_score_one_and_partial_matches_less():
    refs = {"a": ["A red circle on the grass."], "b": ["Two blue squares near a tree"]}
    exact = caption_scores(
        refs, {"a": "a red circle on the grass", "b": "two blue squares near a tree"}
    )
    assert exact["bleu4"] == pytest.approx(1.0, abs=1e-6)
    # case and punctuation are normalised away before scoring
    same = caption_scores(
        refs, {"a": "A red circle on the grass!", "b": "Two blue squares near a tree."}
    )
    assert same["bleu4"] == pytest.approx(exact["bleu4"])
    partial = caption_scores(refs, {"a": "a red circle on sand", "b": "two blue squares"})
    assert 0.0 <= partial["bleu4"] < exact["bleu4"]
    assert partial["bleu1"] > partial["bleu4"]
    assert partial["cider"] < exact["cider"]


def test_bleu1_hand_computed():
    # hypothesis "a red circle" vs reference "a red circle on the grass": unigram precision 1,
    # brevity penalty exp(1 - 6/3) = e^-1
    import math

    got = caption_scores({"x": ["a red circle on the grass"]}, {"x": "a red circle"})
    assert got["bleu1"] == pytest.approx(math.exp(-1.0), rel=1e-6)


def test_random_caption_baseline_draws_training_captions():
    train = [["first caption", "other"], [], ["second caption"]]
    base = random_caption_baseline(train, ["u", "v", "w", "x"], seed=0)
    assert set(base) == {"u", "v", "w", "x"}
    assert set(base.values()) <= {"first caption", "second caption"}
    assert base == random_caption_baseline(train, ["u", "v", "w", "x"], seed=0)
    with pytest.raises(ValueError, match="no training image has a caption"):
        random_caption_baseline([[]], ["u"])


def test_errors_name_the_problem():
    with pytest.raises(KeyError, match="without references"):
        caption_scores({"a": ["x"]}, {"b": "x"})
    with pytest.raises(ValueError, match="no generated caption"):
        caption_scores({"a": ["x"]}, {})
