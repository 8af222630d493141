"""File-level helpers every writer shares: images as real-format JPEGs, JSON and line files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

JPEG_QUALITY = 90


def save_jpeg(image: Image.Image, path: Path) -> None:
    """Save as an RGB JPEG (quality 90): transparency composited over white, grey/palette to RGB.

    Real datasets ship JPEGs; writing every source image (grayscale, RGBA, palette) through this
    keeps fixtures and scenes byte-compatible with what the readers meet on real disks.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    image.convert("RGB").save(path, "JPEG", quality=JPEG_QUALITY)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def write_lines(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by capbench"


def savemat_deterministic(path: Path, mdict: dict[str, Any]) -> None:
    """``scipy.io.savemat`` without the creation time it stamps into the 116-byte header, so the
    same records always give the same bytes (the scenes dataset promises same seed, same bytes)."""
    import scipy.io

    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, mdict)
    raw = bytearray(path.read_bytes())
    raw[:116] = _MAT_HEADER.ljust(116, b" ")
    path.write_bytes(bytes(raw))
