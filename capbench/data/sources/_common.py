"""Helpers several readers share: validated file access, strict text decoding, split and
caption checks, and the missing-image policy. Readers import these from here, never from each
other.

Readers fail loudly by default (``DatasetFormatError`` naming file, record and expectation);
``allow_missing_images=True`` turns an absent image into a counted warning instead. Text files
are UTF-8 (a leading byte-order mark is an encoding signature, not content, and is dropped);
anything else is an error naming the file and line, never decoded into replacement characters.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from capbench.data.errors import DatasetFormatError
from capbench.data.records import CaptionedImage

log = logging.getLogger("capbench.data")


class ReadResult(list[CaptionedImage]):
    """The records a reader returns, plus what it skipped on the way (for ``data check``).

    ``skipped`` counts reasons, e.g. ``{"missing_image": 3, "phantom_row": 5}``.
    """

    def __init__(self, records: list[CaptionedImage] | None = None) -> None:
        super().__init__(records or [])
        self.skipped: Counter[str] = Counter()

    @property
    def missing_images(self) -> int:
        return self.skipped["missing_image"]

    def drop_repeats(self, reason: str, path: Path, ids: list[Any], what: str) -> None:
        """Count entries dropped as exact repeats of earlier ones, and say so once, with the
        count and the first ids: a repair is never silent."""
        if not ids:
            return
        self.skipped[reason] += len(ids)
        shown = ", ".join(map(str, ids[:5])) + (", ..." if len(ids) > 5 else "")
        log.warning("%s: dropped %d %s (first: %s)", path, len(ids), what, shown)


def require_file(path: Path, what: str = "file") -> Path:
    """Return ``path`` if it exists, else raise naming it."""
    if not path.is_file():
        raise DatasetFormatError(path, f"missing {what}: expected a file at this path")
    return path


def require_dir(path: Path, what: str = "directory") -> Path:
    if not path.is_dir():
        raise DatasetFormatError(path, f"missing {what}: expected a directory at this path")
    return path


def _not_utf8(path: Path, data: bytes, err: UnicodeDecodeError) -> DatasetFormatError:
    """The error for a file that is not UTF-8: file, line and the offending bytes."""
    line = data.count(b"\n", 0, err.start) + 1
    column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
    bad = data[err.start : err.end].hex(" ")
    return DatasetFormatError(
        path,
        f"not UTF-8 text: byte(s) {bad} at line {line}, column {column} ({err.reason}); "
        "expected UTF-8 (re-encode the file, e.g. from Latin-1)",
        f"line {line}",
    )


def read_text(path: Path) -> str:
    """A whole text file decoded as strict UTF-8, a leading byte-order mark dropped."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _not_utf8(path, data, err) from None


def load_json(path: Path) -> Any:
    """Parse a JSON file; bad JSON or text that is not UTF-8 is a DatasetFormatError naming
    the file and line (``json`` alone names neither for undecodable bytes)."""
    require_file(path, "JSON file")
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DatasetFormatError(
            path, f"not valid JSON ({err.msg} at line {err.lineno})", f"line {err.lineno}"
        ) from None


