"""Write a graded-relevance retrieval benchmark in capbench's JSON layout (inverse of the
``capbench`` layout of ``sources/graded_retrieval.py``; see ``data_cards/graded_retrieval.md``).

Options: ``queries`` (image ids that are queries) and ``relevance`` ({query id: {reference id:
grade 0..3}}). Records give ``image_id`` and optional ``captions``; ``record.split`` is ignored
(membership in ``queries`` decides it). Images go to ``images/<image_id>.jpg``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from capbench.data.writers import BREAKERS, WRITERS, WritableImage
from capbench.data.writers._files import save_jpeg

FORMAT = "capbench-graded-retrieval"
VERSION = 1


@WRITERS.register("graded_retrieval")
def write_graded_retrieval(
    out: Path,
    items: Sequence[WritableImage],
    *,
    queries: Sequence[str],
    relevance: Mapping[str, Mapping[str, int]],
) -> Path:
    """Write ``benchmark.json`` and ``images/`` under ``out``; returns ``out``."""
    out = Path(out)
    ids = [item.record.image_id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("image ids must be unique")
    known, query_set = set(ids), set(queries)
    for qid in queries:
        if qid not in known or qid not in relevance:
            raise ValueError(f"query {qid!r} needs an image and a relevance entry")
    for qid, judged in relevance.items():
        if qid not in query_set:
            raise ValueError(f"relevance given for {qid!r}, which is not a query")
        for rid, grade in judged.items():
            if rid not in known or rid in query_set or grade not in (0, 1, 2, 3):
                raise ValueError(
                    f"query {qid!r}: {rid!r} must be a reference image with grade 0..3"
                )
    images = []
    for item in items:
        rec = item.record
        entry: dict = {"id": rec.image_id, "file": f"images/{rec.image_id}.jpg"}
        if rec.captions:
            entry["captions"] = list(rec.captions)
        save_jpeg(item.image, out / entry["file"])
        images.append(entry)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "images": images,
        "queries": list(queries),
        "relevance": {q: {r: int(g) for r, g in relevance[q].items()} for q in queries},
    }
    (out / "benchmark.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return out


@BREAKERS.register("graded_retrieval")
def break_graded_retrieval(root: Path) -> Path:
    """Give one judged pair the grade 7 (grades run 0..3)."""
    path = Path(root) / "benchmark.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    judged = doc["relevance"][doc["queries"][0]]
    judged[next(iter(judged))] = 7
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path
