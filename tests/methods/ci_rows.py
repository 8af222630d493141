"""One paper's ci row run end to end by its row target, in a test's temp folder: what the
metric-path tests (a row reports exactly what ``capbench.eval`` gives for its model) start from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from capbench.bench.config import resolve_config
from capbench.methods.protocol import RowContext, RowResult

ROOT = Path(__file__).resolve().parents[2]


def run_ci_row(
    run_row: Callable[[dict[str, Any], RowContext], RowResult],
    paper: str,
    row: str,
    data_root: Path,
    workdir: Path,
    devices: int = 1,
) -> tuple[dict[str, Any], RowContext, RowResult]:
    """``(config, ctx, result)`` of ``benchmarks/<paper>/<row>.ci.yaml`` run by ``run_row`` on
    the tiny scenes data at ``data_root``, seed 0, on ``devices`` CPU processes (more than one:
    called on every rank of a process group), its work in ``workdir``."""
    config = resolve_config(ROOT / "benchmarks" / paper / f"{row}.ci.yaml")
    ctx = RowContext(
        workdir=workdir, seed=0, profile="ci", data_root=Path(data_root), accelerator="cpu",
        devices=devices, progress=False,
    )  # fmt: skip
    return config, ctx, run_row(config, ctx)
