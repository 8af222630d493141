"""From run records to leaderboard cells: mean +- std over seeds, reference, delta, status.

One function decides a cell's status so that the rendered tables and the regression gate
can never disagree. The reference is the paper's reported number on the ``paper`` profile and
the golden number on the ``scenes`` profile (the scenes data differ from the paper's, so only a
number we recorded ourselves is a fair reference there).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from capbench.bench.catalog import Catalog, RowRef
from capbench.bench.config import config_hash, resolve_config
from capbench.bench.golden import load_golden
from capbench.bench.paper import Metric, PaperSpecError
from capbench.bench.record import RunRecord, load_records

OK = "ok"
WITHIN = "within tolerance"
REGRESSION = "regression"
ABOVE = "above tolerance"  # better than the reference by more than the tolerance: unexplained
NA = "n/a"
PENDING = "pending"
NOT_RUN = "not run"
NOT_MEASURED = "not measured"  # the row ran, its records lack this metric (e.g. no user study)
FAILING = (REGRESSION, ABOVE, NOT_RUN, NOT_MEASURED)


@dataclass
class Cell:
    metric: Metric
    reported: float | None
    reported_std: float | None
    reference: float | None  # reported (paper profile) or golden (scenes profile)
    tolerance: float | None
    mean: float | None
    std: float | None
    n: int
    status: str

    @property
    def delta(self) -> float | None:
        if self.mean is None or self.reference is None:
            return None
        delta = self.mean - self.reference
        return 0.0 if abs(delta) <= 1e-9 * max(1.0, abs(self.reference)) else delta


@dataclass
class RowSummary:
    ref: RowRef
    profile: str
    cells: dict[str, Cell]
    records: list[RunRecord]
    seeds: list[int]
    stale: int  # records of this row made with another config hash (ignored)
    overridden: bool = False  # no record matches the config file; the latest config's are shown
    curves: dict[str, tuple[list[float], list[float]]] = field(
        default_factory=dict
    )  # mean over seeds


def status_of(
    metric: Metric,
    reference: float | None,
    tolerance: float | None,
    mean: float | None,
    pending: bool,
    ran: bool = False,
) -> str:
    """The one rule: pending, n/a (no reference), not run / not measured (``ran``: records exist
    but none has the metric), ok / within tolerance / regression / above tolerance (better than
    the reference by more than the tolerance)."""
    if pending:
        return PENDING
    if reference is None:
        return NA
    if mean is None:
        return NOT_MEASURED if ran else NOT_RUN
    tol = tolerance or 0.0
    eps = 1e-9 * max(1.0, abs(reference))
    gain = (mean - reference) if metric.higher_is_better else (reference - mean)
    if gain >= -eps:
        return OK if gain <= tol + eps else ABOVE
    return WITHIN if -gain <= tol + eps else REGRESSION


def current_hash(ref: RowRef, profile: str) -> str | None:
    cfg = ref.row.configs.get(profile)
    if cfg is None:
        return None
    try:
        return config_hash(resolve_config(cfg))
    except PaperSpecError:
        raise
    except Exception as err:  # an unreadable config must be visible, not a silent 'not run'
        raise PaperSpecError(cfg, f"cannot resolve config: {err}") from err


def _mean_curves(records: list[RunRecord]) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    names = sorted({k for r in records for k in r.curves})
    for name in names:
        curves = [r.curves[name] for r in records if name in r.curves]
        xs = curves[0]["x"]
        same = [c for c in curves if c["x"] == xs]  # average only curves sampled at the same x
        ys = [statistics.fmean(vals) for vals in zip(*(c["y"] for c in same))]
        out[name] = (list(xs), ys)
    return out


def summarize(
    catalog: Catalog,
    results: Path,
    profile: str,
    paper: str | None = None,
    records: list[RunRecord] | None = None,
) -> list[RowSummary]:
    """Every row of the selected papers with its cells for ``profile``."""
    papers = [catalog.paper(paper)] if paper else list(catalog.papers.values())
    if records is None:
        records = [r for p in papers for r in load_records(results, p.key)]
    by_row: dict[tuple[str, str, str], list[RunRecord]] = defaultdict(list)
    for r in records:
        if r.profile == profile:
            by_row[(r.paper, r.table, r.row)].append(r)
    out: list[RowSummary] = []
    for p in papers:
        golden = load_golden(p, profile) if profile != "paper" else {}
        for ref in catalog.rows(p.key):
            recs = by_row.get((p.key, ref.table.id, ref.row.id), [])
            h = current_hash(ref, profile)
            current = [r for r in recs if h is None or r.config_hash == h]
            overridden = False
            if not current and recs:  # run with --set overrides: show the latest config's runs
                latest = max(recs, key=lambda r: r.finished).config_hash
                current = [r for r in recs if r.config_hash == latest]
                overridden = True
            current.sort(key=lambda r: r.seed)
            cells: dict[str, Cell] = {}
            for mkey, metric in ref.table.metrics.items():
                values = [r.metrics[mkey] * metric.scale for r in current if mkey in r.metrics]
                mean = statistics.fmean(values) if values else None
                std = statistics.stdev(values) if len(values) > 1 else (0.0 if values else None)
                reported = ref.row.reported.get(mkey)
                if profile == "paper":
                    reference, tol = reported, metric.tolerance
                else:
                    g = golden.get(ref.table.id, {}).get(ref.row.id, {}).get(mkey)
                    reference = None if g is None else g["value"]
                    tol = None if g is None else g["tolerance"]
                cells[mkey] = Cell(
                    metric=metric,
                    reported=reported,
                    reported_std=ref.row.reported_std.get(mkey),
                    reference=reference,
                    tolerance=tol,
                    mean=mean,
                    std=std,
                    n=len(values),
                    status=status_of(
                        metric, reference, tol, mean, bool(ref.row.pending), ran=bool(current)
                    ),
                )
            out.append(
                RowSummary(
                    ref=ref,
                    profile=profile,
                    cells=cells,
                    records=current,
                    seeds=[r.seed for r in current],
                    stale=len(recs) - len(current),
                    overridden=overridden,
                    curves=_mean_curves(current),
                )
            )
    return out


def fmt(value: float | None, digits: int = 4) -> str:
    """Numbers as the tables show them; unknown is 'n/a', never a made-up value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}g}"
