"""Rows that read another row's result.

A row config may name another paper's row with a mapping ``{kind: paper_row, paper: P, row:
R}``: the suite's ``encoder`` (score that row's checkpoint) and gordo2017's generated-captions
row (caption the test images with mopuri2017's Show-and-Tell) do. Two things follow, both here
so that every such link behaves the same:

* ``linked_rows``: the rows a config links to, so a SLURM launcher submits them first and makes
  the linking row wait (``afterok``);
* ``paper_row_record``: the linked row's run record for this profile and seed, with the row's
  *current* config, running the row through the runner when it has none (never stale weights,
  never a second training of what a paper row trains).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _links(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        if node.get("kind") == "paper_row" and node.get("paper") and node.get("row"):
            yield str(node["paper"]), str(node["row"])
        for value in node.values():
            yield from _links(value)
    elif isinstance(node, list):
        for value in node:
            yield from _links(value)


def linked_rows(config: dict[str, Any]) -> list[tuple[str, str]]:
    """``(paper, row)`` of every ``{kind: paper_row}`` link anywhere in a resolved row config."""
    return sorted(set(_links(config)))


def paper_row_record(
    paper: str, row: str, profile: str, seed: int, results: Path, data_root: Path
) -> Any:
    """The run record of ``paper``/``row`` for this profile and seed, running the row first when
    it has none (the record must match the row's current config)."""
    from capbench.bench.catalog import Catalog
    from capbench.bench.record import read_record
    from capbench.bench.runner import RunOptions, ensure_scenes_data, execute, plan

    catalog = Catalog.discover([])
    # force: plan every seed's job, done or not (a done one is read below, never rerun)
    options = RunOptions(
        profile=profile,
        seeds=seed + 1,
        force=True,
        results=results,
        data_root=data_root,
        progress=False,
    )
    planned = plan(catalog, paper, options, rows=[row])
    if planned.errors:
        raise ValueError(f"{paper}/{row}: {planned.errors[0][1]}")
    jobs = [j for j in planned.jobs if j.seed == seed]
    if not jobs:
        why = "; ".join(f"{name}: {reason}" for name, reason in planned.skipped) or "no such row"
        raise ValueError(f"{paper}/{row} has no {profile} run to read ({why})")
    job = jobs[0]
    if job.is_done():
        return read_record(job.record_path)
    print(f"{paper}/{row} ({profile}, seed {seed}) has no record: running it first", flush=True)
    ensure_scenes_data([job])
    return execute(job)
