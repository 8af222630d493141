"""Render the leaderboard: Markdown per paper, PNG plots, one ``index.html`` that stands alone
(plots and Markdown inlined)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from capbench.atomic import atomic_write_text
from capbench.bench.catalog import Catalog
from capbench.bench.golden import load_golden
from capbench.bench.record import RecordError, load_records
from capbench.bench.report.html import index_html
from capbench.bench.report.plots import table_plots
from capbench.bench.report.row_figures import row_figures
from capbench.bench.report.tables import paper_markdown
from capbench.bench.summary import RowSummary, summarize


@dataclass
class Rendered:
    index: Path
    markdown: list[Path]
    images: list[Path]
    malformed: list[RecordError] = field(default_factory=list)  # records left off the page


def profiles_to_show(summaries: list[RowSummary], paper_key: str, has_golden: bool) -> list[str]:
    """Always the paper profile (the reported numbers are worth showing alone); the scenes
    profile when it has records, or golden numbers to show before anything ran; the ci profile
    instead when it has records and scenes has none (a page rendered from `make test`-sized
    runs, e.g. the browser test: its rows would otherwise all read "not run")."""

    def ran(profile: str) -> bool:
        return any(
            s.records for s in summaries if s.ref.paper.key == paper_key and s.profile == profile
        )

    shown = ["paper"]
    if ran("scenes") or (has_golden and not ran("ci")):
        shown.insert(0, "scenes")
    elif ran("ci"):
        shown.insert(0, "ci")
    return shown


def render(
    catalog: Catalog,
    results: Path,
    out: Path,
    paper: str | None = None,
    profiles: Sequence[str] | None = None,
) -> Rendered:
    """Each paper's Markdown, plots and the HTML page; ``profiles`` picks the profiles shown
    (in the order scenes, ci, paper), else :func:`profiles_to_show` does."""
    chosen = [p for p in ("scenes", "ci", "paper") if p in set(profiles)] if profiles else None
    papers = [catalog.paper(paper)] if paper else list(catalog.papers.values())
    out.mkdir(parents=True, exist_ok=True)
    summaries: list[RowSummary] = []
    shown: dict[str, list[str]] = {}
    images: dict[tuple[str, str, str], list[str]] = {}
    md_paths: list[Path] = []
    markdown: dict[str, str] = {}
    malformed: list[RecordError] = []
    for p in papers:
        records = load_records(results, p.key, malformed)
        rows = [
            s
            for profile in ("scenes", "ci", "paper")
            for s in summarize(catalog, results, profile, p.key, records)
        ]
        summaries += rows
        shown[p.key] = chosen or profiles_to_show(rows, p.key, bool(load_golden(p)))
        per_paper: dict[tuple[str, str], list[str]] = {}
        for t in p.tables.values():
            for profile in shown[p.key]:
                imgs = table_plots(p, t, profile, rows, out)
                imgs += row_figures(p, t, profile, rows, out)
                images[(p.key, t.id, profile)] = imgs
                per_paper[(t.id, profile)] = imgs
        markdown[p.key] = paper_markdown(p, shown[p.key], rows, per_paper) + "\n"
        md_paths.append(atomic_write_text(out / f"{p.key}.md", markdown[p.key]))
    index = atomic_write_text(
        out / "index.html", index_html(papers, shown, summaries, images, out, markdown)
    )
    images_written = [out / i for imgs in images.values() for i in imgs]
    return Rendered(index, md_paths, images_written, malformed)
