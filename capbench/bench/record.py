"""The run record: one JSON file per (paper, table, row, profile, seed, config hash).

Typed and validated both when written and when read, because the leaderboard and the
regression gate trust these files; a malformed one is an error naming its path, never skipped.
Writes are atomic (temp file in the same folder + ``os.replace``) so an interrupted run never
leaves a half-written record that would look complete.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from capbench.atomic import atomic_write_text

SCHEMA_VERSION = 1
STATUS_COMPLETE = "complete"


class RecordError(ValueError):
    """A run record that does not match the schema; the message names the file."""

    def __init__(self, path: Path | str | None, message: str) -> None:
        self.path = None if path is None else Path(path)
        super().__init__(f"{path or '<record>'}: {message}")


@dataclass
class RunRecord:
    paper: str
    table: str
    row: str
    profile: str
    seed: int
    metrics: dict[str, float]
    n_scored: int
    config: dict[str, Any]
    config_hash: str
    dataset: dict[str, Any]  # {"name", "root", "fingerprint"}
    capbench_version: str
    git: dict[str, Any]  # {"sha": str | None, "dirty": bool | None}
    packages: dict[str, str | None]
    device: dict[str, Any]  # {"kind": "cpu"|"cuda", "name": str, "count": int}
    wall_time_s: float
    started: str  # ISO 8601, UTC
    finished: str
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    checkpoint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    status: str = STATUS_COMPLETE
    schema: int = SCHEMA_VERSION

    @property
    def hash8(self) -> str:
        return self.config_hash[:8]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Any, path: Path | str | None = None) -> RunRecord:
        """Build and validate; raises :class:`RecordError` naming ``path``."""
        if not isinstance(raw, dict):
            raise RecordError(path, f"expected a JSON object, got {type(raw).__name__}")
        names = {f.name for f in fields(cls)}
        required = {
            f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
        }
        missing = sorted(required - set(raw))
        if missing:
            raise RecordError(path, f"missing keys {missing}")
        unknown = sorted(set(raw) - names)
        if unknown:
            raise RecordError(path, f"unknown keys {unknown}")
        rec = cls(**raw)
        rec.validate(path)
        return rec

    def validate(self, path: Path | str | None = None) -> None:
        def fail(msg: str) -> None:
            raise RecordError(path, msg)

        for key in (
            "paper",
            "table",
            "row",
            "profile",
            "config_hash",
            "capbench_version",
            "started",
            "finished",
        ):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                fail(f"{key} must be a non-empty string, got {getattr(self, key)!r}")
        if self.schema != SCHEMA_VERSION:
            fail(f"schema {self.schema!r} is not {SCHEMA_VERSION}")
        if self.status != STATUS_COMPLETE:
            fail(f"status {self.status!r} is not {STATUS_COMPLETE!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            fail(f"seed must be a non-negative integer, got {self.seed!r}")
        if (
            isinstance(self.n_scored, bool)
            or not isinstance(self.n_scored, int)
            or self.n_scored < 0
        ):
            fail(f"n_scored must be a non-negative integer, got {self.n_scored!r}")
        if len(self.config_hash) != 64 or any(
            c not in "0123456789abcdef" for c in self.config_hash
        ):
            fail(f"config_hash must be 64 hex digits, got {self.config_hash!r}")
        if not isinstance(self.metrics, dict) or not self.metrics:
            fail("metrics must be a non-empty mapping")
        for k, v in self.metrics.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                fail(f"metrics.{k} must be a finite number, got {v!r}")
        if not isinstance(self.curves, dict):
            fail("curves must be a mapping")
        for name, curve in self.curves.items():
            if not isinstance(curve, dict) or set(curve) != {"x", "y"}:
                fail(f"curves.{name} must be {{'x': [...], 'y': [...]}}")
            xs, ys = curve["x"], curve["y"]
            if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
                fail(f"curves.{name}: x and y must be lists of equal length")
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (*xs, *ys)):
                fail(f"curves.{name}: x and y must hold numbers")
        for key in ("config", "dataset", "git", "packages", "device", "extra"):
            if not isinstance(getattr(self, key), dict):
                fail(f"{key} must be a mapping")
        if not isinstance(self.wall_time_s, int | float) or self.wall_time_s < 0:
            fail(f"wall_time_s must be a non-negative number, got {self.wall_time_s!r}")
        if self.checkpoint is not None and not isinstance(self.checkpoint, str):
            fail("checkpoint must be a path string or null")


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


def load_records(results: Path, paper: str | None = None) -> list[RunRecord]:
    """All records under ``results`` (one paper or all); a malformed file raises with its path."""
    return [read_record(p) for p in iter_record_paths(results, paper)]
