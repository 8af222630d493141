"""The regression gate: every cell with a reference must be reproduced within its tolerance.

Paper profile: reference = the paper's reported number, tolerance from ``paper.yaml``.
Scenes and ci profiles: reference = ``golden_<profile>.yaml``. One line per failing cell, complete enough
to act on without opening any file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from capbench.bench import constraints
from capbench.bench.catalog import Catalog
from capbench.bench.golden import golden_name, load_golden
from capbench.bench.paper import Paper
from capbench.bench.summary import FAILING, NOT_MEASURED, NOT_RUN, current_hash, fmt, summarize


@dataclass
class CheckResult:
    failures: list[str]
    notes: list[str]
    checked: int  # cells with a reference

    @property
    def ok(self) -> bool:
        return not self.failures


def check(
    catalog: Catalog,
    results: Path,
    profile: str,
    paper: str | None = None,
    table: str | None = None,
    rows: set[str] | None = None,
    strict: bool = False,
) -> CheckResult:
    """Every referenced cell of the rows that have records; a row never run is a note, or a
    failure with ``strict`` (CI: it cannot pass by running less). ``table``/``rows`` narrow it;
    a table or row that no selected paper has is a ``KeyError`` naming it, not "nothing to
    check"."""
    failures: list[str] = []
    notes: list[str] = []
    checked = 0
    packages: list[dict[str, str | None]] = []  # of every record looked at
    weak: dict[str, list[str]] = {}  # paper -> referenced cells a drop to 0 would pass
    unmet_by_config: dict[Path, str] = {}  # row config -> what this machine lacks to run it
    papers = [catalog.paper(paper)] if paper else list(catalog.papers.values())
    _check_selection(papers, paper, table, rows)
    for p in papers:
        golden = load_golden(p, profile) if profile != "paper" else {}
        if profile != "paper" and not golden:
            msg = (
                f"{p.key}: no {golden_name(profile)}; write one with "
                f"`capbench leaderboard golden {p.key} --profile {profile}`"
            )
            (failures if paper else notes).append(("FAIL " if paper else "skip ") + msg)
            continue
        stale = stale_golden_rows(catalog, p, profile, golden)
        if stale:
            notes.append(_stale_note(p.key, stale, profile))
        for s in summarize(catalog, results, profile, p.key):
            if (table and s.ref.table.id != table) or (rows and s.ref.row.id not in rows):
                continue
            packages += [r.packages for r in s.records]
            for mkey, cell in s.cells.items():
                if cell.reference is None or cell.status == "pending":
                    continue
                checked += 1
                if _collapse_passes(cell.reference, cell.tolerance):
                    weak.setdefault(p.key, []).append(f"{s.ref.table.id}/{s.ref.row.id}/{mkey}")
                if cell.status not in FAILING:
                    continue
                where = f"{p.key} {s.ref.table.id} {s.ref.row.id} {mkey}"
                if cell.status == NOT_RUN and profile not in s.ref.row.configs:
                    failures.append(
                        f"FAIL {where}: no {profile} config for this row (add {s.ref.row.id}.{profile}.yaml"
                        f" or a configs entry in {p.path}); reference {fmt(cell.reference)}"
                    )
                    continue
                if cell.status == NOT_MEASURED:
                    failures.append(
                        f"FAIL {where}: the {profile} record(s) of this row have no {mkey}; "
                        f"reference {fmt(cell.reference)}"
                    )
                    continue
                if cell.status == NOT_RUN:
                    cfg_path = s.ref.row.configs[profile]  # a row without one failed above
                    if cfg_path not in unmet_by_config:  # once per row, not per cell
                        unmet_by_config[cfg_path] = _unmet_requirements(cfg_path)
                    if unmet := unmet_by_config[cfg_path]:
                        # a row the runner skips here with a stated reason (METEOR without
                        # Java): not a failure of the code under test, and said, not passed
                        checked -= 1
                        notes.append(
                            f"skip {where}: needs {unmet}; reference {fmt(cell.reference)}"
                        )
                        continue
                    extra = f" ({s.stale} record(s) of another config ignored)" if s.stale else ""
                    if not strict:
                        checked -= 1  # nothing was compared for this cell
                    (failures if strict else notes).append(
                        f"{'FAIL' if strict else 'not run'} {where}: no {profile} record{extra}; "
                        f"reference {fmt(cell.reference)}"
                        f" (run `capbench reproduce {p.key} --profile {profile} --table {s.ref.table.id} --rows {s.ref.row.id}`)"
                    )
                    continue
                failures.append(
                    f"FAIL {where}: reproduced {fmt(cell.mean)} (n={cell.n}) vs reference "
                    f"{fmt(cell.reference)}, delta {cell.delta:+.4g}, tolerance {fmt(cell.tolerance)} -> {cell.status}"
                )
    notes += package_drift(packages)
    notes += [_weak_note(key, cells, profile) for key, cells in weak.items()]
    return CheckResult(failures, notes, checked)


