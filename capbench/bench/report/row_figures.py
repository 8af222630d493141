"""Images a row drew itself (``RunRecord.extra["figures"]``: ICMLM's attention maps, say), put
on the page under the row's table.

A plot of numbers is made from the records (``plots.py``); a qualitative figure can only be drawn
by the row, where the model is loaded. The row lists the PNG files it wrote; the page copies
those of the row's latest run next to its own plots, so the page stays one self-contained file
and a later run's workdir cleanup does not break it. A listed file that is gone is left out and
counted, never an error: the numbers on the page do not depend on it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from capbench.atomic import atomic_path
from capbench.bench.paper import Paper, Table
from capbench.bench.report.plots import _slug
from capbench.bench.summary import RowSummary

PER_ROW = 6  # figures shown per row and profile (the first ones the row listed)


def row_figures(
    paper: Paper, table: Table, profile: str, summaries: list[RowSummary], out: Path
) -> list[str]:
    """Copy the latest record's ``extra.figures`` of every row of ``table`` into ``out/img``;
    returns the copies' paths relative to ``out``, in row order."""
    made: list[str] = []
    for s in summaries:
        if s.ref.table.id != table.id or s.profile != profile or not s.records:
            continue
        latest = max(s.records, key=lambda r: r.finished)
        listed = latest.extra.get("figures") or []
        for src in [Path(str(f)) for f in listed][:PER_ROW]:
            if not src.is_file():
                continue
            rel = f"img/{_slug(f'{paper.key}_{table.id}_{profile}_{s.ref.row.id}_{src.name}')}"
            with atomic_path(out / rel, suffix=".png") as tmp:
                shutil.copyfile(src, tmp)
            made.append(rel)
    return made
