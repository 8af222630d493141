"""Figure 3 of Gordo & Larlus 2017: Grad-CAM grounding of a query and its best match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from capbench.eval.protocols.semantic_retrieval import EvalData
from capbench.methods.protocol import RowContext


def explain_pair(
    model: Any, image_a: Any, image_b: Any, longest_side: int | None, k: int = 5
) -> tuple[Any, Any]:
    """Grad-CAM overlays of two decoded RGB images (PIL) side by side (a PIL image) and the
    grounding itself.

    Images are resized without padding, so the heat maps line up with the pictures.
    """
    from capbench.data.images import build_transform
    from capbench.eval.grounding import ground_pair, overlay, side_by_side

    transform = build_transform(longest_side=longest_side, pad_to_square=False)
    model.eval()
    a, b = (transform(img) for img in (image_a, image_b))
    g = ground_pair(model.conv_features, model.pool_features, a, b, k=k)
    panels = [overlay(image_a, g.heat_a), overlay(image_b, g.heat_b)]
    return side_by_side(panels), g


def figure_dir(ctx: RowContext, name: str) -> Path:
    """``<results>/gordo2017/<name>-<profile>``: beside the runner's ``work`` folder when the
    row runs under the runner, else under ``$CAPBENCH_RESULTS``."""
    from capbench.paths import results_root

    work = Path(ctx.workdir).parent
    base = work.parent if work.name == "work" else results_root() / "gordo2017"
    return base / f"{name}-{ctx.profile}"


def write_figure3(
    model: Any,
    ev: EvalData,
    db_emb: np.ndarray,
    longest_side: int | None,
    row_name: str,
    ctx: RowContext,
    n_pairs: int,
) -> list[str]:
    """Grounded pairs (Figure 3): each of the first queries with its best database match."""
    from capbench.data.images import load_rgb

    out_dir = figure_dir(ctx, "figure3")
    out_dir.mkdir(parents=True, exist_ok=True)
    db = ev.images[: ev.n_database]
    written: list[str] = []
    for qi in (int(q) for q in ev.queries[:n_pairs]):
        sims = db_emb[: ev.n_database] @ db_emb[qi]
        sims[qi] = -np.inf
        di = int(np.argmax(sims))
        images = (load_rgb(db[qi].image_path), load_rgb(db[di].image_path))
        pair, _ = explain_pair(model, *images, longest_side)
        path = out_dir / f"{row_name}_{db[qi].image_id}_{db[di].image_id}.png"
        pair.save(path)
        written.append(str(path))
    return written
