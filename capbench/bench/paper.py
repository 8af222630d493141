"""``paper.yaml``: what a paper reports, as typed objects validated on load.

The schema (with an example) is in ``PAPER_SCHEMA.md`` next to this file. Validation is strict
and names the file and key, because a typo in a reported number or tolerance silently skews
every leaderboard built on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# ``ci`` is the scenes rows at a size that fits CI (tiny scenes data, short schedules).
PROFILES = ("scenes", "ci", "paper")
# Profiles whose reference numbers are our own golden numbers rather than the paper's.
GOLDEN_PROFILES = ("scenes", "ci")


class PaperSpecError(ValueError):
    """A malformed ``paper.yaml`` or row config; the message names the file and key."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool = True
    tolerance: float | None = None
    tolerance_why: str = ""
    unit: str = ""
    scale: float = 1.0
    scenes_tolerance: float | None = None


@dataclass
class Row:
    id: str
    label: str
    reported: dict[str, float | None] = field(default_factory=dict)
    reported_std: dict[str, float | None] = field(default_factory=dict)
    source: str = ""
    pending: str | None = None
    configs: dict[str, Path] = field(default_factory=dict)  # profile -> absolute config path
    user_added: bool = False  # found as a config with a ``bench:`` section, not in paper.yaml


@dataclass
class Table:
    id: str
    title: str
    source: str
    metrics: dict[str, Metric]
    rows: dict[str, Row]


@dataclass(frozen=True)
class Figure:
    id: str
    title: str
    source: str
    table: str
    curves: tuple[str, ...]


@dataclass
class Paper:
    key: str
    title: str
    authors: list[str]
    venue: str
    year: int | None
    dir: Path
    tables: dict[str, Table]
    figures: dict[str, Figure] = field(default_factory=dict)
    arxiv: str | None = None
    url: str | None = None
    bibtex: str = ""

    @property
    def path(self) -> Path:
        return self.dir / "paper.yaml"

    def table(self, table_id: str) -> Table:
        try:
            return self.tables[table_id]
        except KeyError:
            raise KeyError(
                f"paper {self.key!r} has no table {table_id!r}; tables: {', '.join(self.tables)}"
            ) from None


