"""The METEOR match kernel of gordo2017's Table 1 row 4: exact arithmetic on a hand-built
pair, real METEOR 1.5 (Java) on sentences, and the row skipped with its reason without Java."""

from __future__ import annotations

import shutil

import pytest

from capbench.bench.config import missing_requirements, requirement_text
from capbench.eval.meteor_kernel import JAVA_MISSING, MeteorScorer, kernel_pairs, match_kernel


def test_kernel_of_a_hand_built_pair_is_the_mean_of_symmetrised_scores():
    sets = [["a red circle", "a tree"], ["a red square"], []]
    scores = {
        ("a red circle", "a red square"): 0.6,
        ("a red square", "a red circle"): 0.4,
        ("a tree", "a red square"): 0.1,
        ("a red square", "a tree"): 0.3,
    }
    pairs = [(0, 1), (0, 2)]
    assert set(kernel_pairs(sets, pairs)) == set(scores)
    assert kernel_pairs(sets, pairs, symmetric=False) == [
        ("a red circle", "a red square"),
        ("a tree", "a red square"),
    ]
    k = match_kernel(sets, pairs, scores)
    assert k[(0, 1)] == pytest.approx(((0.6 + 0.4) / 2 + (0.1 + 0.3) / 2) / 2)  # 0.35
    assert k[(0, 2)] == 0.0  # no caption: similar to nothing
    one_way = match_kernel(sets, [(0, 1)], scores, symmetric=False)
    assert one_way[(0, 1)] == pytest.approx((0.6 + 0.1) / 2)


def test_rows_needing_java_are_skipped_with_the_reason(monkeypatch):
    cfg = {"requires": {"executable:java": "METEOR runs on Java"}}
    monkeypatch.setattr(shutil, "which", lambda name: None)
    missing = missing_requirements(cfg)
    assert missing == [("executable:java", "METEOR runs on Java")]
    assert requirement_text(*missing[0]) == "java is not on PATH (METEOR runs on Java)"
    with pytest.raises(RuntimeError, match="install a runtime"):
        MeteorScorer()
    assert "default-jre-headless" in JAVA_MISSING
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/java")
    assert missing_requirements(cfg) == []


@pytest.mark.slow
def test_real_meteor_orders_sentences_sensibly():
    """METEOR 1.5 through pycocoevalcap's jar (needs Java: `make test-slow` installs it)."""
    scores = MeteorScorer().score(
        [
            ("a red circle on the left", "a red circle on the left"),
            ("a red circle on the left", "a red square on the left"),
            ("a red circle on the left", "green trees"),
        ]
    )
    same, close, far = scores
    assert 0.5 < same <= 1.0 and 0.0 < close < same and far == 0.0
