"""The suite's columns: each scores an encoder with one protocol of ``capbench.eval.protocols``.

A column returns its metrics, or a reason it does not apply (e.g. "no text tower"): the reason
goes into the run record and the matrix shows it instead of a blank. Features are L2-normalised
wherever a protocol compares them by dot product, so every encoder is scored by cosine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from capbench.suite.config import SuiteRow
from capbench.suite.encoder import Encoder


@dataclass
class ColumnResult:
    metrics: dict[str, float] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)  # metric -> why
    extra: dict[str, Any] = field(default_factory=dict)
    n_scored: int = 0


def _finite(x: Tensor, what: str) -> tuple[np.ndarray, int]:
    """Features as float64 with unreadable images (NaN rows) zeroed, and how many there were."""
    from capbench.eval.unreadable import zero_unreadable_rows

    arr = np.asarray(x.detach().cpu().double())
    return arr, zero_unreadable_rows(arr, what)


def _unit(arr: np.ndarray) -> np.ndarray:
    return arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)


def voc07_column(enc: Encoder, cfg: SuiteRow, data_root: Path) -> ColumnResult:
    from capbench.eval.protocols import voc07_classification as voc07

    voc = voc07.load_voc_data(cfg.voc07.data, data_root)
    train, bad_tr = _finite(enc.images(voc.train), "VOC07 trainval")
    test, bad_te = _finite(enc.images(voc.test), "VOC07 test")
    res = voc07.score_features(train, test, voc, cfg.voc07.eval)
    extra = {
        "chosen_c": res["chosen_c"],
        "map_11pt": res["map_11pt"],
        "unreadable": bad_tr + bad_te,
    }
    return ColumnResult({"voc07_map": res["mAP"]}, extra=extra, n_scored=len(voc.test))


def semantic_column(enc: Encoder, cfg: SuiteRow, data_root: Path) -> ColumnResult:
    from capbench.eval.protocols import semantic_retrieval as sr

    s = cfg.semantic_retrieval
    ev = sr.load_eval_data(s.data, s.eval, data_root, s.tfidf)
    feats, bad = _finite(enc.images(ev.images), "semantic retrieval images")
    feats = _unit(feats)
    metrics, _curves, n = sr.score_embeddings(ev, feats, feats)
    out = {"sr_ndcg_auc": metrics["ndcg_auc"], "sr_pcc_auc": metrics["pcc_auc"]}
    na = {}
    if "us" in metrics:
        out["sr_us"] = metrics["us"]
    else:
        na["sr_us"] = "no user study in this dataset"
    return ColumnResult(out, na, {"unreadable_sr": bad}, n)


def graded_column(enc: Encoder, cfg: SuiteRow, data_root: Path) -> ColumnResult:
    from capbench.eval.protocols import graded_retrieval as graded

    g = cfg.graded_retrieval
    data = graded.load_graded_data(g.data, data_root)
    q, bad_q = _finite(enc.images(data.queries), "graded queries")
    r, bad_r = _finite(enc.images(data.references), "graded references")
    scores = graded.score_features(q, r, data, g.eval.ks)
    chance = graded.random_ranking_ndcg(data, g.eval.ks)["ndcg_mean"]
    extra = {
        "graded_ndcg_at_k": scores,
        "graded_chance": chance,
        "unreadable_graded": bad_q + bad_r,
    }
    return ColumnResult({"graded_ndcg": scores["ndcg_mean"]}, extra=extra, n_scored=len(q))


def coco_column(enc: Encoder, cfg: SuiteRow, data_root: Path) -> ColumnResult:
    if enc.texts is None:
        return ColumnResult(not_applicable={"coco_rsum": enc.no_text_reason})
    from capbench.eval.protocols import image_text_retrieval as itr

    c = cfg.coco
    ev = itr.load_eval_data(c.data, c.eval, data_root)
    img, bad = _finite(enc.images(ev.images), "COCO test images")
    txt = np.asarray(enc.texts(ev.captions).detach().cpu().double())
    scores = itr.score_embeddings(ev, _unit(img), _unit(txt), c.eval, measure="dot")
    return ColumnResult(
        {"coco_rsum": scores["rsum_all"]},
        extra={"coco_recall": scores, "unreadable_coco": bad},
        n_scored=len(ev.images),
    )


def cub_column(enc: Encoder, cfg: SuiteRow, data_root: Path) -> ColumnResult:
    if enc.texts is None:
        return ColumnResult(not_applicable={"cub_top1": enc.no_text_reason})
    from capbench.data import read
    from capbench.eval.protocols import zero_shot as zs

    c = cfg.cub
    root = zs.dataset_root(c.data, data_root)
    test = read(c.data.name, root, c.data.test_split, **c.data.reader_options)
    img, bad = _finite(enc.images(test), "CUB test images")
    captions = [(cap, int(r.label)) for r in test for cap in r.captions]  # type: ignore[arg-type]
    txt = np.asarray(enc.texts([cap for cap, _ in captions]).detach().cpu().double())
    scores = zs.score_zero_shot(
        torch.from_numpy(img),
        [int(r.label) for r in test],  # type: ignore[arg-type]
        torch.from_numpy(txt),
        [y for _, y in captions],
        c.eval.ap_k,
    )
    extra = {"cub_ap50": scores["ap50"], "cub_chance_top1": zs.chance_top1([int(r.label) for r in test]),  # type: ignore[arg-type]
             "unreadable_cub": bad}  # fmt: skip
    return ColumnResult({"cub_top1": scores["top1"]}, extra=extra, n_scored=len(test))


COLUMNS: dict[str, Callable[[Encoder, SuiteRow, Path], ColumnResult]] = {
    "voc07": voc07_column,
    "semantic_retrieval": semantic_column,
    "graded_retrieval": graded_column,
    "coco": coco_column,
    "cub": cub_column,
}
# The metrics each column fills (the matrix's columns; paper.yaml lists the same keys).
COLUMN_METRICS: dict[str, tuple[str, ...]] = {
    "voc07": ("voc07_map",),
    "semantic_retrieval": ("sr_ndcg_auc", "sr_pcc_auc", "sr_us"),
    "graded_retrieval": ("graded_ndcg",),
    "coco": ("coco_rsum",),
    "cub": ("cub_top1",),
}
