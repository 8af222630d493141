"""METEOR between caption sets: Gordo & Larlus's Table 1 row "Human captions: METEOR".

The paper scores two images by a many-to-many match kernel over their captions with METEOR as
the base similarity. Our reading (the paper gives no formula): the mean over every caption pair
(a in A, b in B) of METEOR, symmetrised as (M(a -> b) + M(b -> a)) / 2 because METEOR weighs
recall over precision (``symmetric=False`` keeps M(b | reference a) only). METEOR 1.5 is the jar
``pycocoevalcap`` ships, with its English paraphrase table, run by one Java process for every
segment: each distinct (reference, hypothesis) pair is scored once.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

JAVA_MISSING = (
    "METEOR runs on Java: install a runtime (Debian: apt-get install default-jre-headless)"
)


def require_java() -> None:
    if shutil.which("java") is None:
        raise RuntimeError(JAVA_MISSING)


class MeteorScorer:
    """Sentence-level METEOR 1.5 (``pycocoevalcap.meteor``), many segments per Java call."""

    def __init__(self, chunk: int = 5_000) -> None:
        require_java()
        from pycocoevalcap.meteor.meteor import Meteor

        self._meteor = Meteor()
        self.chunk = chunk

    @staticmethod
    def _clean(text: str) -> str:
        # the wire format separates fields by "|||" and ends a segment at a newline
        return " ".join(text.replace("|||", " ").split()) or "."

    def score(self, pairs: Sequence[tuple[str, str]], progress: bool = False) -> np.ndarray:
        """METEOR of each ``(reference, hypothesis)``, in order."""
        out = np.empty(len(pairs))
        starts = range(0, len(pairs), self.chunk)
        for s in tqdm(starts, desc="METEOR", unit="chunk", disable=not progress, leave=False):
            part = pairs[s : s + self.chunk]
            gts = {i: [self._clean(r)] for i, (r, _) in enumerate(part)}
            res = {i: [self._clean(h)] for i, (_, h) in enumerate(part)}
            _, scores = self._meteor.compute_score(gts, res)
            out[s : s + len(part)] = scores
        return out


def kernel_pairs(
    sets: Sequence[Sequence[str]], image_pairs: Iterable[tuple[int, int]], symmetric: bool = True
) -> list[tuple[str, str]]:
    """The distinct ``(reference, hypothesis)`` segments the kernel of ``image_pairs`` needs."""
    needed: set[tuple[str, str]] = set()
    for i, j in image_pairs:
        for a in sets[i]:
            for b in sets[j]:
                needed.add((a, b))
                if symmetric:
                    needed.add((b, a))
    return sorted(needed)


def match_kernel(
    sets: Sequence[Sequence[str]],
    image_pairs: Iterable[tuple[int, int]],
    scores: dict[tuple[str, str], float],
    symmetric: bool = True,
) -> dict[tuple[int, int], float]:
    """K(i, j) = mean over caption pairs of the (symmetrised) METEOR; an image without captions
    has similarity 0 to everything."""
    out: dict[tuple[int, int], float] = {}
    for i, j in image_pairs:
        vals = [
            (scores[(a, b)] + scores[(b, a)]) / 2 if symmetric else scores[(a, b)]
            for a in sets[i]
            for b in sets[j]
        ]
        out[(i, j)] = float(np.mean(vals)) if vals else 0.0
    return out
