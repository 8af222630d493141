"""Graded-relevance retrieval benchmarks (rPascal / rImageNet style, Mopuri & Babu 2017).

Two layouts (``layout="auto"`` picks by the files present):

``capbench`` (ours, documented in ``data_cards/graded_retrieval.md``)::

    benchmark.json  {"format": "capbench-graded-retrieval", "version": 1,
                     "images": [{"id": "...", "file": "images/x.jpg", "captions": [...]?}],
                     "queries": ["<image id>", ...],
                     "relevance": {"<query id>": {"<image id>": 0..3}}}
    images/...

``median_annot`` (the original rPascal / rImageNet ``Databases.zip`` layout, established from the
authors' ``eval_retrieval_copy2.m`` and ``siamese_data_prep.py``)::

    Queries/<name>.jpg          the 50 queries; query i is the i-th file in sorted order
    References/<name>.jpg       the database (it contains the queries too)
    Reference_Lists/<query stem>_refs.mat   "refNames": the judged references of that query
                                (a char matrix for rPascal, a cell array for rImageNet)
    MedianAnnot.mat             "medAnnot": a cell array, one vector per query, aligned with
                                its refNames, holding the median grade 0..3

Records: split ``"query"`` (with ``meta["relevance"] = {reference id: grade}``) or
``"reference"``; ``split=None`` gives both. A query is not its own reference: in the
``median_annot`` layout the copy of a query inside ``References/`` is left out of the database,
as the authors' evaluation drops the query from its own ranking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from capbench.data.errors import DatasetFormatError
from capbench.data.records import CaptionedImage
from capbench.data.sources import READERS
from capbench.data.sources._common import (
    FileListing,
    ReadResult,
    keep_image,
    load_json,
    load_mat,
    require_dir,
    require_key,
)

FORMAT = "capbench-graded-retrieval"
VERSION = 1
MAX_GRADE = 3
SPLITS = ("query", "reference")
_IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff"}


def _check_grade(value: Any, path: Path, qid: str, rid: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise DatasetFormatError(path, f"grade for {rid!r} must be an integer 0..{MAX_GRADE}", qid)
    if value != int(value) or not 0 <= int(value) <= MAX_GRADE:
        raise DatasetFormatError(path, f"grade {value!r} for {rid!r} outside 0..{MAX_GRADE}", qid)
    return int(value)


def _keep(split: str | None, record_split: str) -> bool:
    return split is None or split == record_split


def read_benchmark_json(root: Path, split: str | None, allow_missing_images: bool) -> ReadResult:
    path = root / "benchmark.json"
    data = load_json(path)
    if require_key(data, "format", path) != FORMAT:
        raise DatasetFormatError(path, f"'format' must be {FORMAT!r}, got {data['format']!r}")
    if require_key(data, "version", path) != VERSION:
        raise DatasetFormatError(
            path, f"unsupported version {data['version']!r}; this reader reads {VERSION}"
        )
    files: dict[str, dict[str, Any]] = {}
    for pos, entry in enumerate(require_key(data, "images", path, kind=list)):
        image_id = str(require_key(entry, "id", path, f"images[{pos}]", kind=(int, str)))
        require_key(entry, "file", path, image_id, kind=str)
        if image_id in files:
            raise DatasetFormatError(path, "duplicate image id", image_id)
        files[image_id] = entry
    queries = [str(q) for q in require_key(data, "queries", path, kind=list)]
    relevance = require_key(data, "relevance", path)
    if not isinstance(relevance, dict):
        raise DatasetFormatError(
            path, "'relevance' must be an object {query id: {image id: grade}}"
        )
    query_set = set(queries)
    for qid in queries:
        if qid not in files:
            raise DatasetFormatError(path, "query is not in 'images'", qid)
        if qid not in relevance:
            raise DatasetFormatError(path, "query has no 'relevance' entry", qid)
    grades: dict[str, dict[str, int]] = {}
    for qid, judged in relevance.items():
        if qid not in query_set:
            raise DatasetFormatError(path, "'relevance' entry for an id not in 'queries'", qid)
        if not isinstance(judged, dict):
            raise DatasetFormatError(path, "relevance must map image ids to grades", qid)
        for rid in judged:
            if rid not in files or rid in query_set:
                raise DatasetFormatError(
                    path, f"judged image {rid!r} is not a reference image", qid
                )
        grades[qid] = {rid: _check_grade(g, path, qid, rid) for rid, g in judged.items()}

    result = ReadResult()
    listing = FileListing()  # one folder listing instead of a stat per image
    for image_id, entry in files.items():
        record_split = "query" if image_id in query_set else "reference"
        if not _keep(split, record_split):
            continue
        image_path = root / str(entry["file"])
        if not keep_image(result, image_path, image_id, path, allow_missing_images, listing):
            continue
        captions = entry.get("captions", [])
        if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
            raise DatasetFormatError(path, "'captions' must be a list of strings", image_id)
        meta = {"relevance": grades[image_id]} if record_split == "query" else {}
        result.append(
            CaptionedImage(
                image_id=image_id,
                image_path=str(image_path),
                split=record_split,
                captions=list(captions),
                source="graded_retrieval",
                meta=meta,
            )
        )
    return result


def _strings(value: Any) -> list[str]:
    """refNames as a list of str: char matrix rows, a cell array of str, or one name."""
    arr = np.atleast_1d(np.asarray(value, dtype=object)).ravel()
    out = []
    for item in arr:
        while isinstance(item, np.ndarray):  # nested cells: refname[p][0][0] in the authors' code
            item = item.ravel()[0] if item.size else ""
        out.append(str(item).strip())
    return out


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in require_dir(folder).iterdir() if p.suffix.lower() in _IMAGE_EXTS)


def read_median_annot(root: Path, split: str | None, allow_missing_images: bool) -> ReadResult:
    annot_path = root / "MedianAnnot.mat"
    med = np.atleast_1d(
        np.asarray(require_key(load_mat(annot_path), "medAnnot", annot_path), dtype=object)
    )
    med = med.ravel()
    queries = _image_files(root / "Queries")
    if len(med) != len(queries):
        raise DatasetFormatError(
            annot_path,
            f"'medAnnot' has {len(med)} cells, expected one per query ({len(queries)} in Queries/)",
        )
    references = {p.name: p for p in _image_files(root / "References")}
    query_names = {p.name for p in queries}
    result = ReadResult()
    for qpath, cell in zip(queries, med):
        qid = qpath.stem
        refs_path = root / "Reference_Lists" / f"{qid}_refs.mat"
        names = _strings(require_key(load_mat(refs_path), "refNames", refs_path, qid))
        scores = np.atleast_1d(np.asarray(cell)).ravel()
        if len(scores) != len(names):
            raise DatasetFormatError(
                annot_path,
                f"medAnnot cell has {len(scores)} grades but {refs_path.name} lists {len(names)}",
                qid,
            )
        relevance = {}
        for name, score in zip(names, scores):
            if name == qpath.name:  # the query itself is dropped from its own ranking
                continue
            if name not in references:
                if not allow_missing_images:
                    raise DatasetFormatError(
                        refs_path, f"reference {name!r} not in References/", qid
                    )
                result.skipped["missing_image"] += 1
                continue
            relevance[Path(name).stem] = _check_grade(score, annot_path, qid, name)
        if _keep(split, "query"):
            result.append(
                CaptionedImage(
                    image_id=qid,
                    image_path=str(qpath),
                    split="query",
                    source="graded_retrieval",
                    meta={"relevance": relevance},
                )
            )
    if _keep(split, "reference"):
        for name, path in references.items():
            if name not in query_names:
                result.append(
                    CaptionedImage(
                        image_id=path.stem,
                        image_path=str(path),
                        split="reference",
                        source="graded_retrieval",
                    )
                )
    return result


@READERS.register("graded_retrieval")
def read_graded_retrieval(
    root: Path,
    split: str | None = None,
    *,
    allow_missing_images: bool = False,
    layout: str = "auto",
) -> ReadResult:
    """Read a graded-relevance benchmark; ``split`` is ``"query"``, ``"reference"`` or None."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS} or None")
    root = Path(root)
    if (
        not (root / "benchmark.json").is_file()
        and (root / "graded_retrieval" / "benchmark.json").is_file()
    ):
        root = root / "graded_retrieval"
    if layout == "auto":
        layout = "median_annot" if (root / "MedianAnnot.mat").is_file() else "capbench"
    if layout == "capbench":
        return read_benchmark_json(root, split, allow_missing_images)
    if layout == "median_annot":
        return read_median_annot(root, split, allow_missing_images)
    raise ValueError(f"unknown layout {layout!r}; expected 'auto', 'capbench' or 'median_annot'")
