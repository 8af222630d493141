"""Table 1, row 7 ("Generated captions: tf-idf"): rank the test images by the tf-idf of captions
that an image captioner writes for them, with no human text at test time.

The captioner is mopuri2017's Show-and-Tell (``capbench.models.captioners``): on the scenes and
ci profiles the row links to ``mopuri2017/show_and_tell`` (trained on the scenes COCO captions,
disjoint from the Visual Genome test images), on the paper profile it is a checkpoint the user
gives. Our reading of the paper (which says only "tf-idf" over generated captions): each image's
generated caption is projected into the *relevance's* tf-idf space (vocabulary and idf fitted on
the training split's region phrases), so the row measures how much of the relevance a caption
recovers. The captions are cached per (checkpoint, images), since beam search dominates the row.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from capbench.atomic import atomic_write_text
from capbench.cache_entry import json_object, read_cached
from capbench.eval.protocols.semantic_retrieval import EvalData, score_sparse
from capbench.methods.protocol import RowContext, RowResult
from capbench.methods.semantic_retrieval.config import SemanticRetrievalRow

EXAMPLES = 8  # generated captions kept in the record, to read beside the numbers


def captioner_checkpoint(captioner: Any, ctx: RowContext) -> Path:
    """The checkpoint file ``row.captioner`` names: a path, or the checkpoint in the run record of
    a linked ``{kind: paper_row}`` row (run first when it has no record)."""
    if captioner is None:
        raise ValueError(
            "row.captioner is not set: a Show-and-Tell checkpoint path, or {kind: paper_row, "
            "paper: mopuri2017, row: show_and_tell}"
        )
    if isinstance(captioner, dict):
        from capbench.bench.linked_rows import paper_row_record

        if captioner.get("kind") != "paper_row":
            raise ValueError(f"row.captioner: expected {{kind: paper_row, ...}}, got {captioner}")
        if ctx.results is None:
            raise ValueError("row.captioner links to a row, but the runner gave no results root")
        paper, row = str(captioner.get("paper")), str(captioner.get("row"))
        record = paper_row_record(
            paper, row, ctx.profile, int(ctx.seed), ctx.results, Path(ctx.data_root)
        )
        if not record.checkpoint:
            raise ValueError(f"row.captioner: the run record of {paper}/{row} names no checkpoint")
        captioner = record.checkpoint
    path = Path(str(captioner)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"row.captioner: no checkpoint at {path} (a Show-and-Tell .ckpt, as `capbench "
            "reproduce mopuri2017 --rows show_and_tell` trains)"
        )
    return path


def _cache_file(checkpoint: Path, image_ids: list[str]) -> Path:
    from capbench.paths import cache_root

    stat = checkpoint.stat()
    h = hashlib.sha256(f"{checkpoint.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|".encode())
    h.update("\n".join(image_ids).encode())
    return cache_root() / "gordo2017" / "generated_captions" / f"{h.hexdigest()[:24]}.json"


def _captions_of(cached: dict, ids: list[str]) -> dict[str, str]:
    """The cached captions, checked: one string per image id."""
    if not all(isinstance(cached.get(i), str) for i in ids):
        raise ValueError("not one caption per image id")
    return cached


def caption_images(checkpoint: Path, records: list[Any], batch_size: int = 32) -> dict[str, str]:
    """Show-and-Tell's beam-searched caption of every record's image, cached."""
    from capbench.methods.caption_fusion.captioning import (
        ShowAndTellModule,
        generate_captions,
        load_captioner,
    )

    ids = [r.image_id for r in records]
    cache = _cache_file(checkpoint, ids)
    cached = read_cached(cache, lambda: _captions_of(json_object(cache), ids))
    if cached is not None:
        return cached
    module = load_captioner(checkpoint)
    if not isinstance(module, ShowAndTellModule):
        raise ValueError(
            f"row.captioner: {checkpoint} is a {type(module).__name__}; Table 1's row captions "
            "whole images, so it needs a Show-and-Tell checkpoint"
        )
    captions = generate_captions(module, records, batch_size=batch_size)
    atomic_write_text(cache, json.dumps(captions, indent=1))
    return captions


def row_generated_captions(cfg: SemanticRetrievalRow, ctx: RowContext, ev: EvalData) -> RowResult:
    """Score the tf-idf of the generated captions against the users and the relevance."""
    checkpoint = captioner_checkpoint(cfg.row.captioner, ctx)
    captions = caption_images(checkpoint, ev.images)
    docs = [captions[r.image_id] for r in ev.images]
    x = ev.tfidf.transform(docs)
    metrics, curves, n = score_sparse(ev, x, progress=ctx.progress)
    # a captioner that writes one caption for every image (the 2-epoch ci one does) ranks every
    # database image equally: PCC (and possibly NDCG) is undefined, not a number to record
    undefined = sorted(k for k, v in metrics.items() if not np.isfinite(v))
    metrics = {k: v for k, v in metrics.items() if k not in undefined}
    words = [len(d.split()) for d in docs]
    extra: dict[str, Any] = {
        "captioner": str(checkpoint),
        "mean_caption_words": float(np.mean(words)) if words else 0.0,
        "empty_vectors": int((x.getnnz(axis=1) == 0).sum()),
        "distinct_captions": len(set(docs)),
        "examples": {r.image_id: captions[r.image_id] for r in ev.images[:EXAMPLES]},
    }
    if undefined:
        extra["undefined_metrics"] = {
            k: "constant scores: every image got the same caption" for k in undefined
        }
    return RowResult(metrics=metrics, n_scored=n, curves=curves, dataset=ev.dataset, extra=extra)
