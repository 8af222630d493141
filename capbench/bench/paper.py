"""``paper.yaml``: what a paper reports, as typed objects validated on load.

The schema is declared once, in ``capbench.bench.schemas.PaperSpec`` (documented with an example
in ``PAPER_SCHEMA.md`` next to this file, JSON Schema in ``json_schema/``). Validation is strict
and names the file and key, because a typo in a reported number or tolerance silently skews
every leaderboard built on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from capbench.bench.schemas import PROFILES, MetricSpec, PaperSpec, RowSpec, validate

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
    layout: str = "rows"  # "matrix": rows x metrics (the suite), see PAPER_SCHEMA.md


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


def _metric(key: str, spec: MetricSpec) -> Metric:
    return Metric(
        key=key,
        label=spec.label or key,
        higher_is_better=spec.higher_is_better,
        tolerance=spec.tolerance,
        tolerance_why=spec.tolerance_why,
        unit=spec.unit,
        scale=float(spec.scale or 1.0),
        scenes_tolerance=spec.scenes_tolerance,
    )


def _row(path: Path, where: str, row_id: str, spec: RowSpec) -> Row:
    configs: dict[str, Path] = {}
    excluded = {profile for profile, fname in spec.configs.items() if fname is None}
    for profile, fname in spec.configs.items():
        if fname is None:  # e.g. a paper-only metric of a row that also runs on scenes
            continue
        cfg = path.parent / fname
        if not cfg.is_file() and not spec.pending:
            raise PaperSpecError(
                path, f"{where}.configs.{profile}: config file {cfg} does not exist"
            )
        configs[profile] = cfg
    for profile in PROFILES:  # the default name, when present
        default = path.parent / f"{row_id}.{profile}.yaml"
        if profile not in configs and profile not in excluded and default.is_file():
            configs[profile] = default
    return Row(
        id=row_id,
        label=spec.label or row_id,
        reported=dict(spec.reported),
        reported_std=dict(spec.reported_std),
        source=spec.source,
        pending=spec.pending,
        configs=configs,
    )


def load_paper(path: Path | str) -> Paper:
    """Load and validate ``paper.yaml`` (the file, or the folder holding it).

    The schema is ``capbench.bench.schemas.PaperSpec``; here the validated file becomes the
    objects the bench uses, with config files found and checked on disk."""
    path = Path(path)
    if path.is_dir():
        path = path / "paper.yaml"
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise PaperSpecError(path, f"cannot read: {err}") from err
    try:
        spec: PaperSpec = validate(PaperSpec, raw)
    except ValueError as err:
        raise PaperSpecError(path, str(err)) from None
    tables = {
        tid: Table(
            id=tid,
            title=t.title or tid,
            source=t.source,
            metrics={mk: _metric(mk, m) for mk, m in t.metrics.items()},
            rows={rid: _row(path, f"tables.{tid}.rows.{rid}", rid, r) for rid, r in t.rows.items()},
            layout=t.layout,
        )
        for tid, t in spec.tables.items()
    }
    figures = {
        fid: Figure(
            id=fid,
            title=f.title or fid,
            source=f.source,
            table=f.table,
            curves=tuple(f.curves),
        )
        for fid, f in spec.figures.items()
    }
    key = spec.key or path.parent.name
    return Paper(
        key=key,
        title=spec.title or key,
        authors=list(spec.authors),
        venue=spec.venue,
        year=spec.year,
        dir=path.parent.resolve(),
        tables=tables,
        figures=figures,
        arxiv=spec.arxiv,
        url=spec.url,
        bibtex=spec.bibtex,
    )
