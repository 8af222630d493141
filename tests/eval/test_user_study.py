"""User-study agreement and leave-one-user-out inter-annotator agreement (Gordo & Larlus §3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capbench.data.user_study import Triplet
from capbench.eval.metrics import inter_annotator_agreement, user_agreement


def _votes(**kw: str) -> dict[str, str]:
    return dict(kw)


TRIPLETS = [
    Triplet("q1", "a1", "b1", _votes(u1="a", u2="a", u3="b", u4="neither")),  # o = (2, 1, 1)
    Triplet("q2", "a2", "b2", _votes(u1="b", u2="b")),  # o = (0, 2, 0)
    Triplet("q3", "a3", "b3", _votes(u3="neither", u4="neither")),  # o = (0, 0, 2): skipped
    Triplet("q4", "a4", "b4", _votes(u1="a", u2="b")),  # o = (1, 1, 0)
]


def test_user_agreement_hand_computed():
    # picks: t1 a (s = 2/3, w = 3/4), t2 a (s = 0/2, w = 1), t4 tie (half credit: s = 1/2, w = 1)
    # sum(w s) / sum(w) = (3/4 * 2/3 + 0 + 1/2) / (3/4 + 1 + 1) = 1 / 2.75
    s_qa = np.array([0.9, 0.8, 0.1, 0.5])
    s_qb = np.array([0.1, 0.2, 0.9, 0.5])
    assert user_agreement((s_qa, s_qb), TRIPLETS) == pytest.approx(100 / 2.75)


def test_callable_and_arrays_agree():
    sims = {("q1", "a1"): 0.3, ("q1", "b1"): 0.7, ("q2", "a2"): 0.2, ("q2", "b2"): 0.9,
            ("q3", "a3"): 0.0, ("q3", "b3"): 1.0, ("q4", "a4"): 0.6, ("q4", "b4"): 0.1}  # fmt: skip
    by_fn = user_agreement(lambda q, c: sims[(q, c)], TRIPLETS)
    s_qa = [sims[(t.query, t.a)] for t in TRIPLETS]
    s_qb = [sims[(t.query, t.b)] for t in TRIPLETS]
    assert by_fn == pytest.approx(user_agreement((s_qa, s_qb), TRIPLETS))
    # t1 picks b: 1/3 (w 3/4); t2 b: 1 (w 1); t4 a: 1/2 (w 1) -> (1/4 + 1 + 1/2) / 2.75
    assert by_fn == pytest.approx(100 * 1.75 / 2.75)


def test_random_picks_score_about_50():
    rng = np.random.default_rng(0)
    choices = np.array(["a", "b", "neither"])
    triplets = []
    for i in range(3000):
        n = int(rng.integers(1, 6))
        votes = {f"u{j}": str(rng.choice(choices, p=[0.6, 0.3, 0.1])) for j in range(n)}
        triplets.append(Triplet(f"q{i}", f"a{i}", f"b{i}", votes))
    scores = [user_agreement((rng.random(3000), rng.random(3000)), triplets) for _ in range(5)]
    assert abs(np.mean(scores) - 50.0) < 1.5


def test_inter_annotator_hand_computed():
    # t1 o=(2,1,1): w = (3-1)/(4-1) = 2/3; u1, u2 (a): 2/3 * (2-1)/(3-1) = 1/3; u3 (b): 0
    # t2 o=(0,2,0): w = 1; u1, u2 (b): (2-1)/(2-1) = 1
    # t3 nobody chose an image; t4 o=(1,1,0): w = 1; u1 (a): (1-1)/1 = 0, u2 (b): 0
    # per user: u1 = mean(1/3, 1, 0) = 4/9, u2 = 4/9, u3 = 0
    mean, std = inter_annotator_agreement(TRIPLETS)
    users = np.array([4 / 9, 4 / 9, 0.0]) * 100
    assert mean == pytest.approx(users.mean())
    assert std == pytest.approx(users.std())
    mean2, _ = inter_annotator_agreement([t.votes for t in TRIPLETS])
    assert mean2 == pytest.approx(mean)


def test_unanimous_annotators_agree_fully():
    triplets = [Triplet(f"q{i}", "a", "b", {f"u{j}": "a" for j in range(4)}) for i in range(5)]
    assert inter_annotator_agreement(triplets) == (pytest.approx(100.0), pytest.approx(0.0))


def test_errors():
    with pytest.raises(ValueError, match="no triplet"):
        user_agreement(([0.0], [1.0]), [Triplet("q", "a", "b", {"u": "neither"})])
    with pytest.raises(ValueError, match="entries"):
        user_agreement(([0.0, 1.0], [1.0]), TRIPLETS[:1])
    with pytest.raises(ValueError, match="unknown vote"):
        inter_annotator_agreement([{"u1": "left"}])
    assert not math.isnan(user_agreement(([1.0], [0.0]), TRIPLETS[:1]))


def test_nan_similarity_is_an_error_not_a_tie():
    """A NaN compares as neither larger nor smaller: it used to earn half credit as a tie."""
    s_qa = np.array([0.9, np.nan, 0.1, 0.5])
    s_qb = np.array([0.1, 0.2, 0.9, 0.5])
    with pytest.raises(ValueError, match=r"triplet 1 \(query 'q2', a 'a2', b 'b2'\) is NaN"):
        user_agreement((s_qa, s_qb), TRIPLETS)
    with pytest.raises(ValueError, match="no triplets"):
        user_agreement(([], []), [])
