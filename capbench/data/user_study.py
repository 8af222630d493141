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

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capbench.atomic import atomic_write_text
from capbench.data.errors import DatasetFormatError

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


FORMAT = "capbench-user-study"
VERSION = 1


@dataclass
class UserStudy:
    """A whole user-study file: which dataset split the image ids belong to, who voted, the triplets."""

    dataset: str
    split: str
    annotators: list[str]
    triplets: list[Triplet]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "dataset": self.dataset,
            "split": self.split,
            "annotators": list(self.annotators),
            "triplets": [
                {"query": t.query, "a": t.a, "b": t.b, "votes": dict(t.votes)}
                for t in self.triplets
            ],
        }


def _require(doc: dict, key: str, kind: type, path: Path, record: int | None = None) -> Any:
    where = "" if record is None else f"triplet {record}: "
    if key not in doc:
        raise DatasetFormatError(path, f"{where}missing key {key!r}", record)
    value = doc[key]
    if not isinstance(value, kind):
        raise DatasetFormatError(
            path, f"{where}{key!r} must be a {kind.__name__}, got {type(value).__name__}", record
        )
    return value


def read_user_study(path: str | Path) -> UserStudy:
    """Read and validate a user-study file; errors name the file and the triplet index."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(path, "missing user-study file: expected a JSON file at this path")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetFormatError(path, f"not valid JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DatasetFormatError(path, f'not a user-study file: expected "format": "{FORMAT}"')
    if doc.get("version") != VERSION:
        raise DatasetFormatError(
            path, f"unsupported version {doc.get('version')!r}, expected {VERSION}"
        )
    dataset = _require(doc, "dataset", str, path)
    split = _require(doc, "split", str, path)
    annotators = _require(doc, "annotators", list, path)
    if not all(isinstance(a, str) for a in annotators) or len(set(annotators)) != len(annotators):
        raise DatasetFormatError(path, "'annotators' must be a list of distinct strings")
    known = set(annotators)
    triplets = []
    for i, entry in enumerate(_require(doc, "triplets", list, path)):
        if not isinstance(entry, dict):
            raise DatasetFormatError(path, f"triplet {i}: must be an object", i)
        ids = [_require(entry, key, str, path, i) for key in ("query", "a", "b")]
        if len(set(ids)) != 3:
            raise DatasetFormatError(
                path, f"triplet {i}: query, a and b must be three different images", i
            )
        votes = _require(entry, "votes", dict, path, i)
        for user, choice in votes.items():
            if user not in known:
                raise DatasetFormatError(
                    path, f"triplet {i}: vote by unknown annotator {user!r}", i
                )
            if choice not in CHOICES:
                raise DatasetFormatError(
                    path,
                    f"triplet {i}: annotator {user!r} chose {choice!r}, expected one of {CHOICES}",
                    i,
                )
        triplets.append(Triplet(*ids, votes=dict(votes)))
    return UserStudy(dataset, split, list(annotators), triplets)


def write_user_study(
    path: str | Path, dataset: str, split: str, annotators: list[str], triplets: list[Triplet]
) -> Path:
    """Write a user-study file atomically (temp file + rename): a reader never sees half a file."""
    text = json.dumps(UserStudy(dataset, split, annotators, triplets).to_json(), indent=1) + "\n"
    return atomic_write_text(path, text)
