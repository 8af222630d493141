"""Reading back what capbench cached (tf-idf models, features, captions, scores, tokenizers, the
pretrained scenes trunk, Arrow tables, splits).

Every cache file is written atomically (``capbench.atomic``), so a crash leaves none half
written; but a file can still be damaged after the fact (a full disk, a copy cut short, another
program). A cache entry is derived data that capbench can always compute again, so a damaged
one must not fail the row that reads it with an error from the reader's depths (``BadZipFile``,
a bare ``EOFError``): it is a miss. The entry's files are deleted with a warning naming them, and
the caller computes and writes it again. (Trained models are not read here: their checkpoints
cost hours and are reported, named, by ``capbench.methods.checkpoint_kind``.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

log = logging.getLogger("capbench.cache")

T = TypeVar("T")


def read_cached(files: Path | Sequence[Path], read: Callable[[], T]) -> T | None:
    """``read()`` when every file of the entry exists and it reads them back; ``None`` (a miss)
    when one is missing, and also when ``read`` fails: then the entry's files are deleted with a
    warning, so the caller's recompute writes them anew. ``read`` may also raise on content it
    does not accept (a wrong type, a missing key): that is a damaged entry too."""
    paths = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    if not all(p.is_file() for p in paths):
        return None
    try:
        return read()
    except Exception as err:  # a damaged file raises nearly anything (EOFError, BadZipFile, ...)
        names = ", ".join(str(p) for p in paths)
        log.warning(
            "capbench: damaged cache entry %s (%s: %s); deleting it, it will be computed again",
            names,
            type(err).__name__,
            err,
        )
        for p in paths:
            p.unlink(missing_ok=True)
        return None


def json_object(path: Path) -> dict:
    """The JSON object in ``path`` (a cache entry's reader: anything else is a damaged entry)."""
    import json

    value = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, found {type(value).__name__}")
    return value
