"""The run record: one JSON file per (paper, table, row, profile, seed, config hash).

Typed and validated both when written and when read, because the leaderboard and the
regression gate trust these files; a malformed one is an error naming its path, never skipped.
Writes are atomic (temp file in the same folder + ``os.replace``) so an interrupted run never
leaves a half-written record that would look complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError

from capbench.atomic import atomic_write_text
from capbench.bench.schemas import (
    HEX64_PATTERN,
    Count,
    CurveData,
    Finite,
    NonEmptyStr,
    NonNegative,
    StrictSpec,
    describe,
)

SCHEMA_VERSION = 1
STATUS_COMPLETE = "complete"


class RecordError(ValueError):
    """A run record that does not match the schema; the message names the file."""

    def __init__(self, path: Path | str | None, message: str) -> None:
        self.path = None if path is None else Path(path)
        self.detail = message  # without the file, for a caller that names it itself
        super().__init__(f"{path or '<record>'}: {message}")


class RunRecord(StrictSpec):
    """One run of one row: what it measured and everything needed to explain the number.

    Validated when built, written and read (``RecordError`` names the file and the key)."""

    paper: NonEmptyStr
    table: NonEmptyStr
    row: NonEmptyStr
    profile: NonEmptyStr
    seed: Count
    metrics: Annotated[dict[str, Finite], Field(min_length=1)] = Field(
        description="target units, before the table's scale"
    )
    n_scored: Count = Field(description="items scored (each once, also under DDP)")
    config: dict[str, Any] = Field(description="the resolved row config")
    config_hash: Annotated[str, Field(pattern=HEX64_PATTERN)]
    dataset: dict[str, Any] = Field(description='{"name", "root", "fingerprint"}')
    capbench_version: NonEmptyStr
    git: dict[str, Any] = Field(
        description='{"sha", "dirty"} of the checkout; both null for an installed capbench'
    )
    packages: dict[str, str | None] = Field(description="versions of the packages numbers use")
    device: dict[str, Any] = Field(description='{"kind": "cpu"|"cuda", "name", "count"}')
    wall_time_s: NonNegative
    started: NonEmptyStr = Field(description="ISO 8601, UTC")
    finished: NonEmptyStr
    curves: dict[str, CurveData] = Field(default_factory=dict)
    checkpoint: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    status: Literal["complete"] = STATUS_COMPLETE
    schema_version: Literal[1] = Field(SCHEMA_VERSION, alias="schema")

    model_config = ConfigDict(title="run record")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise RecordError(None, describe(err)) from None

    @property
    def hash8(self) -> str:
        return self.config_hash[:8]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to disk (``schema`` under its file name)."""
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_dict(cls, raw: Any, path: Path | str | None = None) -> RunRecord:
        """Build and validate; raises :class:`RecordError` naming ``path``."""
        if not isinstance(raw, dict):
            raise RecordError(path, f"expected a JSON object, got {type(raw).__name__}")
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            raise RecordError(path, describe(err)) from None

    def validate(self, path: Path | str | None = None) -> None:  # type: ignore[override]
        """Check the record again as it is now (fields may have been changed since it was
        built); raises :class:`RecordError` naming ``path``."""
        type(self).from_dict(self.to_dict(), path)


def record_path(
    results: Path, paper: str, table: str, row: str, profile: str, seed: int, config_hash: str
) -> Path:
    """``<results>/<paper>/records/<table>/<row>/<profile>-s<seed>-<hash8>.json``."""
    return results / paper / "records" / table / row / f"{profile}-s{seed}-{config_hash[:8]}.json"


def write_record(record: RunRecord, results: Path) -> Path:
    """Validate, then write atomically; returns the path."""
    record.validate()
    path = record_path(
        results,
        record.paper,
        record.table,
        record.row,
        record.profile,
        record.seed,
        record.config_hash,
    )
    text = json.dumps(record.to_dict(), indent=1, sort_keys=True, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def read_record(path: Path | str) -> RunRecord:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise RecordError(path, f"cannot read: {err}") from err
    except UnicodeDecodeError as err:  # records are written as UTF-8: a damaged file
        raise RecordError(path, f"not UTF-8 text: {err}") from err
    except json.JSONDecodeError as err:
        raise RecordError(path, f"not valid JSON: {err}") from err
    return RunRecord.from_dict(raw, path)


def iter_record_paths(results: Path, paper: str | None = None) -> list[Path]:
    """Every record file (temp files excluded), sorted for stable output."""
    base = results / paper if paper else results
    pattern = "records/**/*.json" if paper else "*/records/**/*.json"
    return sorted(p for p in base.glob(pattern) if not p.name.startswith("."))


def load_records(
    results: Path, paper: str | None = None, malformed: list[RecordError] | None = None
) -> list[RunRecord]:
    """All records under ``results`` (one paper or all). A malformed file raises with its path,
    or, given a ``malformed`` list, is left out and its error appended there (the leaderboard
    page shows every other record; a regression check must not pass over one)."""
    records: list[RunRecord] = []
    for path in iter_record_paths(results, paper):
        try:
            records.append(read_record(path))
        except RecordError as err:
            if malformed is None:
                raise
            malformed.append(err)
    return records
