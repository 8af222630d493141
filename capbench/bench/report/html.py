"""One static ``index.html`` that stands alone: every table, every plot inlined as a ``data:``
URI and each paper's Markdown as a download link, so the file can be mailed, attached to a CI
run or opened from anywhere, offline (no external assets, nothing beside it needed)."""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime
from pathlib import Path

from capbench.bench.paper import Paper
from capbench.bench.report.tables import columns, table_cells
from capbench.bench.summary import RowSummary

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}
td.status-ok{background:#e3f4e3} td.status-within{background:#f6f6d8}
td.status-regression,td.status-above,td.status-not{background:#f8d7d7}
td.status-pending,td.status-na{color:#777}
table.matrix td.best{background:#e3f4e3} table.matrix td.na{color:#777;font-style:italic}
img{max-width:48%;margin:.3em;border:1px solid #eee}
pre{background:#f7f7f7;padding:.5em;overflow:auto;font-size:.8em}
nav a{margin-right:1em}
"""


def _status_class(status: str) -> str:
    return "status-" + status.split(":")[0].split()[0].replace("/", "")


def matrix_html(paper: Paper, table_id: str, profile: str, summaries: list[RowSummary]) -> str:
    """A ``layout: matrix`` table: a row per encoder, the best of each column marked."""
    from capbench.bench.report.matrix import matrix_header, matrix_rows

    table = paper.tables[table_id]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in matrix_header(table))
    body = []
    for label, cells in matrix_rows(table, profile, summaries):
        tds = f'<th scope="row">{html.escape(label)}</th>'
        for c in cells:
            cls = "best" if c.best else ("na" if c.missing else "")
            text = html.escape(c.text)
            tds += (
                f'<td class="{cls}">' + (f"<strong>{text}</strong>" if c.best else text) + "</td>"
            )
        body.append(f'<tr class="encoder">{tds}</tr>')
    tid = html.escape(f"{paper.key}-{table.id}-{profile}")
    return (
        f'<table id="{tid}" class="leaderboard matrix" data-paper="{html.escape(paper.key)}" '
        f'data-table="{html.escape(table.id)}" data-profile="{profile}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def table_html(paper: Paper, table_id: str, profile: str, summaries: list[RowSummary]) -> str:
    table = paper.tables[table_id]
    if table.layout == "matrix":
        return matrix_html(paper, table_id, profile, summaries)
    cols = columns(profile)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for row in table_cells(table, profile, summaries):
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in row[:-1])
        tds += f'<td class="{_status_class(row[-1])}">{html.escape(row[-1])}</td>'
        body.append(f"<tr>{tds}</tr>")
    tid = html.escape(f"{paper.key}-{table.id}-{profile}")
    return (
        f'<table id="{tid}" class="leaderboard" data-paper="{html.escape(paper.key)}" '
        f'data-table="{html.escape(table.id)}" data-profile="{profile}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def index_html(
    papers: list[Paper],
    profiles: dict[str, list[str]],
    summaries: list[RowSummary],
    images: dict[tuple[str, str, str], list[str]],
    out: Path,
    markdown: dict[str, str],
) -> str:
    """The page; ``images[(paper, table, profile)]`` are PNG paths relative to ``out``, read
    and inlined; ``markdown[paper]`` is that paper's Markdown, offered as a download."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<link rel="icon" href="data:,">',
        "<title>capbench leaderboard</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>capbench leaderboard</h1>",
        f"<p>Generated {datetime.now(UTC).isoformat(timespec='seconds')}. Reproduced = mean ± std over seeds; "
        "Δ against the paper's reported number (paper profile) or the golden scenes number (scenes profile). "
        "n/a = not reported / not run; numbers are never filled in.</p>",
        "<nav>"
        + "".join(f'<a href="#{html.escape(p.key)}">{html.escape(p.key)}</a>' for p in papers)
        + "</nav>",
    ]
    if not papers:
        parts.append("<p>No papers found (benchmarks/*/paper.yaml or --include).</p>")
    for p in papers:
        cite = f"{', '.join(p.authors)}. {p.venue} {p.year or ''}"
        md_link = ""
        if p.key in markdown:
            href = data_uri(markdown[p.key].encode("utf-8"), "text/markdown;charset=utf-8")
            md_link = f' · <a download="{html.escape(p.key)}.md" href="{href}">Markdown</a>'
        parts.append(
            f'<section id="{html.escape(p.key)}"><h2>{html.escape(p.title)}</h2>'
            f"<p>{html.escape(cite)}{md_link}</p>"
        )
        for table in p.tables.values():
            for profile in profiles[p.key]:
                parts.append(
                    f"<h3>{html.escape(table.title)} — {html.escape(table.source)} — {profile} profile</h3>"
                )
                parts.append(table_html(p, table.id, profile, summaries))
                for img in images.get((p.key, table.id, profile), []):
                    src = data_uri((out / img).read_bytes(), "image/png")
                    parts.append(
                        f'<img src="{src}" alt="{html.escape(img)}" data-file="{html.escape(img)}">'
                    )
        if p.bibtex:
            parts.append(
                f"<details><summary>BibTeX</summary><pre>{html.escape(p.bibtex)}</pre></details>"
            )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
