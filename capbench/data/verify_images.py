"""Decode every image a dataset lists and report the ones that fail: ``data check --verify-images``.

A reader only checks that each image file exists; a zero-byte file or a truncated download
passes that and then fails (or is skipped as corrupt) in the middle of training. This decodes
each distinct file fully with ``capbench.data.images.load_rgb``, the decoder training uses, so
"verified" means "training can read it".

Decoding runs on a thread pool: Pillow's decoders release the GIL while they work, and threads
start at once, with nothing to pickle and no module to re-import per worker.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tqdm import tqdm

DEFAULT_WORKERS = 2


@dataclass
class ImageCheck:
    """What decoding found: how many distinct files were decoded and which failed, and why
    (``(path, reason)`` in the order the dataset lists them)."""

    checked: int
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def decode_error(path: str) -> str | None:
    """``None`` when ``path`` decodes fully, else why it does not (one line)."""
    from capbench.data.images import CorruptImageError, load_rgb

    try:
        if os.path.getsize(path) == 0:  # Pillow's "cannot identify image file" hides this
            return "empty file (0 bytes)"
        load_rgb(path)
    except CorruptImageError as err:
        return err.reason
    except OSError as err:  # absent or unreadable file (permissions, I/O error)
        return f"{type(err).__name__}: {err}"
    return None


def verify_images(
    paths: Iterable[str], workers: int = DEFAULT_WORKERS, progress: bool | None = None
) -> ImageCheck:
    """Decode every distinct path on ``workers`` threads; ``progress`` shows a tqdm bar on
    stderr (``None``: only when stderr is a terminal)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    import capbench.data.images  # noqa: F401  (torch comes with it: import once, not per thread)

    unique = list(dict.fromkeys(str(p) for p in paths))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = tqdm(
            pool.map(decode_error, unique),
            total=len(unique),
            desc="decoding images",
            unit="img",
            disable=None if progress is None else not progress,
        )
        failures = [(p, r) for p, r in zip(unique, reasons) if r is not None]
    return ImageCheck(checked=len(unique), failures=failures)