def _unmet_requirements(config_path: Path) -> str:
    """What this machine lacks for the row (its ``requires:`` the runner skips it for), or ""."""
    from capbench.bench.config import missing_requirements, requirement_text, resolve_config

    missing = missing_requirements(resolve_config(config_path))
    return "; ".join(requirement_text(key, reason) for key, reason in missing)


def _collapse_passes(reference: float | None, tolerance: float | None) -> bool:
    """Whether a run that scored 0 would pass this cell: its tolerance (the measured spread of
    a high-variance metric at a small size) reaches down to zero. Such a cell still gates a
    move the other way, and a collapse shows in the paper's other cells, but a reader of
    "ok" should know it gates little."""
    return bool(reference) and tolerance is not None and tolerance >= abs(reference)


def _weak_note(paper: str, cells: list[str], profile: str) -> str:
    shown = ", ".join(cells[:6]) + (f", ... ({len(cells) - 6} more)" if len(cells) > 6 else "")
    return (
        f"weak gate {paper} ({profile}): {len(cells)} cell(s) whose tolerance reaches zero, so "
        f"a collapse to 0 would pass them: {shown}"
    )


def stale_golden_rows(
    catalog: Catalog, paper: Paper, profile: str, golden: dict | None = None
) -> list[str]:
    """The golden rows of ``paper`` written from another config than the row's current one, as
    ``table/row (golden <hash>, config <hash>)``; a golden row whose config is gone counts too.

    ``summarize`` compares records of the current config with whatever the golden file holds;
    a config edited after its golden numbers were written (a new key in a shared base file, a
    changed default) leaves numbers that no current command reproduces. Most such edits move
    nothing, but only a rerun shows which. ``golden``: the paper's file already loaded."""
    golden = load_golden(paper, profile) if golden is None else golden
    current = {(r.table.id, r.row.id): current_hash(r, profile) for r in catalog.rows(paper.key)}
    stale = []
    for tid, rows in golden.items():
        for rid, metrics in (rows or {}).items():
            written = {str(c.get("config_hash")) for c in (metrics or {}).values()}
            now = current.get((tid, rid))
            if now is None or written != {now}:
                shown = ",".join(sorted(h[:8] for h in written))
                stale.append(f"{tid}/{rid} (golden {shown}, config {now[:8] if now else 'none'})")
    return stale


def _stale_note(paper: str, rows: list[str], profile: str) -> str:
    shown = ", ".join(rows[:4]) + (f", ... ({len(rows) - 4} more)" if len(rows) > 4 else "")
    return (
        f"stale golden {paper} ({profile}): {len(rows)} row(s) written from another config than "
        f"the current one: {shown}; rerun them from 3 seeds and `capbench leaderboard golden "
        f"{paper} --profile {profile}`"
    )


def _check_selection(
    papers: list[Paper], paper: str | None, table: str | None, rows: set[str] | None
) -> None:
    """Raise ``KeyError`` naming a ``table`` or ``rows`` that none of ``papers`` has."""
    where = f"paper {paper!r}" if paper else "any paper"
    if table is not None and not any(table in p.tables for p in papers):
        known = sorted({t for p in papers for t in p.tables})
        raise KeyError(f"unknown table {table!r} in {where}; tables: {', '.join(known)}")
    if rows:
        known = {
            r
            for p in papers
            for t in p.tables.values()
            if table is None or t.id == table
            for r in t.rows
        }
        missing = sorted(rows - known)
        if missing:
            scope = where + (f", table {table!r}" if table else "")
            raise KeyError(f"unknown rows {missing} in {scope}; rows: {', '.join(sorted(known))}")


def package_drift(packages: list[dict[str, str | None]]) -> list[str]:
    """A note when the records were made with other package versions than the checkout's
    ``constraints.txt`` pins (the versions the golden numbers were made with): the first place
    to look when a number moved without a code change."""
    path = constraints.default_path()
    if path is None or not packages:
        return []
    pins = constraints.pinned(path)
    drifted = sorted({d for p in packages for d in constraints.drift(p, pins)})
    if not drifted:
        return []
    return [f"note: records made with other versions than {path.name} pins: {', '.join(drifted)}"]
