"""On-disk feature cache: the same embeddings are never computed twice.

Entries live under ``capbench.paths.cache_root()/features/<sha256>.pt``; the key hashes the
model checkpoint hash, the preprocessing description, the split and the data fingerprint, so a
change in any of them is a new entry. Writes go to a temp file in the same folder and are renamed
into place, so a crash or a concurrent writer never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from capbench import paths
from capbench.atomic import atomic_path
from capbench.cache_entry import read_cached
from capbench.eval.extract import Embeddings

REQUIRED_PARTS = ("checkpoint", "preprocessing", "split", "data_fingerprint")


def file_sha256(path: str | os.PathLike[str], block: int = 1 << 20) -> str:
    """Content hash of a checkpoint file (the ``checkpoint`` key part)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def cache_key(key_parts: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the key parts (all four required parts must be present)."""
    missing = [p for p in REQUIRED_PARTS if p not in key_parts]
    if missing:
        raise ValueError(f"feature cache key lacks {missing}; required: {list(REQUIRED_PARTS)}")
    text = json.dumps(dict(key_parts), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _to_payload(value: Any, key_parts: Mapping[str, Any]) -> dict[str, Any]:
    meta = json.dumps(dict(key_parts), sort_keys=True, default=str)
    if isinstance(value, Embeddings):
        return {"kind": "embeddings", "ids": list(value.ids), "emb": value.emb.cpu(),
                "n_scored": int(value.n_scored), "key": meta}  # fmt: skip
    return {"kind": "object", "value": value, "key": meta}


def _from_payload(payload: dict[str, Any]) -> Any:
    if payload["kind"] == "embeddings":
        return Embeddings(ids=payload["ids"], emb=payload["emb"], n_scored=payload["n_scored"])
    return payload["value"]


class FeatureCache:
    """Key-addressed store of embeddings (or any tensors/containers ``torch.load`` accepts safely)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else paths.cache_root() / "features"

    def path(self, key_parts: Mapping[str, Any]) -> Path:
        return self.root / f"{cache_key(key_parts)}.pt"

    def get(self, key_parts: Mapping[str, Any]) -> Any | None:
        p = self.path(key_parts)  # a damaged entry is a miss: recomputed and written again
        return read_cached(
            p, lambda: _from_payload(torch.load(p, map_location="cpu", weights_only=True))
        )

    def put(self, key_parts: Mapping[str, Any], value: Any) -> Path:
        p = self.path(key_parts)
        with atomic_path(p) as tmp:
            torch.save(_to_payload(value, key_parts), tmp)
        return p

    def get_or_compute(self, key_parts: Mapping[str, Any], compute_fn: Callable[[], Any]) -> Any:
        """Cached value for the key, computing and storing it on a miss."""
        hit = self.get(key_parts)
        if hit is not None:
            return hit
        value = compute_fn()
        self.put(key_parts, value)
        return value


def get_or_compute(key_parts: Mapping[str, Any], compute_fn: Callable[[], Any]) -> Any:
    """Module-level shortcut using the default cache root."""
    return FeatureCache().get_or_compute(key_parts, compute_fn)
