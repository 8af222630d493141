"""The query index of a trained model (``capbench query``): database embeddings, ids and paths,
the checkpoint that embeds a new query image, its image sizes, and the tf-idf model that turns
+word/-word modifiers into text vectors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from capbench.atomic import atomic_path, atomic_write_text
from capbench.data.records import CaptionedImage

INDEX_FILE = "index.json"
EMBEDDINGS_FILE = "embeddings.npy"
TFIDF_FILE = "tfidf.joblib"
FORMAT = "capbench-gordo-index"


@dataclass
class Index:
    ids: list[str]
    paths: list[str]
    embeddings: np.ndarray
    checkpoint: str | None
    tfidf: Any
    longest_side: int | None
    pad_to_square: bool


def save_index(
    out_dir: Path,
    records: Sequence[CaptionedImage],
    embeddings: np.ndarray,
    checkpoint: str | Path | None,
    tfidf: Any,
    longest_side: int | None,
    pad_to_square: bool,
) -> Path:
    """Write an index (files written atomically, ``index.json`` last)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(records) != len(embeddings):
        raise ValueError(f"{len(records)} records but {len(embeddings)} embeddings")
    with atomic_path(out_dir / EMBEDDINGS_FILE, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(embeddings, dtype=np.float32))
    tfidf.save(out_dir / TFIDF_FILE)
    meta = {
        "format": FORMAT,
        "version": 1,
        "ids": [r.image_id for r in records],
        "paths": [r.image_path for r in records],
        "checkpoint": str(Path(checkpoint).resolve()) if checkpoint else None,
        "tfidf": TFIDF_FILE,
        "embeddings": EMBEDDINGS_FILE,
        "image_config": {"longest_side": longest_side, "pad_to_square": pad_to_square},
    }
    atomic_write_text(out_dir / INDEX_FILE, json.dumps(meta))
    return out_dir


class IndexFileError(ValueError):
    """A query index whose files exist but cannot be read as one (damaged, or not an index):
    the message names the file, so ``capbench query`` can print it as one line."""


def load_index(index_dir: Path) -> Index:
    """Read an index written by :func:`save_index`; errors name the file and what is wrong
    (``FileNotFoundError`` for a missing file, :class:`IndexFileError` for a damaged one)."""
    from capbench.data.tfidf import StemmedTfidf
    from capbench.methods.semantic_retrieval.config import ModelConfig

    index_dir = Path(index_dir)
    meta_path = index_dir / INDEX_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{meta_path}: no index here (build one with a gordo2017 row or "
            "`capbench query --build-index`)"
        )
    meta = _read_meta(meta_path)
    emb_path = index_dir / meta["embeddings"]
    if not emb_path.is_file():
        raise FileNotFoundError(f"{emb_path}: the index's embeddings file is missing")
    try:
        emb = np.load(emb_path)
    except (ValueError, OSError, EOFError) as err:
        raise IndexFileError(f"{emb_path}: not a readable .npy array ({err})") from None
    if emb.ndim != 2 or emb.shape[0] != len(meta["ids"]):
        raise IndexFileError(
            f"{emb_path}: expected {len(meta['ids'])} embeddings (one row per id of "
            f"{meta_path.name}), found an array of shape {emb.shape}"
        )
    tfidf_path = index_dir / meta["tfidf"]
    if not tfidf_path.is_file():
        raise FileNotFoundError(f"{tfidf_path}: the index's tf-idf model is missing")
    try:
        tfidf = StemmedTfidf.load(tfidf_path)
    # a damaged pickle raises nearly anything (UnpicklingError, KeyError, ...)
    except Exception as err:
        raise IndexFileError(f"{tfidf_path}: not a readable tf-idf model ({err})") from None
    image = dict(meta.get("image_config") or {})
    defaults = ModelConfig()
    return Index(
        ids=list(meta["ids"]),
        paths=list(meta["paths"]),
        embeddings=emb,
        checkpoint=meta.get("checkpoint"),
        tfidf=tfidf,
        longest_side=image.get("longest_side", defaults.longest_side),
        pad_to_square=bool(image.get("pad_to_square", defaults.pad_to_square)),
    )


def _read_meta(path: Path) -> dict[str, Any]:
    """``index.json``, checked for the keys :func:`load_index` reads."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise IndexFileError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise IndexFileError(f"{path}: not a {FORMAT} file")
    for key, kind in (("ids", list), ("paths", list), ("embeddings", str), ("tfidf", str)):
        if not isinstance(meta.get(key), kind):
            raise IndexFileError(f"{path}: {key!r} must be a {kind.__name__}")
    if len(meta["paths"]) != len(meta["ids"]):
        raise IndexFileError(f"{path}: {len(meta['ids'])} ids but {len(meta['paths'])} paths")
    return meta
