"""The suite's row target: build the row's encoder, score it on every configured protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capbench.methods.protocol import RowContext, RowResult
from capbench.suite.config import PROTOCOLS, row_config
from capbench.suite.protocols import COLUMN_METRICS, COLUMNS


def run_row(config: dict[str, Any], ctx: RowContext) -> RowResult:
    """One encoder, every protocol of ``config['protocols']``; the others are recorded as not
    run for this row (with that reason), never left blank."""
    from capbench import paths
    from capbench.suite.sources import build_encoder

    cfg = row_config(config)
    results = Path(ctx.results) if ctx.results else paths.results_root()
    encoder = build_encoder(cfg.encoder, ctx.profile, ctx.seed, results, Path(ctx.data_root))
    metrics: dict[str, float] = {}
    not_applicable: dict[str, str] = {}
    extra: dict[str, Any] = {"encoder": dict(encoder.info), "encoder_name": encoder.name}
    n_scored = 0
    for name in PROTOCOLS:
        if name not in cfg.protocols:
            for key in COLUMN_METRICS[name]:
                not_applicable[key] = "protocol not configured for this row"
            continue
        col = COLUMNS[name](encoder, cfg, Path(ctx.data_root))
        metrics.update(col.metrics)
        not_applicable.update(col.not_applicable)
        extra.update(col.extra)
        n_scored += col.n_scored
    extra["not_applicable"] = not_applicable
    return RowResult(metrics=metrics, n_scored=n_scored, extra=extra)
