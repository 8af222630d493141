"""True semantic similarity between two scenes, and rPascal-like graded relevance 0-3 from it.

    sim(A, B) = 0.65 * objects + 0.2 * [same scene type] + 0.15 * relations
    objects   = best one-to-one matching of objects, pair score 0.6 [same shape]
                + 0.3 [same colour] + 0.1 [same pattern], summed and divided by max(|A|, |B|)
    relations = Jaccard of the (subject shape, predicate, object shape) triples
    grade     = 0 if sim < 0.25, 1 if < 0.4, 2 if < 0.6, else 3

It is the hidden ground truth that both the graded benchmark and the simulated annotators use;
captions describe the same facts in words, pixels show them among textures and noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import permutations

from capbench.data.scenes.layout import Scene, SceneObject

GRADE_THRESHOLDS = (0.25, 0.4, 0.6)
WEIGHTS = {"objects": 0.65, "scene": 0.2, "relations": 0.15}


def _pair_score(a: SceneObject, b: SceneObject) -> float:
    return (
        0.6 * (a.shape == b.shape) + 0.3 * (a.colour == b.colour) + 0.1 * (a.pattern == b.pattern)
    )


def object_overlap(a: Sequence[SceneObject], b: Sequence[SceneObject]) -> float:
    """Best one-to-one matching score (exhaustive: at most 4! pairings), normalised to [0, 1]."""
    if not a or not b:
        return 0.0
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    scores = [[_pair_score(s, t) for t in big] for s in small]
    best = max(
        sum(scores[i][j] for i, j in enumerate(perm))
        for perm in permutations(range(len(big)), len(small))
    )
    return best / len(big)


def _relation_triples(scene: Scene) -> set[tuple[str, str, str]]:
    return {
        (scene.objects[r.subject].shape, r.predicate, scene.objects[r.object].shape)
        for r in scene.relations
    }


def scene_similarity(a: Scene, b: Scene) -> float:
    """Symmetric similarity in [0, 1] (1 for identical content)."""
    ra, rb = _relation_triples(a), _relation_triples(b)
    rel = len(ra & rb) / len(ra | rb) if (ra | rb) else 1.0
    return (
        WEIGHTS["objects"] * object_overlap(a.objects, b.objects)
        + WEIGHTS["scene"] * (a.scene == b.scene)
        + WEIGHTS["relations"] * rel
    )


def grade(similarity: float) -> int:
    """Relevance grade 0..3 from a similarity."""
    return sum(similarity >= t for t in GRADE_THRESHOLDS)


def graded_relevance(
    scenes: Mapping[str, Scene], queries: Sequence[str], references: Sequence[str]
) -> dict[str, dict[str, int]]:
    """{query id: {reference id: grade}} for every (query, reference) pair."""
    return {
        q: {r: grade(scene_similarity(scenes[q], scenes[r])) for r in references} for q in queries
    }
