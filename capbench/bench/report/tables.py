"""Markdown tables: one per (paper table, profile), one line per row and metric."""

from __future__ import annotations

from capbench.bench.paper import Paper, Table
from capbench.bench.summary import RowSummary, fmt


def reproduced_text(mean: float | None, std: float | None, n: int) -> str:
    if mean is None:
        return "n/a"
    return f"{fmt(mean)} ± {fmt(std)} (n={n})"


def columns(profile: str) -> list[str]:
    cols = ["Row", "Metric", "Reported"]
    if profile != "paper":
        cols.append("Golden")
    return [*cols, "Reproduced (mean ± std, n)", "Δ", "Status"]


def table_cells(table: Table, profile: str, summaries: list[RowSummary]) -> list[list[str]]:
    """The table body as strings, shared by the Markdown and HTML renderers."""
    body: list[list[str]] = []
    for s in summaries:
        if s.ref.table.id != table.id or s.profile != profile:
            continue
        label = s.ref.row.label + (" (user)" if s.ref.row.user_added else "")
        for _mkey, c in s.cells.items():
            reported = fmt(c.reported)
            if c.reported is not None and c.reported_std is not None:
                reported += f" ± {fmt(c.reported_std)}"
            line = [
                label,
                c.metric.label + (f" ({c.metric.unit})" if c.metric.unit else ""),
                reported,
            ]
            if profile != "paper":
                line.append(fmt(c.reference))
            delta = "n/a" if c.delta is None else f"{c.delta:+.3g}"
            status = c.status
            if s.ref.row.pending:
                status = f"pending: {s.ref.row.pending}"
            reproduced = reproduced_text(c.mean, c.std, c.n)
            if s.overridden and c.mean is not None:
                reproduced += f" [config {s.records[0].hash8}: overridden]"
            line += [reproduced, delta, status]
            body.append(line)
    return body


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def paper_markdown(
    paper: Paper,
    profiles: list[str],
    summaries: list[RowSummary],
    images: dict[tuple[str, str], list[str]],
) -> str:
    """The whole paper: header, then each table per profile, with its plots linked."""
    authors = ", ".join(paper.authors)
    out = [f"# {paper.title}", "", f"{authors}. {paper.venue} {paper.year or ''}".strip(), ""]
    for table in paper.tables.values():
        for profile in profiles:
            ref = "the paper's reported numbers" if profile == "paper" else "golden scenes numbers"
            note = (
                "Mean ± std over seeds; the best value of each column in bold; a cell without a "
                "value says why."
                if table.layout == "matrix"
                else f"Δ and status against {ref}."
            )
            out += [f"## {table.title} ({table.source}) — {profile} profile", "", note, ""]
            if table.layout == "matrix":
                from capbench.bench.report.matrix import matrix_markdown

                out.append(matrix_markdown(table, profile, summaries))
            else:
                out.append(markdown_table(columns(profile), table_cells(table, profile, summaries)))
            out.append("")
            tol = [
                f"- {m.label}: tolerance {fmt(m.tolerance)} — {m.tolerance_why}"
                for m in table.metrics.values()
                if m.tolerance is not None
            ]
            if profile == "paper" and tol:
                out += ["Tolerances:", *tol, ""]
            for img in images.get((table.id, profile), []):
                out += [f"![{img}]({img})", ""]
    return "\n".join(out)
