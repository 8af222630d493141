"""The catalog: every paper, table and row found under ``benchmarks/*/paper.yaml`` (shipped with
capbench), in ``$CAPBENCH_BENCHMARKS`` and ``--include`` folders, plus rows users added as
configs with a ``bench:`` section.

Papers are data, so discovery is a directory scan: a new paper or method needs no code here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from capbench.bench.paper import PROFILES, Paper, PaperSpecError, Row, Table, load_paper
from capbench.resources import benchmarks_dir


def builtin_benchmarks_dirs() -> list[Path]:
    """The suites that ship with capbench: the checkout's ``benchmarks/``, or the copy inside an
    installed wheel (``capbench.resources``)."""
    return [benchmarks_dir().resolve()]


def user_benchmarks_dirs() -> list[Path]:
    """A user's own suites from ``$CAPBENCH_BENCHMARKS`` (folders separated by ``os.pathsep``),
    plus the rows ``capbench suite --encoder`` wrote (``$CAPBENCH_RESULTS/user_rows``), added
    to the built-in ones exactly like ``--include`` folders."""
    from capbench.paths import user_rows_root

    env = os.environ.get("CAPBENCH_BENCHMARKS") or ""
    dirs = [Path(d) for d in env.split(os.pathsep) if d]
    if user_rows_root().is_dir():
        dirs.append(user_rows_root())
    return dirs


@dataclass(frozen=True)
class RowRef:
    """One runnable cell of the catalog: a row of a table of a paper."""

    paper: Paper
    table: Table
    row: Row

    @property
    def name(self) -> str:
        return f"{self.paper.key}/{self.table.id}/{self.row.id}"


def _profile_of(path: Path) -> str | None:
    for profile in PROFILES:
        if path.name.endswith(f".{profile}.yaml"):
            return profile
    return None


def _bench_section(path: Path) -> dict | None:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise PaperSpecError(path, f"cannot read config: {err}") from err
    if not isinstance(raw, dict) or not isinstance(raw.get("bench"), dict):
        return None
    return raw["bench"]


class Catalog:
    """Papers by key; ``rows()`` selects cells by table / row / profile."""

    def __init__(self, papers: dict[str, Paper]) -> None:
        self.papers = papers

    @classmethod
    def discover(cls, include: Iterable[Path | str] = (), builtin: bool = True) -> Catalog:
        """Papers of the built-in suites, of ``$CAPBENCH_BENCHMARKS`` and of ``include``."""
        roots = builtin_benchmarks_dirs() if builtin else []
        extra = [("$CAPBENCH_BENCHMARKS", Path(p)) for p in user_benchmarks_dirs()]
        extra += [("--include", Path(p)) for p in include]
        for origin, inc in extra:
            if not inc.is_dir():
                raise FileNotFoundError(f"{origin} {inc}: not a directory")
        folders: list[Path] = []  # external folders, each once, none of them a built-in one
        for _, inc in extra:
            if inc.resolve() not in folders and inc.resolve() not in roots:
                folders.append(inc.resolve())
        papers: dict[str, Paper] = {}
        for paper_yaml in _paper_files([*roots, *folders]):
            paper = load_paper(paper_yaml)
            if paper.key in papers and papers[paper.key].dir != paper.dir:
                raise PaperSpecError(
                    paper_yaml,
                    f"paper key {paper.key!r} is also defined in {papers[paper.key].path}",
                )
            papers[paper.key] = paper
        cat = cls(papers)
        for paper in papers.values():  # configs added next to a paper.yaml
            cat._add_user_rows(paper.dir.glob("*.yaml"), default_paper=paper.key)
        for inc in folders:  # configs in external folders
            cat._add_user_rows(inc.rglob("*.yaml"), default_paper=None)
        return cat

    def _add_user_rows(self, files: Iterable[Path], default_paper: str | None) -> None:
        for cfg in sorted(files):
            profile = _profile_of(cfg)
            if profile is None:
                continue
            paper_key = default_paper
            bench = _bench_section(cfg)
            if bench is None:
                continue
            paper_key = bench.get("paper", paper_key)
            if paper_key not in self.papers:
                raise PaperSpecError(
                    cfg, f"bench.paper: unknown paper {paper_key!r} ({', '.join(self.papers)})"
                )
            paper = self.papers[paper_key]
            table_id = bench.get("table")
            if table_id not in paper.tables:
                raise PaperSpecError(
                    cfg,
                    f"bench.table: paper {paper_key} has no table {table_id!r} ({', '.join(paper.tables)})",
                )
            table = paper.tables[table_id]
            row_id = str(bench.get("row") or cfg.name[: -len(f".{profile}.yaml")])
            row = table.rows.get(row_id)
            if row is None:
                row = Row(id=row_id, label=str(bench.get("label") or row_id), user_added=True)
                table.rows[row_id] = row
            if profile in row.configs and row.configs[profile].resolve() != cfg.resolve():
                if not row.user_added:
                    continue  # paper.yaml already names a config for this row: it wins
                raise PaperSpecError(
                    cfg,
                    f"row {paper_key}/{table_id}/{row_id} already has a {profile} config: {row.configs[profile]}",
                )
            row.configs[profile] = cfg.resolve()

    def paper(self, key: str) -> Paper:
        try:
            return self.papers[key]
        except KeyError:
            known = ", ".join(sorted(self.papers)) or "none found"
            raise KeyError(f"unknown paper {key!r}; papers: {known}") from None

    def rows(
        self,
        paper: str | None = None,
        table: str | None = None,
        rows: Iterable[str] | None = None,
    ) -> Iterator[RowRef]:
        """Cells in catalog order; unknown table or row names are an error, not an empty run."""
        papers = [self.paper(paper)] if paper else list(self.papers.values())
        wanted = list(rows) if rows else None
        seen: set[str] = set()
        for p in papers:
            tables = [p.table(table)] if table else list(p.tables.values())
            for t in tables:
                for r in t.rows.values():
                    if wanted is None or r.id in wanted:
                        seen.add(r.id)
                        yield RowRef(p, t, r)
        if wanted is not None:
            missing = [r for r in wanted if r not in seen]
            if missing:
                raise KeyError(
                    f"unknown rows {missing} in {paper or 'any paper'}{'/' + table if table else ''}"
                )


def _paper_files(roots: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        candidates = [root / "paper.yaml", *sorted(root.glob("*/paper.yaml"))]
        found.extend(p for p in candidates if p.is_file())
    return found
