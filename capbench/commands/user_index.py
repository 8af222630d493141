"""The query index a user names on the command line (``capbench query``, ``explain``): a missing
or damaged index stops the command with one line naming the file, not a traceback from numpy,
json or joblib."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capbench.methods.semantic_retrieval.index import Index


def load_user_index(path: str | Path, command: str) -> Index:
    """The index at ``path``, or ``SystemExit`` with ``capbench <command>: ...`` naming the file."""
    from capbench.methods.semantic_retrieval.index import IndexFileError, load_index

    try:
        return load_index(Path(path))
    except (FileNotFoundError, IndexFileError) as err:
        raise SystemExit(f"capbench {command}: {err}") from None
