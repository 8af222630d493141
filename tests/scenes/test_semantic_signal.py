"""The semantic signal is real: on tiny, tf-idf of the region phrases agrees with the simulated
annotators clearly more often than raw pixel similarity does, and annotators agree with each
other about as much as the paper's users (89.1 +- 4.6).

Everything here is computed independently of the generator: data read back through the real
readers, a tf-idf written with scikit-learn + NLTK's Snowball stemmer, and the paper's
leave-one-user-out formula written per user.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from nltk.stem.snowball import SnowballStemmer
from PIL import Image
from sklearn.feature_extraction.text import TfidfVectorizer

from capbench.data.scenes.simulate_users import leave_one_out_agreement
from capbench.data.sources import read
from capbench.data.user_study import Triplet, read_user_study

SPLITS = ("train", "val", "test")


def stemmed_tfidf(train_docs: list[str]) -> TfidfVectorizer:
    stem = SnowballStemmer("english").stem
    return TfidfVectorizer(
        analyzer=lambda doc: [stem(w) for w in re.findall(r"[a-z0-9]+", doc.lower())]
    ).fit(train_docs)


def method_agreement(triplets: list[Triplet], similarity) -> float:
    """Paper, section 3: fraction of users agreeing with the method's choice, weighted by the
    fraction who decided, averaged over triplets with at least one decision (ties: half)."""
    scores = []
    for t in triplets:
        o1, o2, o3 = t.counts
        if o1 + o2 == 0:
            continue
        sa, sb = similarity(t.query, t.a), similarity(t.query, t.b)
        chosen = o1 if sa > sb else o2 if sb > sa else (o1 + o2) / 2
        scores.append(chosen / (o1 + o2 + o3))
    return 100 * float(np.mean(scores))


def per_user_agreement(triplets: list[Triplet]) -> dict[str, float]:
    """Leave-one-user-out: s = w (o_i - 1) / (o1 + o2 - 1), w = (o1 + o2 - 1) / (o1 + o2 + o3 - 1)."""
    users = sorted({u for t in triplets for u in t.votes})
    out = {}
    for user in users:
        s = []
        for t in triplets:
            choice = t.votes.get(user)
            if choice not in ("a", "b"):
                continue
            others = [v for u, v in t.votes.items() if u != user]
            decided = [v for v in others if v != "neither"]
            if not decided:
                continue
            s.append(len(decided) / len(others) * sum(v == choice for v in decided) / len(decided))
        if s:
            out[user] = 100 * float(np.mean(s))
    return out


@pytest.fixture(scope="module")
def study(tiny):
    out, _, _ = tiny
    records = read("visual_genome", out / "visual_genome")
    docs = {r.image_id: " . ".join(reg.phrase for reg in r.regions) for r in records}
    vectorizer = stemmed_tfidf([docs[r.image_id] for r in records if r.split == "train"])
    ids = list(docs)
    X = vectorizer.transform([docs[i] for i in ids])
    row = {i: k for k, i in enumerate(ids)}
    text_sim = (X @ X.T).toarray()
    pixels = np.stack(
        [np.asarray(Image.open(r.image_path).convert("RGB"), float).ravel() for r in records]
    )
    pixels /= np.linalg.norm(pixels, axis=1, keepdims=True)
    pixel_sim = pixels @ pixels.T
    triplets = [
        t
        for s in SPLITS
        for t in read_user_study(out / "user_study" / f"triplets_{s}.json").triplets
    ]
    return (
        triplets,
        (lambda a, b: text_sim[row[a], row[b]]),
        (lambda a, b: pixel_sim[row[a], row[b]]),
    )


def test_tfidf_agrees_with_users_clearly_more_than_pixels(study):
    triplets, text, pixels = study
    rng = np.random.default_rng(0)
    tfidf_score = method_agreement(triplets, text)
    pixel_score = method_agreement(triplets, pixels)
    random_score = np.mean(
        [method_agreement(triplets, lambda a, b: rng.random()) for _ in range(5)]
    )
    # tiny, seed 0: 57.9 with generator 2.1 (58.7 with 2.0), pixels 39.2, random 36.4; the margins
    # below are the point, the floor only catches a collapse
    assert tfidf_score >= 55, tfidf_score
    assert tfidf_score >= pixel_score + 8, (tfidf_score, pixel_score)
    assert tfidf_score >= random_score + 10, (tfidf_score, random_score)


def test_inter_annotator_agreement_is_high_like_the_paper(study):
    triplets, _, _ = study
    scores = per_user_agreement(triplets)
    assert len(scores) >= 10
    mean = float(np.mean(list(scores.values())))
    assert 84 <= mean <= 95, mean
    # The generator's own implementation (used for the manifest) gives the same numbers.
    ref_mean, ref_std, ref_scores = leave_one_out_agreement(triplets)
    assert ref_scores == pytest.approx(scores)
    assert ref_mean == pytest.approx(mean) and ref_std == pytest.approx(
        np.std(list(scores.values()))
    )


def test_common_subset_answered_by_many_users_agrees_too(tiny, study):
    out, manifest, _ = tiny
    common = [t for t in study[0] if len(t.votes) >= 10]
    assert len(common) == 3 * 20  # 20 common triplets per split
    assert 80 <= float(np.mean(list(per_user_agreement(common).values()))) <= 97
    # The manifest reports what this test measures, split by split.
    for split in SPLITS:
        triplets = read_user_study(out / "user_study" / f"triplets_{split}.json").triplets
        expected = np.mean(list(per_user_agreement(triplets).values()))
        assert manifest["counts"]["user_study"][split]["agreement_mean"] == pytest.approx(
            expected, abs=0.01
        )
