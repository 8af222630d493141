"""Gordo & Larlus's text embedding theta(t) = W^T t / ||W^T t|| of an L2-normalised tf-idf vector.

A bias-free linear map from the tf-idf vocabulary to the visual descriptor space: the tf-idf rows
are very sparse (tens of non-zeros out of ~47k words), so batches are multiplied as torch sparse
tensors and never densified.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def csr_to_torch(rows: sp.spmatrix, device: torch.device | str | None = None) -> Tensor:
    """A scipy sparse batch ``(B, V)`` as a torch sparse COO float tensor."""
    coo = sp.coo_matrix(rows)
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    return torch.sparse_coo_tensor(
        index, values, coo.shape, device=device, check_invariants=False
    ).coalesce()


class TextProjection(nn.Module):
    """theta: tf-idf ``(B, V)`` (torch sparse, torch dense or scipy sparse) -> ``(B, D)``, L2-normalised."""

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(vocab_size, dim, bias=False)
        # tf-idf rows have unit norm, so std 1/sqrt(nnz) would be ideal; 1/sqrt(dim) keeps
        # W^T t away from zero for any sparsity, which the normalisation then removes.
        nn.init.normal_(self.proj.weight, std=dim**-0.5)

    @property
    def vocab_size(self) -> int:
        return self.proj.in_features

    def forward(self, tfidf: Tensor | sp.spmatrix) -> Tensor:
        w = self.proj.weight  # (D, V)
        if sp.issparse(tfidf):
            tfidf = csr_to_torch(tfidf, device=w.device)
        if tfidf.shape[-1] != self.vocab_size:
            raise ValueError(f"tf-idf width {tfidf.shape[-1]} != vocabulary size {self.vocab_size}")
        # Always fp32, also inside a bf16 autocast region (the paper profile): autocast would run
        # the sparse product in bf16, whose backward then fails on the fp32 W ("expected scalar
        # type Float but found BFloat16"); the product is cheap, so nothing is lost.
        with torch.autocast(w.device.type, enabled=False):
            if tfidf.is_sparse:
                out = torch.sparse.mm(tfidf.to(w.dtype), w.T)
            else:
                out = tfidf.to(w.dtype) @ w.T
            return F.normalize(out, dim=-1)
