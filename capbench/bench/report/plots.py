"""PNG plots with matplotlib: bars per metric (reported markers) and curves per table."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from capbench.atomic import atomic_savefig
from capbench.bench.paper import Paper, Table
from capbench.bench.summary import RowSummary


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def bar_plot(
    paper: Paper, table: Table, profile: str, rows: list[RowSummary], metric: str, path: Path
) -> Path:
    """Reproduced mean ± std per row; the reference (reported or golden) as a marker."""
    plt = _pyplot()
    m = table.metrics[metric]
    labels = [s.ref.row.label for s in rows]
    means = [s.cells[metric].mean for s in rows]
    stds = [s.cells[metric].std or 0.0 for s in rows]
    refs = [s.cells[metric].reference for s in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(rows) + 2), 3.6))
    xs = list(range(len(rows)))
    ax.bar(
        [x for x, v in zip(xs, means) if v is not None],
        [v for v in means if v is not None],
        yerr=[s for s, v in zip(stds, means) if v is not None],
        capsize=3,
        color="#4c78a8",
        label="reproduced",
    )
    reported = [s.cells[metric].reported for s in rows]
    rx = [x for x, r in zip(xs, reported) if r is not None]
    if rx:  # the paper's numbers always; on scenes they are context, not the reference
        ax.scatter(rx, [r for r in reported if r is not None], marker="x", color="#222222", zorder=3,
                   label="reported (paper)")  # fmt: skip
    gx = [x for x, r in zip(xs, refs) if r is not None]
    if profile != "paper" and gx:
        ax.scatter(
            gx,
            [r for r in refs if r is not None],
            marker="D",
            color="#e45756",
            zorder=3,
            label="golden",
        )
    ax.set_xticks(xs, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(m.label + (f" ({m.unit})" if m.unit else ""))
    arrow = "higher is better" if m.higher_is_better else "lower is better"
    ax.set_title(
        f"{paper.key} {table.source or table.id} [{profile}]: {m.label} ({arrow})", fontsize=9
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)
    return path


def curve_plot(
    paper: Paper,
    table: Table,
    profile: str,
    rows: list[RowSummary],
    curve: str,
    path: Path,
    title: str = "",
) -> Path:
    """One line per row (mean over seeds), e.g. NDCG@R against R."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for s in rows:
        if curve in s.curves:
            xs, ys = s.curves[curve]
            ax.plot(xs, ys, marker="." if len(xs) < 30 else None, label=s.ref.row.label)
    ax.set_xlabel(curve.rsplit("_at_", 1)[1].upper() if "_at_" in curve else "x")
    ax.set_ylabel(curve)
    full = title or f"{paper.key} {table.source or table.id} [{profile}]: {curve}"
    ax.set_title(textwrap.fill(full, 70), fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)
    return path


def table_plots(
    paper: Paper, table: Table, profile: str, summaries: list[RowSummary], out: Path
) -> list[str]:
    """All plots of one table and profile; returns paths relative to ``out``."""
    rows = [s for s in summaries if s.ref.table.id == table.id and s.profile == profile]
    if not any(s.records for s in rows):
        return []
    made: list[str] = []
    stem = _slug(f"{paper.key}_{table.id}_{profile}")
    for metric in table.metrics:
        if any(s.cells[metric].mean is not None for s in rows):
            rel = f"img/{stem}_bar_{_slug(metric)}.png"
            bar_plot(paper, table, profile, rows, metric, out / rel)
            made.append(rel)
    titles = {
        c: f"{f.title} ({f.source}) [{profile}]: {c}"
        for f in paper.figures.values()
        if f.table == table.id
        for c in f.curves
    }
    # a paper that declares its figures gets exactly those; otherwise every curve is plotted
    declared = bool(paper.figures)
    curves = sorted(set(titles) if declared else {c for s in rows for c in s.curves})
    for curve in curves:
        if any(curve in s.curves for s in rows):
            rel = f"img/{stem}_curve_{_slug(curve)}.png"
            curve_plot(paper, table, profile, rows, curve, out / rel, titles.get(curve, ""))
            made.append(rel)
    return made
