"""A differentiable product quantizer, trainable end to end inside an embedding network.

Product quantization (Jegou et al. 2011) cuts a D-dim vector into M sub-vectors and replaces
each by the nearest of K codewords of its subspace, so an item is stored as M codes of
log2(K) bits. Training through the hard assignment has no gradient, so the forward pass here
also computes a soft assignment (softmax over negative squared distances / temperature) and
returns ``soft + (hard - soft).detach()``: the value is the hard reconstruction (what the
database stores), the gradient that of the soft one (it reaches the encoder and the codebooks).

The codebooks are laid out as faiss's ``ProductQuantizer.centroids`` (M x K x D/M, row-major),
so a faiss ``IndexPQ`` built from them searches exactly the codes this module assigns
(``capbench.eval.protocols.image_text_retrieval.faiss_pq_search``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# what needs faiss here, for capbench.eval.retrieval.import_faiss's error
PQ_NEEDS = (
    "the product quantizer (its codebooks are faiss's PQ training, its search a faiss IndexPQ; "
    "a row with quantizer.enabled: false needs none)"
)


class SoftProductQuantizer(nn.Module):
    """M subspaces of K codewords each; soft assignment in training, straight-through codes.

    Args:
        dim: embedding dimension D (a multiple of ``subspaces``).
        subspaces: M, the number of sub-vectors (= bytes per item when K = 256).
        codewords: K per subspace, a power of two (faiss stores log2(K) bits per code).
        temperature: of the soft assignment; lower is closer to the hard one.
    """

    def __init__(self, dim: int, subspaces: int, codewords: int, temperature: float) -> None:
        super().__init__()
        if dim % subspaces:
            raise ValueError(f"quantizer: dim {dim} is not a multiple of subspaces {subspaces}")
        if codewords < 2 or codewords & (codewords - 1):
            raise ValueError(f"quantizer: codewords must be a power of two >= 2, got {codewords}")
        if temperature <= 0:
            raise ValueError(f"quantizer: temperature must be > 0, got {temperature}")
        self.dim, self.subspaces, self.codewords = dim, subspaces, codewords
        self.temperature = float(temperature)
        self.sub_dim = dim // subspaces
        # unit-norm inputs have sub-vectors of norm ~ 1/sqrt(M): start the codewords at that scale
        init = torch.randn(subspaces, codewords, self.sub_dim) / math.sqrt(dim)
        self.codebooks = nn.Parameter(init)

    @property
    def bits_per_item(self) -> int:
        return self.subspaces * int(math.log2(self.codewords))

    @property
    def bytes_per_item(self) -> float:
        return self.bits_per_item / 8.0

    def _split(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"quantizer: expected (N, {self.dim}) inputs, got {tuple(x.shape)}")
        return x.view(x.shape[0], self.subspaces, self.sub_dim)

    def sq_distances(self, x: Tensor) -> Tensor:
        """``(N, M, K)`` squared distances of each sub-vector to its subspace's codewords."""
        sub = self._split(x).transpose(0, 1)  # (M, N, d)
        cb = self.codebooks.to(sub.dtype)
        d = (
            (sub * sub).sum(-1, keepdim=True)
            - 2.0 * sub @ cb.transpose(1, 2)
            + (cb * cb).sum(-1).unsqueeze(1)
        )
        return d.transpose(0, 1).clamp_min(0.0)

    def encode(self, x: Tensor) -> Tensor:
        """``(N, M)`` codes: the nearest codeword per subspace (lowest index on ties)."""
        return self.sq_distances(x).argmin(dim=-1)

    def decode(self, codes: Tensor) -> Tensor:
        """``(N, D)`` reconstructions of ``(N, M)`` codes."""
        m = torch.arange(self.subspaces, device=codes.device)
        return self.codebooks[m.unsqueeze(0), codes].reshape(codes.shape[0], self.dim)

    @torch.no_grad()
    def fit_codebooks(self, x: Tensor, seed: int = 0, iterations: int = 25) -> None:
        """Set the codebooks to faiss's product-quantizer training (k-means per subspace) on the
        rows of ``x`` ``(N, D)``, N >= K. Gradient alone moves only the codewords that some
        item is assigned to: when the embeddings occupy a narrow region (a trained joint space
        does), a random start leaves nearly every item on the same few codewords."""
        from capbench.eval.retrieval import import_faiss

        faiss = import_faiss(PQ_NEEDS)
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"quantizer: expected (N, {self.dim}) rows, got {tuple(x.shape)}")
        if len(x) < self.codewords:
            raise ValueError(
                f"quantizer: k-means needs at least K = {self.codewords} rows to fit the "
                f"codebooks, got {len(x)} (lower quantizer.codewords or use more data)"
            )
        pq = faiss.ProductQuantizer(self.dim, self.subspaces, int(math.log2(self.codewords)))
        pq.cp.seed = int(seed)
        pq.cp.niter = int(iterations)
        pq.verbose = False
        pq.train(x.detach().float().cpu().contiguous().numpy())
        centroids = faiss.vector_to_array(pq.centroids).reshape(
            self.subspaces, self.codewords, self.sub_dim
        )
        self.codebooks.copy_(torch.from_numpy(centroids).to(self.codebooks))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(straight-through reconstruction, codes)``: the value is the hard reconstruction,
        the gradient that of the soft assignment."""
        d = self.sq_distances(x)
        weights = torch.softmax(-d / self.temperature, dim=-1)  # (N, M, K)
        soft = torch.einsum("nmk,mkd->nmd", weights, self.codebooks.to(x.dtype))
        codes = d.argmin(dim=-1)
        hard = self.decode(codes).view_as(soft).to(x.dtype)
        out = soft + (hard - soft).detach()
        return out.reshape(x.shape[0], self.dim), codes
