"""Errors raised by the data layer. One type, always naming the file, the record and what was expected."""

from __future__ import annotations

from pathlib import Path


class DatasetFormatError(ValueError):
    """A dataset on disk does not match the format its reader expects."""

    def __init__(self, path: str | Path, message: str, record: str | int | None = None) -> None:
        self.path = str(path)
        self.record = record
        self.detail = message
        where = f"{self.path}" + (f" (record {record})" if record is not None else "")
        super().__init__(f"{where}: {message}")
