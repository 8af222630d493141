"""One tiny scenes dataset per test session: generating it takes about a second."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest


def tree_digest(root: Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def digest_of():
    """``tree_digest`` as a fixture, so test modules need no relative import."""
    return tree_digest


@pytest.fixture(scope="session")
def tiny(tiny_scenes_run) -> tuple[Path, dict, str]:
    """(directory, manifest, digest) of the session's tiny scenes (size=tiny, seed=0); the
    digest is taken when this fixture is first used, so a test that finds the tree changed
    since has caught some test (or reader) writing into the data."""
    out, manifest = tiny_scenes_run
    return out, manifest, tree_digest(out)
