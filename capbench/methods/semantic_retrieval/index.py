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


def load_index(index_dir: Path) -> Index:
    """Read an index written by :func:`save_index`; errors name the file and what is wrong."""
    from capbench.data.tfidf import StemmedTfidf
    from capbench.methods.semantic_retrieval.config import ModelConfig

    index_dir = Path(index_dir)
    meta_path = index_dir / INDEX_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{meta_path}: no index here (build one with a gordo2017 row or "
            "`capbench query --build-index`)"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path}: not a {FORMAT} file")
    emb = np.load(index_dir / meta["embeddings"])
    if emb.shape[0] != len(meta["ids"]):
        raise ValueError(f"{meta_path}: {len(meta['ids'])} ids but {emb.shape[0]} embeddings")
    image = dict(meta.get("image_config") or {})
    defaults = ModelConfig()
    return Index(
        ids=list(meta["ids"]),
        paths=list(meta["paths"]),
        embeddings=emb,
        checkpoint=meta.get("checkpoint"),
        tfidf=StemmedTfidf.load(index_dir / meta["tfidf"]),
        longest_side=image.get("longest_side", defaults.longest_side),
        pad_to_square=bool(image.get("pad_to_square", defaults.pad_to_square)),
    )
