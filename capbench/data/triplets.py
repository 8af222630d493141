"""The ``triplets`` view: hard triplets mined with the model being trained, one round at a time.

A round (Gordo & Larlus 2017, section 6.1) embeds a pool of training images with the *current*
model, keeps the hardest (query, positive, negative) candidates and serves ``remine_every``
batches of them. The view owns the images and the relevance; the model, reached through the
Trainer, owns the embedding and the mining settings (:class:`TripletMiner`). The round's
draw is seeded by ``(seed, round index)`` and the round index is ``global_step //
remine_every``: the triplets of a step never depend on how often a loader was built, which is
what lets an interrupted run resume exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from capbench.data.sampling import MiningConfig, sample_pool, select_hard_triplets, triplet_batches
from capbench.data.views import collate_skip_none


@dataclass(frozen=True)
class MiningPlan:
    """A model's mining settings: what a round draws, its margin and the training length."""

    cfg: MiningConfig
    margin: float
    seed: int
    max_steps: int  # optimizer steps of the whole run: the last round is cut to fit
    micro_batches: int = 1  # loader batches per optimizer step (gradient accumulation)

    def round_of(self, global_step: int) -> int:
        return int(global_step) // self.cfg.remine_every

    def steps_in_round(self, round_index: int) -> int:
        start = round_index * self.cfg.remine_every
        return max(0, min(self.cfg.remine_every, self.max_steps - start))

    @property
    def rounds(self) -> int:
        """Epochs of the run: one per round."""
        t = self.cfg.remine_every
        return -(-self.max_steps // t)

    def generator(self, round_index: int) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(round_index))


class TripletMiner(Protocol):
    """What the ``triplets`` view asks of the LightningModule it mines for."""

    def mining_plan(self) -> MiningPlan: ...

    def embed_dataset(self, dataset: Dataset, progress: bool = False, desc: str = "") -> Tensor:
        """``(len(dataset), D)`` features in order (a row of NaN for an unreadable image), the
        same on every rank of a distributed fit (which the rounds are mined on)."""
        ...

    def candidate_features(self, pool: Tensor) -> Tensor | None:
        """Features of the pool as positives/negatives when they are of another modality
        (WSABIE: text), else None (the pool's own image features)."""
        ...


@dataclass
class MinedRound:
    index: int
    triplets: Tensor  # (steps * batch_size, 3) global image indices, in batch order
    stats: dict[str, float]


def mine_round(
    miner: TripletMiner, images: Dataset, relevant: Tensor, round_index: int
) -> MinedRound:
    """The triplets of round ``round_index``: pool, embeddings, hard candidates, batches."""
    from capbench.timing import synchronized_clock

    plan = miner.mining_plan()
    g = plan.generator(round_index)
    device = getattr(miner, "device", torch.device("cpu"))
    start = synchronized_clock(device)
    pool = sample_pool(relevant, plan.cfg, g)
    feats = miner.embed_dataset(Subset(images, pool.pool.tolist()), desc="mining pool")
    feats = feats.to(device)  # a distributed fit's gathered rows come back on the CPU
    readable = torch.isfinite(feats).all(dim=1).cpu()
    if not bool(readable.all()):  # unreadable images leave the pool (counted in the stats)
        from capbench.data.sampling import MiningPool

        keep = readable
        pool = MiningPool(pool.pool[keep], int(keep[: pool.n_queries].sum()))
        feats = feats[keep.to(feats.device)]
    embedded = synchronized_clock(device)
    cands = miner.candidate_features(pool.pool)
    triplets, losses = select_hard_triplets(feats, pool, relevant, plan.cfg, plan.margin, cands)
    selected = synchronized_clock(device)
    batches = triplet_batches(triplets, plan.cfg, g)[: plan.steps_in_round(round_index)]
    stats = {
        "pool": float(pool.pool.numel()),
        "unreadable": float((~readable).sum()),
        "candidates": float(triplets.shape[0]),
        "candidate_loss": float(losses.mean()) if losses.numel() else 0.0,
        "active_fraction": float((losses > 0).float().mean()) if losses.numel() else 0.0,
        "embed_seconds": embedded - start,
        "select_seconds": selected - embedded,
    }
    return MinedRound(round_index, batches.reshape(-1, 3), stats)


class TripletImages(Dataset):
    """One round's triplets ``(T, 3)`` of global indices, as image triples plus the indices
    (a method with a text side reads the triplet's text rows by index). An item with an
    unreadable image is None, dropped and counted by :func:`collate_triplets`."""

    def __init__(self, images: Dataset, triplets: Tensor) -> None:
        self.images = images
        self.triplets = triplets

    def __len__(self) -> int:
        return int(self.triplets.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        q, p, n = (int(v) for v in self.triplets[i])
        items = [self.images[j] for j in (q, p, n)]
        if any(it is None for it in items):
            return None
        return {
            "q_image": items[0]["image"],
            "p_image": items[1]["image"],
            "n_image": items[2]["image"],
            "triplet": self.triplets[i],
        }


def collate_triplets(batch: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack a batch of triplets (lists for images of different sizes), dropping and counting
    the ones with an unreadable image."""
    return collate_skip_none(batch)
