"""The user-study file format (Gordo & Larlus, section 3): image triplets with per-annotator votes.

A triplet is a query image and two candidate images; each annotator says which candidate is
semantically closer to the query, ``"a"``, ``"b"`` or ``"neither"``. Keeping per-annotator votes
(not only counts) is what allows the leave-one-user-out inter-annotator agreement.

File layout (JSON, documented in data_cards/scenes.md)::

    {"format": "capbench-user-study", "version": 1,
     "dataset": "visual_genome", "split": "test",
     "annotators": ["u00", "u01", ...],
     "triplets": [{"query": "<image_id>", "a": "<image_id>", "b": "<image_id>",
                   "votes": {"u00": "a", "u03": "neither", ...}}, ...]}
"""

from __future__ import annotations

from dataclasses import dataclass, field

CHOICES = ("a", "b", "neither")


@dataclass(frozen=True)
class Triplet:
    """One query with two candidates and the annotators' votes (annotator id -> choice)."""

    query: str
    a: str
    b: str
    votes: dict[str, str] = field(default_factory=dict)

    @property
    def counts(self) -> tuple[int, int, int]:
        """(o1, o2, o3): votes for a, for b, and for neither."""
        values = list(self.votes.values())
        return (values.count("a"), values.count("b"), values.count("neither"))
