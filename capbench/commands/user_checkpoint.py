"""The checkpoint a user names on the command line (``capbench caption``, ``explain``,
``query``): a file that is not the model the command loads stops it with one line saying what
the file holds instead, not a config error from deep in the load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

M = TypeVar("M")


def load_user_checkpoint(load: Callable[[Path], M], path: str | Path, command: str) -> M:
    """``load(path)``, or ``SystemExit`` with ``capbench <command>: ...`` naming the file."""
    from capbench.methods.checkpoint_kind import CheckpointKindError

    try:
        return load(Path(path))
    except CheckpointKindError as err:
        raise SystemExit(f"capbench {command}: {err}") from None
