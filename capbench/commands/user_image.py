"""The image a user names on the command line (``capbench caption``, ``query``, ``explain``).

A wrong path or a file that is not an image is the user's to fix: the command stops with one
line naming the file and what is wrong with it, before any checkpoint is loaded, instead of a
traceback from deep inside the model code.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def readable_image(path: str | Path, command: str) -> Image.Image:
    """``path`` decoded to RGB, or ``SystemExit`` with ``capbench <command>: ...`` naming it."""
    from capbench.data.images import CorruptImageError, load_rgb

    try:
        return load_rgb(path)
    except FileNotFoundError:
        raise SystemExit(f"capbench {command}: no such image file: {path}") from None
    except CorruptImageError as err:
        raise SystemExit(f"capbench {command}: {err}") from None
