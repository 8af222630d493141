"""The matrix layout (``layout: matrix`` in paper.yaml, the cross-method suite): one line per
row (an encoder), one column per metric (a protocol), mean ± std over seeds, the best value of
each column marked. A cell without a value says why: the reason the row recorded
(``extra.not_applicable``, e.g. "no text tower"), else "not run"."""

from __future__ import annotations

from dataclasses import dataclass

from capbench.bench.paper import Table
from capbench.bench.summary import RowSummary, fmt


@dataclass
class MatrixCell:
    text: str
    best: bool = False
    missing: bool = False  # no value: the text is the reason


def _reason(s: RowSummary, mkey: str) -> str:
    for r in s.records:
        why = (r.extra or {}).get("not_applicable", {}).get(mkey)
        if why:
            return str(why)
    if s.ref.row.pending:
        return f"pending: {s.ref.row.pending}"
    return "not measured" if s.records else "not run"


def matrix_rows(
    table: Table, profile: str, summaries: list[RowSummary]
) -> list[tuple[str, list[MatrixCell]]]:
    """``(row label, one cell per metric)`` for ``table`` in ``profile``, in catalog order."""
    mine = [s for s in summaries if s.ref.table.id == table.id and s.profile == profile]
    best: dict[str, float] = {}
    for mkey, metric in table.metrics.items():
        means = [s.cells[mkey].mean for s in mine if s.cells[mkey].mean is not None]
        if means:
            best[mkey] = max(means) if metric.higher_is_better else min(means)  # type: ignore[type-var]
    out = []
    for s in mine:
        cells = []
        for mkey in table.metrics:
            c = s.cells[mkey]
            if c.mean is None:
                cells.append(MatrixCell(_reason(s, mkey), missing=True))
                continue
            text = fmt(c.mean) if c.n <= 1 else f"{fmt(c.mean)} ± {fmt(c.std)} (n={c.n})"
            is_best = len(mine) > 1 and abs(c.mean - best[mkey]) <= 1e-12 * max(1.0, abs(c.mean))
            cells.append(MatrixCell(text, best=is_best))
        label = s.ref.row.label + (" (user)" if s.ref.row.user_added else "")
        out.append((label, cells))
    return out


def matrix_header(table: Table) -> list[str]:
    return ["Encoder"] + [
        m.label + (f" ({m.unit})" if m.unit else "") for m in table.metrics.values()
    ]


def matrix_markdown(table: Table, profile: str, summaries: list[RowSummary]) -> str:
    """The matrix as Markdown; the best value of a column in bold, a missing one in italics."""
    header = matrix_header(table)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, cells in matrix_rows(table, profile, summaries):
        shown = [
            f"**{c.text}**" if c.best else (f"*{c.text}*" if c.missing else c.text) for c in cells
        ]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in [label, *shown]) + " |")
    return "\n".join(lines)