def _num(path: Path, where: str, value: Any, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PaperSpecError(
            path, f"{where} must be a number{' or null' if allow_none else ''}, got {value!r}"
        )
    return float(value)


def _mapping(path: Path, where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PaperSpecError(path, f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _parse_metric(path: Path, where: str, key: str, raw: Any) -> Metric:
    raw = _mapping(path, where, raw)
    unknown = set(raw) - {
        "label", "higher_is_better", "tolerance", "tolerance_why", "unit", "scale", "scenes_tolerance",
    }  # fmt: skip
    if unknown:
        raise PaperSpecError(path, f"{where}: unknown keys {sorted(unknown)}")
    tol = _num(path, f"{where}.tolerance", raw.get("tolerance"))
    if tol is not None and tol < 0:
        raise PaperSpecError(path, f"{where}.tolerance must be >= 0, got {tol}")
    if tol is not None and not str(raw.get("tolerance_why") or "").strip():
        raise PaperSpecError(path, f"{where}.tolerance_why is required to justify the tolerance")
    stol = _num(path, f"{where}.scenes_tolerance", raw.get("scenes_tolerance"))
    if stol is not None and stol < 0:
        raise PaperSpecError(path, f"{where}.scenes_tolerance must be >= 0, got {stol}")
    hib = raw.get("higher_is_better", True)
    if not isinstance(hib, bool):
        raise PaperSpecError(path, f"{where}.higher_is_better must be true or false, got {hib!r}")
    scale = _num(path, f"{where}.scale", raw.get("scale", 1.0), allow_none=False)
    return Metric(
        key=key,
        label=str(raw.get("label") or key),
        higher_is_better=hib,
        tolerance=tol,
        tolerance_why=str(raw.get("tolerance_why") or ""),
        unit=str(raw.get("unit") or ""),
        scale=float(scale or 1.0),
        scenes_tolerance=stol,
    )


def _parse_row(path: Path, where: str, row_id: str, raw: Any, metrics: dict[str, Metric]) -> Row:
    raw = _mapping(path, where, raw)
    unknown = set(raw) - {"label", "reported", "reported_std", "source", "pending", "configs"}
    if unknown:
        raise PaperSpecError(path, f"{where}: unknown keys {sorted(unknown)}")
    reported: dict[str, float | None] = {}
    stds: dict[str, float | None] = {}
    for name, target in (("reported", reported), ("reported_std", stds)):
        for mkey, value in _mapping(path, f"{where}.{name}", raw.get(name)).items():
            if mkey not in metrics:
                raise PaperSpecError(
                    path,
                    f"{where}.{name}.{mkey}: not a metric of this table ({', '.join(metrics)})",
                )
            target[mkey] = _num(path, f"{where}.{name}.{mkey}", value)
    pending = raw.get("pending")
    if pending is not None and not isinstance(pending, str):
        raise PaperSpecError(path, f"{where}.pending must be a reason string or null")
    configs: dict[str, Path] = {}
    for profile, fname in _mapping(path, f"{where}.configs", raw.get("configs")).items():
        if profile not in PROFILES:
            raise PaperSpecError(path, f"{where}.configs: unknown profile {profile!r} ({PROFILES})")
        cfg = path.parent / str(fname)
        if not cfg.is_file() and not pending:
            raise PaperSpecError(
                path, f"{where}.configs.{profile}: config file {cfg} does not exist"
            )
        configs[profile] = cfg
    for profile in PROFILES:  # the default name, when present
        default = path.parent / f"{row_id}.{profile}.yaml"
        if profile not in configs and default.is_file():
            configs[profile] = default
    return Row(
        id=row_id,
        label=str(raw.get("label") or row_id),
        reported=reported,
        reported_std=stds,
        source=str(raw.get("source") or ""),
        pending=pending,
        configs=configs,
    )


def load_paper(path: Path | str) -> Paper:
    """Load and validate ``paper.yaml`` (the file, or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "paper.yaml"
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise PaperSpecError(path, f"cannot read: {err}") from err
    raw = _mapping(path, "top level", raw)
    if raw.get("schema", 1) != 1:
        raise PaperSpecError(path, f"schema {raw.get('schema')!r} is not supported (only 1)")
    key = raw.get("key") or path.parent.name
    if not isinstance(key, str) or not key:
        raise PaperSpecError(path, "key must be a non-empty string")
    tables: dict[str, Table] = {}
    for tid, traw in _mapping(path, "tables", raw.get("tables")).items():
        where = f"tables.{tid}"
        traw = _mapping(path, where, traw)
        metrics = {
            mk: _parse_metric(path, f"{where}.metrics.{mk}", mk, mv)
            for mk, mv in _mapping(path, f"{where}.metrics", traw.get("metrics")).items()
        }
        if not metrics:
            raise PaperSpecError(path, f"{where}.metrics: a table needs at least one metric")
        rows = {
            rid: _parse_row(path, f"{where}.rows.{rid}", str(rid), rv, metrics)
            for rid, rv in _mapping(path, f"{where}.rows", traw.get("rows")).items()
        }
        tables[str(tid)] = Table(
            id=str(tid),
            title=str(traw.get("title") or tid),
            source=str(traw.get("source") or ""),
            metrics=metrics,
            rows=rows,
        )
    if not tables:
        raise PaperSpecError(path, "no tables")
    figures: dict[str, Figure] = {}
    for fid, fraw in _mapping(path, "figures", raw.get("figures")).items():
        fraw = _mapping(path, f"figures.{fid}", fraw)
        if fraw.get("table") not in tables:
            raise PaperSpecError(path, f"figures.{fid}.table: unknown table {fraw.get('table')!r}")
        curves = fraw.get("curves") or []
        if not isinstance(curves, list) or not all(isinstance(c, str) for c in curves):
            raise PaperSpecError(path, f"figures.{fid}.curves must be a list of curve names")
        figures[str(fid)] = Figure(
            id=str(fid),
            title=str(fraw.get("title") or fid),
            source=str(fraw.get("source") or ""),
            table=str(fraw["table"]),
            curves=tuple(curves),
        )
    year = raw.get("year")
    authors = raw.get("authors") or []
    if isinstance(authors, str):
        authors = [authors]
    return Paper(
        key=key,
        title=str(raw.get("title") or key),
        authors=[str(a) for a in authors],
        venue=str(raw.get("venue") or ""),
        year=int(year) if year is not None else None,
        dir=path.parent.resolve(),
        tables=tables,
        figures=figures,
        arxiv=None if raw.get("arxiv") is None else str(raw.get("arxiv")),
        url=raw.get("url"),
        bibtex=str(raw.get("bibtex") or ""),
    )
