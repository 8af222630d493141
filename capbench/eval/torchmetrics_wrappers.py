"""torchmetrics ``Metric`` wrappers, so validation logs exactly the leaderboard's numbers.

They only accumulate embeddings with their dataset indices (states reduced with ``cat`` across
processes) and call the plain functions of :mod:`capbench.eval.metrics` /
:mod:`capbench.eval.retrieval` in ``compute``. Indices de-duplicate the copies that
``DistributedSampler`` padding creates, so multi-GPU validation does not double-count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from capbench.eval.metrics import default_r_grid, image_text_recall
from capbench.eval.retrieval import semantic_retrieval_curves


def _unique_first(index: torch.Tensor) -> torch.Tensor:
    """Positions of the first occurrence of each index, ordered by index value."""
    seen: dict[int, int] = {}
    for pos, i in enumerate(index.tolist()):
        seen.setdefault(i, pos)
    return torch.tensor([seen[i] for i in sorted(seen)], dtype=torch.long)


class RecallAtK(Metric):
    """COCO/Flickr image<->text Recall@K (hit rate, percent) and rsum over the whole split.

    ``update(image_emb, image_index, text_emb, text_index, text_image_index)``: each caption row
    carries its own index and the dataset index of its image. An image seen only through its
    captions is an error (its embedding is needed for ranking).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, ks: Sequence[int] = (1, 5, 10), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ks = tuple(int(k) for k in ks)
        for name in ("image_emb", "image_index", "text_emb", "text_index", "text_image_index"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(
        self,
        image_emb: torch.Tensor,
        image_index: torch.Tensor,
        text_emb: torch.Tensor,
        text_index: torch.Tensor,
        text_image_index: torch.Tensor,
    ) -> None:
        self.image_emb.append(image_emb.detach().float())
        self.image_index.append(image_index.detach().long().reshape(-1))
        self.text_emb.append(text_emb.detach().float())
        self.text_index.append(text_index.detach().long().reshape(-1))
        self.text_image_index.append(text_image_index.detach().long().reshape(-1))

    def compute(self) -> dict[str, torch.Tensor]:
        img_idx = dim_zero_cat(self.image_index).cpu()
        keep_i = _unique_first(img_idx)
        img, img_idx = dim_zero_cat(self.image_emb).cpu()[keep_i], img_idx[keep_i]
        keep_t = _unique_first(dim_zero_cat(self.text_index).cpu())
        txt = dim_zero_cat(self.text_emb).cpu()[keep_t]
        owner_idx = dim_zero_cat(self.text_image_index).cpu()[keep_t]
        pos = {int(i): p for p, i in enumerate(img_idx.tolist())}
        missing = sorted({int(i) for i in owner_idx.tolist()} - set(pos))
        if missing:
            raise ValueError(f"captions refer to images never seen in update(): {missing[:5]}")
        owner = torch.tensor([pos[int(i)] for i in owner_idx.tolist()], dtype=torch.long)
        out = image_text_recall(img, txt, owner, self.ks)
        return {k: torch.tensor(v) for k, v in out.items()}


class SemanticNDCG(Metric):
    """Gordo & Larlus NDCG/PCC AUCs (percent) of image embeddings against a relevance provider.

    ``rel_fn(query_indices, db_indices) -> [len(query_indices) x len(db_indices)]`` relevance
    (dense or scipy.sparse), in dataset indices. The database is every image seen; the queries
    are the ``n_queries`` smallest indices (all if None); each query is removed from its results.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(
        self,
        rel_fn: Callable[[np.ndarray, np.ndarray], Any],
        rs: Sequence[int] | None = None,
        n_queries: int | None = None,
        backend: str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rel_fn, self.rs, self.n_queries, self.backend = rel_fn, rs, n_queries, backend
        self.add_state("emb", default=[], dist_reduce_fx="cat")
        self.add_state("index", default=[], dist_reduce_fx="cat")

    def update(self, emb: torch.Tensor, index: torch.Tensor) -> None:
        self.emb.append(emb.detach().float())
        self.index.append(index.detach().long().reshape(-1))

    def compute(self) -> dict[str, torch.Tensor]:
        idx = dim_zero_cat(self.index).cpu()
        keep = _unique_first(idx)
        emb, idx = dim_zero_cat(self.emb).cpu()[keep], idx[keep]
        db_idx = idx.numpy()
        n_q = len(db_idx) if self.n_queries is None else min(self.n_queries, len(db_idx))
        q_idx = db_idx[:n_q]
        rs = default_r_grid(len(db_idx)) if self.rs is None else self.rs
        ids = [str(i) for i in db_idx]
        out = semantic_retrieval_curves(
            emb[:n_q], emb, lambda p: self.rel_fn(q_idx[p], db_idx), rs,
            query_ids=ids[:n_q], db_ids=ids, backend=self.backend,
        )  # fmt: skip
        return {"ndcg_auc": torch.tensor(out["ndcg_auc"]), "pcc_auc": torch.tensor(out["pcc_auc"])}
