"""A simulated version of Gordo & Larlus's user study (section 3).

Triplets: a random query and two images drawn from its ``k`` nearest neighbours under a simple
visual feature (colour histogram + 8x8 thumbnail), the stand-in for the paper's ImageNet
ResNet-101 neighbours: candidates look alike, so the choice is about content.

Annotators: each user perceives the true scene similarity (``graded.scene_similarity``) of the
two candidates with Gaussian noise of their own scale, answers "neither" when the perceived
difference is below their own indifference threshold or both candidates are unrelated to the
query, and otherwise picks the closer one. A common subset of triplets is answered by many
users and every other triplet by a few, as in the paper (50 triplets x 25 users; 3,000 triplets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from tqdm import tqdm

from capbench.data.scenes.graded import scene_similarity
from capbench.data.scenes.layout import Scene
from capbench.data.user_study import Triplet

UNRELATED = 0.2  # both candidates below this similarity to the query: "neither" is likely


@dataclass(frozen=True)
class StudySize:
    triplets: int
    annotators: int
    common: int  # triplets answered by ``common_annotators`` users
    common_annotators: int
    per_triplet: int  # annotators for every other triplet
    neighbours: int  # k nearest visual neighbours the candidates are drawn from


def visual_features(images: Sequence[Image.Image]) -> np.ndarray:
    """L2-normalised [RGB histogram (4x4x4) | 8x8 RGB thumbnail]: a deliberately simple feature."""
    feats = []
    for image in tqdm(images, desc="user-study features", leave=False, disable=len(images) < 5000):
        arr = np.asarray(image.convert("RGB"), dtype=np.int64)
        bins = (arr // 64).reshape(-1, 3)
        hist = np.bincount(bins[:, 0] * 16 + bins[:, 1] * 4 + bins[:, 2], minlength=64).astype(
            float
        )
        thumb = np.asarray(image.convert("RGB").resize((8, 8), Image.BILINEAR), dtype=float).ravel()
        thumb = thumb - thumb.mean()
        parts = [v / max(np.linalg.norm(v), 1e-9) for v in (hist, thumb)]
        feats.append(np.concatenate(parts) / np.sqrt(2))
    return np.asarray(feats, dtype=np.float64)


def sample_triplets(
    rng: np.random.Generator, features: np.ndarray, ids: Sequence[str], n: int, k: int
) -> list[tuple[str, str, str]]:
    """``n`` distinct (query, a, b) with a, b two of the query's ``k`` visual nearest neighbours."""
    if len(ids) < 3:
        raise ValueError("a user study needs at least 3 images")
    k = min(k, len(ids) - 1)
    neighbours: dict[int, np.ndarray] = {}  # per query only: never an n x n matrix (80k VG train)
    max_distinct = len(ids) * k * (k - 1) // 2
    n = min(n, max_distinct)
    seen: set[tuple[int, int, int]] = set()
    out: list[tuple[str, str, str]] = []
    while len(out) < n:
        q = int(rng.integers(len(ids)))
        if q not in neighbours:
            sims = features @ features[q]
            sims[q] = -np.inf
            neighbours[q] = np.argsort(-sims, kind="stable")[:k]
        a, b = (int(v) for v in rng.choice(neighbours[q], size=2, replace=False))
        key = (q, min(a, b), max(a, b))
        if key in seen:
            continue
        seen.add(key)
        out.append((ids[q], ids[a], ids[b]))
    return out


@dataclass(frozen=True)
class Annotator:
    name: str
    noise: float  # std of the perceived similarity difference
    indifference: float  # |difference| below this -> "neither"

    def vote(self, rng: np.random.Generator, sim_a: float, sim_b: float) -> str:
        if max(sim_a, sim_b) < UNRELATED and rng.random() < 0.7:
            return "neither"
        diff = sim_a - sim_b + rng.normal(0, self.noise)
        if abs(diff) < self.indifference:
            return "neither"
        return "a" if diff > 0 else "b"


def make_annotators(rng: np.random.Generator, n: int) -> list[Annotator]:
    return [
        Annotator(f"u{i:02d}", float(rng.uniform(0.015, 0.045)), float(rng.uniform(0.004, 0.012)))
        for i in range(n)
    ]


def simulate_study(
    rng: np.random.Generator,
    scenes: dict[str, Scene],
    images: dict[str, Image.Image],
    ids: Sequence[str],
    size: StudySize,
) -> tuple[list[str], list[Triplet]]:
    """(annotator names, triplets with votes) over the images ``ids``."""
    features = visual_features([images[i] for i in ids])
    triples = sample_triplets(rng, features, ids, size.triplets, size.neighbours)
    users = make_annotators(rng, size.annotators)
    common = min(size.common, len(triples))
    triplets = []
    for t, (q, a, b) in enumerate(triples):
        n_users = size.common_annotators if t < common else size.per_triplet
        chosen = np.sort(rng.choice(len(users), size=min(n_users, len(users)), replace=False))
        sim_a, sim_b = (
            scene_similarity(scenes[q], scenes[a]),
            scene_similarity(scenes[q], scenes[b]),
        )
        votes = {users[int(u)].name: users[int(u)].vote(rng, sim_a, sim_b) for u in chosen}
        triplets.append(Triplet(q, a, b, votes))
    return [u.name for u in users], triplets


def leave_one_out_agreement(triplets: Sequence[Triplet]) -> tuple[float, float, dict[str, float]]:
    """Gordo & Larlus's inter-user agreement (x100): mean and std over users, and per user.

    For a user who chose i in {a, b} on a triplet where another user also chose a or b:
    s = w (o_i - 1) / (o1 + o2 - 1), w = (o1 + o2 - 1) / (o1 + o2 + o3 - 1); a user's score is
    the mean of s over such triplets.
    """
    per_user: dict[str, list[float]] = {}
    for t in triplets:
        o1, o2, o3 = t.counts
        for user, choice in t.votes.items():
            if choice == "neither" or o1 + o2 - 1 < 1:
                continue
            o_i = o1 if choice == "a" else o2
            w = (o1 + o2 - 1) / (o1 + o2 + o3 - 1)
            per_user.setdefault(user, []).append(w * (o_i - 1) / (o1 + o2 - 1))
    scores = {u: 100.0 * float(np.mean(v)) for u, v in per_user.items()}
    values = np.asarray(list(scores.values()))
    return float(values.mean()), float(values.std()), scores
