"""A dataset's fingerprint for run records: what exactly was on disk when a number was produced.

Stable across runs and machines: relative POSIX paths, sorted, no mtimes or absolute roots.
Images are counted and sized but not hashed (hundreds of thousands of files); annotation files
are hashed with SHA-256, streamed. Files larger than ``FULL_HASH_LIMIT`` are hashed on their
size plus first and last ``PARTIAL_CHUNK`` bytes (marked ``partial``), so fingerprinting Visual
Genome's 700 MB JSON stays cheap and still changes when the file does in practice.

Digests are remembered for the life of the process, keyed by a file's path, size and
modification time: every row of a run fingerprints the datasets it reads, and VOC's ten thousand
XML files took seconds a row to hash again. As git does with its index, a file modified in the
last ``SETTLED_NS`` is not remembered: a same-size rewrite within one timestamp tick would
otherwise keep its old digest.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

ANNOTATION_SUFFIXES = {
    ".json",
    ".jsonl",
    ".txt",
    ".mat",
    ".token",
    ".xml",
    ".csv",
    ".tsv",
    ".parquet",
}
FULL_HASH_LIMIT = 256 * 2**20
PARTIAL_CHUNK = 16 * 2**20
_BLOCK = 2**20
MAX_LISTED = 200  # per-file hashes listed in the record; the combined hash covers them all


def _files(root: Path) -> list[tuple[str, Path]]:
    """(relative posix path, path) of every file under ``root``, hidden entries skipped."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith("."):
                path = Path(dirpath) / name
                out.append((path.relative_to(root).as_posix(), path))
    return sorted(out)


SETTLED_NS = 2_000_000_000  # a file this long unmodified may be remembered
# (absolute path, size, mtime in ns, full) -> (hex digest, partial?)
_DIGESTS: dict[tuple[str, int, int, bool], tuple[str, bool]] = {}


def file_sha256(path: Path, full: bool = False) -> tuple[str, bool]:
    """(hex digest, partial?) of a file, streamed; unless ``full``, big files hash size + head + tail.

    Remembered per process while the file's size and modification time stay the same."""
    stat = path.stat()
    key = (str(path.absolute()), stat.st_size, stat.st_mtime_ns, full)
    if key in _DIGESTS:
        return _DIGESTS[key]
    result = _sha256(path, stat.st_size, full)
    if time.time_ns() - stat.st_mtime_ns > SETTLED_NS:
        _DIGESTS[key] = result
    return result


def _sha256(path: Path, size: int, full: bool) -> tuple[str, bool]:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        if full or size <= FULL_HASH_LIMIT:
            while block := fh.read(_BLOCK):
                digest.update(block)
            return digest.hexdigest(), False
        digest.update(str(size).encode())
        digest.update(fh.read(PARTIAL_CHUNK))
        fh.seek(size - PARTIAL_CHUNK)
        digest.update(fh.read(PARTIAL_CHUNK))
    return digest.hexdigest(), True


def dataset_fingerprint(root: str | Path) -> dict[str, Any]:
    """Counts, sizes and hashes of the dataset at ``root`` plus one combined ``sha256``."""
    root = Path(root)
    combined = hashlib.sha256()
    annotations: dict[str, str] = {}
    partial: list[str] = []
    total_bytes = 0
    files = _files(root)
    for rel, path in files:
        size = path.stat().st_size
        total_bytes += size
        line = f"{rel}\t{size}"
        if path.suffix.lower() in ANNOTATION_SUFFIXES:
            digest, is_partial = file_sha256(path)
            annotations[rel] = digest
            if is_partial:
                partial.append(rel)
            line += f"\t{digest}"
        combined.update(line.encode("utf-8") + b"\n")
    listed = dict(list(annotations.items())[:MAX_LISTED])
    return {
        "files": len(files),
        "bytes": total_bytes,
        "annotation_files": len(annotations),
        "annotations": listed,
        "annotations_truncated": len(annotations) > len(listed),
        "partial_hashes": partial,
        "sha256": combined.hexdigest(),
    }
