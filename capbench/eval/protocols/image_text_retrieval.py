"""The image-text retrieval protocol of COCO / Flickr papers (VSE, VSE++, Malali & Keller), for
any pair of image and caption embeddings.

Recall@K (a hit rate: a query counts when ANY of its ground truth is in the top K, see
:func:`capbench.eval.metrics.recall_at_k`) in both directions and rsum, on the Karpathy test
split: COCO "5K" ranks against every test image (5,000) and its captions (25,000), COCO "1K" is
the mean over 5 folds of 1,000 consecutive images; Flickr30k and Flickr8k rank their 1,000 test
images. The fold count and size are config values so the scenes data (1,500 test images) runs
the same code with smaller folds.

Scores. ``measure="l2"`` ranks by Euclidean distance (Malali & Keller: semantic similarity is
approximated by L2 distances), ``"dot"`` by inner product (VSE0/VSE++'s cosine on normalised
embeddings). Both go through the shared exact engine (:func:`capbench.eval.retrieval.
search_topk`, memory-bounded, ties broken by the lower index): the L2 ranking of a query q is
the inner-product ranking of ``[2q, -1]`` against ``[d, |d|^2]`` (``2 q.d - |d|^2 = |q|^2 -
|q - d|^2``, and ``|q|^2`` is constant per query). Only ``max(K)`` results per query are kept,
so memory stays bounded at 100k x 500k.

Quantized search. A database stored as product-quantization codes is searched by asymmetric
distance (continuous query, coded items): the distance to the codes' reconstruction, which is
what ADC computes. :func:`exact_code_recall` scores it with the exact engine on the
reconstructions; :func:`faiss_pq_search` builds a faiss ``IndexPQ`` from the same codebooks and
codes, so a test can check one against the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from capbench.data.records import CaptionedImage
from capbench.eval.protocols._common import resolve_dataset_root

MEASURES = ("l2", "dot")
DATA_CARDS = {
    "coco": "data_cards/coco.md",
    "flickr30k": "data_cards/flickr30k.md",
    "flickr8k": "data_cards/flickr8k.md",
}


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` section: which dataset and layout."""

    name: str = "coco"  # the reader: coco | flickr30k | flickr8k
    root: str = "coco"  # absolute, or relative to $CAPBENCH_DATA / the scenes folder
    train_split: str = "train"  # COCO Karpathy train = train + restval (capbench's reader)
    # reader keywords; COCO's Karpathy splits need {"splits": "karpathy"} (base configs set it)
    reader_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalConfig:
    """The ``eval`` section: test split, folds and K."""

    split: str = "test"  # the Karpathy test split (COCO 5,000 images; Flickr 1,000)
    folds: int = 5  # COCO 1K: 5 folds (VSE++ ``fold5=True``); 0 = no fold protocol (Flickr)
    fold_size: int = 1_000  # COCO 1K: 1,000 images per fold
    max_images: int | None = None  # None = every test image (COCO 5K: 5,000)
    ks: tuple[int, ...] = (1, 5, 10)  # Recall@1/5/10, as every paper of this line reports
    memory_budget_mb: int = 1024  # working memory of one search call


@dataclass
class EvalData:
    """Test images and their captions in order: ``caption_image[j]`` is caption j's image."""

    images: list[CaptionedImage]
    captions: list[str]
    caption_image: np.ndarray
    dataset: dict[str, Any]


def dataset_root(data: DataConfig, data_root: Path) -> Path:
    """``data.root`` (absolute, or under ``data_root``); a missing folder names the data card."""
    card = DATA_CARDS.get(data.name, "data_cards/README.md")
    return resolve_dataset_root(data.root, data_root, data.name, card)


def build_eval_data(
    records: Sequence[CaptionedImage], cfg: EvalConfig, dataset: dict[str, Any] | None = None
) -> EvalData:
    """The first ``max_images`` test records and every caption of each, in record order."""
    images = list(records)[: cfg.max_images] if cfg.max_images else list(records)
    if not images:
        raise ValueError(f"no test images in split {cfg.split!r}")
    captions: list[str] = []
    owner: list[int] = []
    for i, r in enumerate(images):
        if not r.captions:
            raise ValueError(f"test record {r.image_id} ({r.image_path}) has no caption")
        captions.extend(r.captions)
        owner.extend([i] * len(r.captions))
    return EvalData(images, captions, np.asarray(owner, dtype=np.int64), dict(dataset or {}))