_KIND_NAMES = {
    str: "a string",
    int: "an integer",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def is_json_int(value: Any) -> bool:
    """A JSON integer (JSON true/false are Python bools, which isinstance() counts as int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_json_number(value: Any) -> bool:
    """A JSON number, integer or not (not true/false)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def require_key(
    obj: dict,
    key: str,
    path: Path,
    record: str | int | None = None,
    kind: type | tuple[type, ...] | None = None,
) -> Any:
    """``obj[key]``, or a DatasetFormatError naming the file, the record and the missing key.

    With ``kind``, a value of another JSON type (``null`` where a file name belongs, a string
    where a list does) is reported here too, instead of as a ``TypeError`` from the first line
    that uses it, which would name neither the file nor the record."""
    if not isinstance(obj, dict):
        raise DatasetFormatError(
            path, f"expected an object with key {key!r}, got {obj!r:.80}", record
        )
    if key not in obj:
        raise DatasetFormatError(path, f"missing key {key!r}", record)
    value = obj[key]
    if kind is not None:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # JSON true/false are Python bools, which isinstance() counts as int
        if isinstance(value, bool) or not isinstance(value, kinds):
            expected = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
            raise DatasetFormatError(path, f"{key!r} must be {expected}, got {value!r:.80}", record)
    return value


def read_lines(path: Path) -> list[str]:
    """Non-empty, stripped lines of a UTF-8 text file (tolerates CRLF, trailing blank lines and
    a byte-order mark, which Windows editors put before the first id)."""
    require_file(path)
    lines = io.StringIO(read_text(path), newline=None)  # \n, \r\n and \r, as open() splits
    return [line.strip() for line in lines if line.strip()]


def check_split(split: str | None, valid: tuple[str, ...], what: str) -> None:
    """Raise ValueError naming the valid splits when ``split`` is not one of them."""
    if split is not None and split not in valid:
        raise ValueError(f"unknown split {split!r} for {what}; valid: {', '.join(valid)}")


def caption_text(value: Any, path: Path, record: str | int) -> str:
    """A caption stripped of the trailing spaces/newlines real files carry; must be non-empty text."""
    if not isinstance(value, str) or not value.strip():
        raise DatasetFormatError(path, f"caption must be a non-empty string, got {value!r}", record)
    return value.strip()


def load_mat(path: Path) -> dict[str, Any]:
    """``scipy.io.loadmat(squeeze_me=True)``, with unreadable files reported by name.

    scipy is imported here, on first use, so readers of text formats do not pay for it.
    """
    import scipy.io

    require_file(path, ".mat file")
    try:
        return scipy.io.loadmat(path, squeeze_me=True)
    except Exception as err:  # scipy raises ValueError/TypeError/OSError on damaged files
        raise DatasetFormatError(path, f"not a readable MATLAB .mat file ({err})") from None


class FileListing:
    """Which files exist, answered from one directory listing per folder instead of one stat
    per image: a reader checks ~100k images, and listing their folder once is ~20x cheaper.

    Only for folders that do not change during a read (a dataset's image folders).
    """

    def __init__(self) -> None:
        self._folders: dict[str, frozenset[str]] = {}

    def _names(self, folder: str) -> frozenset[str]:
        names = self._folders.get(folder)
        if names is None:
            try:
                with os.scandir(folder) as entries:
                    names = frozenset(e.name for e in entries if e.is_file())
            except (FileNotFoundError, NotADirectoryError):
                names = frozenset()
            self._folders[folder] = names
        return names

    def has(self, folder: str, name: str) -> bool:
        """True if ``folder`` holds a file called ``name``."""
        return name in self._names(folder)

    def is_file(self, path: str | Path) -> bool:
        return self.has(*os.path.split(os.fspath(path)))


def keep_image(
    result: ReadResult,
    image_path: str | Path,
    record_id: str | int,
    annotation_file: Path,
    allow_missing_images: bool,
    listing: FileListing | None = None,
) -> bool:
    """True if the image exists. If absent: raise, or (when allowed) count it and return False.

    ``listing`` answers from folder listings (fast for whole datasets, and on network file
    systems); a file it does not list is checked with a stat, so the answer is the file
    system's even where names are case-insensitive (macOS).
    """
    if listing is not None and listing.is_file(image_path):
        return True
    if os.path.isfile(image_path):
        return True
    if not allow_missing_images:
        raise DatasetFormatError(
            annotation_file,
            f"image listed but absent: expected {image_path} "
            "(pass allow_missing_images=True / --allow-missing-images to skip and count)",
            record_id,
        )
    if result.skipped["missing_image"] == 0:
        log.warning("%s: image %s is missing; skipping missing images", annotation_file, image_path)
    result.skipped["missing_image"] += 1
    return False
