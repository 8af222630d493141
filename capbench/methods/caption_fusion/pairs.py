"""Training pairs as the official code's ``siamese_data_prep.py`` builds them.

For each training query, in query order: every judged reference with a grade above 0 is a
positive pair labelled with its grade, every zero-grade reference a negative labelled 0; when a
query has more positives than negatives ("notskewed"), random images from outside its judged
list are added as negatives until the two counts match. The query itself is never its own
reference (the reader drops it). The code then shuffles the pairs before Keras' validation
split (:func:`shuffle_pairs`, :func:`split_validation`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from capbench.methods.caption_fusion.config import PairsConfig


@dataclass(frozen=True)
class Pair:
    """(query image id, other image id, graded relevance 0..3)."""

    query: str
    other: str
    grade: int


def build_pairs(
    relevance: Mapping[str, Mapping[str, int]],
    queries: Sequence[str],
    all_images: Sequence[str],
    cfg: PairsConfig,
    seed: int,
) -> list[Pair]:
    """Pairs of ``queries`` (in order) from their judged lists ``relevance[q]``; outside
    negatives are drawn from ``all_images`` minus the query and its list, seeded per query."""
    pairs: list[Pair] = []
    for qi, q in enumerate(queries):
        if q not in relevance:
            raise KeyError(f"query {q!r} has no relevance list in the benchmark")
        rng = np.random.default_rng([seed, qi])
        judged = sorted(relevance[q].items())
        if cfg.max_references is not None and len(judged) > cfg.max_references:
            picks = rng.choice(len(judged), cfg.max_references, replace=False)
            judged = [judged[i] for i in sorted(picks)]
        pos = [Pair(q, r, int(g)) for r, g in judged if g > 0]
        neg = [Pair(q, r, 0) for r, g in judged if g == 0]
        missing = len(pos) - len(neg)
        if cfg.balance_negatives and missing > 0:
            listed = set(relevance[q]) | {q}
            outside = [x for x in all_images if x not in listed]
            take = rng.choice(len(outside), min(missing, len(outside)), replace=False)
            neg += [Pair(q, outside[i], 0) for i in sorted(take)]
        pairs += pos + neg
    return pairs


def shuffle_pairs(pairs: Sequence[Pair], seed: int) -> list[Pair]:
    """The pairs in a seeded random order: the code's ``load_inputs`` shuffles the three
    arrays with one seed before ``fit``, so Keras' validation split is a random 10%, not the
    last queries' pairs."""
    order = np.random.default_rng([seed, 1234]).permutation(len(pairs))
    return [pairs[i] for i in order]


def _check_fraction(fraction: float) -> None:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"train.val_fraction must be in [0, 1), got {fraction}")


def split_validation(pairs: Sequence[Pair], fraction: float) -> tuple[list[Pair], list[Pair]]:
    """Keras ``validation_split``: the LAST ``fraction`` of the pairs, in the given order, is
    held out (Keras takes it before shuffling)."""
    _check_fraction(fraction)
    cut = int(len(pairs) * (1.0 - fraction))  # Keras: split_at = int(n * (1 - split))
    return list(pairs[:cut]), list(pairs[cut:])


def split_queries(
    queries: Sequence[str], fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """``train.val_split: queries``: a seeded ``fraction`` of the training queries (at least one
    when ``fraction`` > 0) held out with all their pairs, so the validation loss is that of
    queries the fusion never trained on."""
    _check_fraction(fraction)
    n_val = 0 if fraction == 0 else max(1, round(len(queries) * fraction))
    if n_val >= len(queries):
        raise ValueError(f"val_split 'queries' needs more than {n_val} training queries")
    held = set(np.random.default_rng([seed, 4321]).permutation(len(queries))[:n_val].tolist())
    return (
        [q for i, q in enumerate(queries) if i not in held],
        [q for i, q in enumerate(queries) if i in held],
    )