def load_eval_data(data: DataConfig, cfg: EvalConfig, data_root: Path) -> EvalData:
    """Read the test split of ``data`` and :func:`build_eval_data`."""
    from capbench.data import read
    from capbench.data.fingerprint import dataset_fingerprint

    root = dataset_root(data, data_root)
    test = read(data.name, root, cfg.split, **data.reader_options)
    info = {"name": data.name, "root": str(root), "fingerprint": dataset_fingerprint(root)}
    return build_eval_data(test, cfg, info)


def as_inner_product(
    query: torch.Tensor, db: torch.Tensor, measure: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(query, database) whose inner-product ranking is the ``measure`` ranking."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    q, d = query.double(), db.double()
    if measure == "dot":
        return q.float(), d.float()
    q_aug = torch.cat([2.0 * q, -torch.ones(q.shape[0], 1, dtype=q.dtype)], dim=1)
    d_aug = torch.cat([d, (d * d).sum(1, keepdim=True)], dim=1)
    return q_aug.float(), d_aug.float()


def top_k(query: Any, db: Any, k: int, measure: str, memory_budget_mb: int = 1024) -> torch.Tensor:
    """Exact top-``k`` database indices per query, ``(Q, k)``, best first (shared engine)."""
    from capbench.eval.retrieval import search_topk

    q = torch.as_tensor(np.asarray(query, dtype=np.float32))
    d = torch.as_tensor(np.asarray(db, dtype=np.float32))
    qa, da = as_inner_product(q, d, measure)
    _, idx = search_topk(qa, da, k, backend="torch", memory_budget_bytes=memory_budget_mb << 20)
    return idx


def hits_at_k(top: torch.Tensor, gt: torch.Tensor, ks: Sequence[int]) -> dict[int, float]:
    """Recall@K in percent from top-k lists: ``gt[q, i]`` says whether item ``top[q, i]`` is a
    ground truth of query q."""
    first = gt.int().argmax(1)
    first = torch.where(gt.any(1), first, torch.full_like(first, gt.shape[1]))
    return {int(k): float(100.0 * (first < k).double().mean()) for k in ks}


def recall_both_ways(
    img: Any,
    txt: Any,
    caption_image: Any,
    ks: Sequence[int] = (1, 5, 10),
    measure: str = "l2",
    img_db: Any = None,
    txt_db: Any = None,
    memory_budget_mb: int = 1024,
) -> dict[str, float]:
    """``i2t_r{K}``, ``t2i_r{K}`` and ``rsum`` for one set of images and captions.

    Image queries rank ``txt_db`` (default: ``txt``), caption queries rank ``img_db`` (default:
    ``img``): pass code reconstructions there for asymmetric (quantized) search."""
    owner = torch.as_tensor(np.asarray(caption_image)).long()
    img_t = torch.as_tensor(np.asarray(img, dtype=np.float32))
    txt_t = torch.as_tensor(np.asarray(txt, dtype=np.float32))
    if owner.numel() != txt_t.shape[0]:
        raise ValueError(f"caption_image has {owner.numel()} entries for {txt_t.shape[0]} captions")
    if ((owner < 0) | (owner >= img_t.shape[0])).any():
        raise ValueError(f"caption_image must index the {img_t.shape[0]} images")
    txt_db = txt_t if txt_db is None else torch.as_tensor(np.asarray(txt_db, dtype=np.float32))
    img_db = img_t if img_db is None else torch.as_tensor(np.asarray(img_db, dtype=np.float32))
    k = max(ks)
    top_i2t = top_k(img_t, txt_db, min(k, txt_t.shape[0]), measure, memory_budget_mb)
    top_t2i = top_k(txt_t, img_db, min(k, img_t.shape[0]), measure, memory_budget_mb)
    gt_i2t = owner[top_i2t] == torch.arange(img_t.shape[0]).unsqueeze(1)
    gt_t2i = top_t2i == owner.unsqueeze(1)
    out = {f"i2t_r{k}": v for k, v in hits_at_k(top_i2t, gt_i2t, ks).items()}
    out.update({f"t2i_r{k}": v for k, v in hits_at_k(top_t2i, gt_t2i, ks).items()})
    from capbench.eval.metrics import rsum

    out["rsum"] = rsum(out)
    return out


def score_embeddings(
    ev: EvalData,
    img: Any,
    txt: Any,
    cfg: EvalConfig,
    measure: str = "l2",
    img_db: Any = None,
    txt_db: Any = None,
    suffix: str = "",
) -> dict[str, float]:
    """The protocol's metrics: every test image (``*_all``) and, with ``cfg.folds``, the mean
    over folds of ``cfg.fold_size`` consecutive images (``*_1k``; COCO 1K), each key ending in
    ``suffix`` (e.g. ``_pq`` for the quantized database)."""
    owner = np.asarray(ev.caption_image)
    img_a, txt_a = np.asarray(img, np.float32), np.asarray(txt, np.float32)
    idb = img_a if img_db is None else np.asarray(img_db, np.float32)
    tdb = txt_a if txt_db is None else np.asarray(txt_db, np.float32)
    kw = {"ks": cfg.ks, "measure": measure, "memory_budget_mb": cfg.memory_budget_mb}
    full = recall_both_ways(img_a, txt_a, owner, img_db=idb, txt_db=tdb, **kw)
    out = {f"{k}_all{suffix}": v for k, v in full.items()}
    if cfg.folds:
        if len(img_a) < cfg.folds * cfg.fold_size:
            raise ValueError(
                f"{len(img_a)} test images cannot make {cfg.folds} folds of {cfg.fold_size} "
                "(eval.folds / eval.fold_size)"
            )
        folds = []
        for f in range(cfg.folds):
            lo, hi = f * cfg.fold_size, (f + 1) * cfg.fold_size
            keep = (owner >= lo) & (owner < hi)
            folds.append(
                recall_both_ways(
                    img_a[lo:hi],
                    txt_a[keep],
                    owner[keep] - lo,
                    img_db=idb[lo:hi],
                    txt_db=tdb[keep],
                    **kw,
                )
            )
        out.update({f"{k}_1k{suffix}": float(np.mean([f[k] for f in folds])) for k in folds[0]})
    return out


def faiss_pq_search(
    codebooks: np.ndarray, codes: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric-distance search of ``queries`` over items stored as PQ ``codes`` with a faiss
    ``IndexPQ`` whose centroids are ``codebooks`` (M x K x D/M): (squared distances, indices).

    The index is filled by encoding the codes' reconstructions, which gives back the same codes
    (each reconstruction's nearest codeword is its own); that is checked, so the index searches
    exactly the stored items."""
    from capbench.eval.retrieval import import_faiss
    from capbench.models.quantizers import PQ_NEEDS

    faiss = import_faiss(PQ_NEEDS)
    m, kc, dsub = codebooks.shape
    dim = m * dsub
    index = faiss.IndexPQ(dim, m, int(np.log2(kc)), faiss.METRIC_L2)
    faiss.copy_array_to_vector(
        np.ascontiguousarray(codebooks, np.float32).ravel(), index.pq.centroids
    )
    index.is_trained = True
    recon = np.ascontiguousarray(
        codebooks[np.arange(m)[None, :], codes].reshape(codes.shape[0], dim), np.float32
    )
    packed = index.pq.compute_codes(recon)
    if kc == 256 and not np.array_equal(packed.reshape(codes.shape), codes.astype(np.uint8)):
        raise RuntimeError(
            "faiss re-encoded the reconstructions to other codes (duplicate codewords?)"
        )
    index.add(recon)
    dist, idx = index.search(np.ascontiguousarray(queries, np.float32), k)
    return dist, idx


def bytes_per_item(dim: int, subspaces: int | None = None, codewords: int | None = None) -> float:
    """Storage of one database item: float32 continuous (4 D), or M log2(K) bits of codes."""
    if subspaces is None:
        return 4.0 * dim
    return subspaces * float(np.log2(codewords or 256)) / 8.0
