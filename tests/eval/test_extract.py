"""Extraction under DDP: gather with ids, de-duplicate sampler padding, exactly-once check."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from capbench.eval.extract import Embeddings, extract_embeddings, merge_gathered

IDS = [f"rec{i:02d}" for i in range(10)]


class _Split(Dataset):
    """Ten records whose "image" encodes the record number, so embeddings are checkable."""

    def __len__(self) -> int:
        return len(IDS)

    def __getitem__(self, i: int) -> dict:
        return {"image": torch.full((3,), float(i)), "image_id": IDS[i], "index": i}


def _model(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([x.sum(1), -x.mean(1)], dim=1)


def _per_rank(world: int) -> list[tuple[list[str], torch.Tensor]]:
    """What each rank of a real DistributedSampler scores (it pads by repeating records)."""
    out = []
    for rank in range(world):
        sampler = DistributedSampler(_Split(), num_replicas=world, rank=rank, shuffle=False)
        idx = list(sampler)
        x = torch.stack([_Split()[i]["image"] for i in idx])
        out.append(([IDS[i] for i in idx], _model(x)))
    return out


def test_merge_removes_sampler_padding():
    per_rank = _per_rank(4)  # 10 records on 4 ranks: 12 rows, 2 repeated
    assert sum(len(ids) for ids, _ in per_rank) == 12
    merged = merge_gathered(per_rank, expected_ids=IDS)
    assert merged.ids == IDS and merged.n_scored == 10
    want = _model(torch.stack([_Split()[i]["image"] for i in range(10)]))
    torch.testing.assert_close(merged.emb, want)


def test_missing_and_unexpected_records_are_errors():
    per_rank = _per_rank(2)
    with pytest.raises(ValueError, match="1 missing"):
        merge_gathered(per_rank, expected_ids=[*IDS, "rec99"])
    with pytest.raises(ValueError, match="1 not in the split"):
        merge_gathered(per_rank, expected_ids=IDS[1:])


def test_double_counting_beyond_padding_is_an_error():
    ids, emb = _per_rank(1)[0]
    with pytest.raises(ValueError, match="more than once"):
        merge_gathered([(ids, emb), (ids[:5], emb[:5])], expected_ids=IDS)


def test_conflicting_duplicates_are_an_error():
    ids, emb = _per_rank(1)[0]
    with pytest.raises(ValueError, match="different embeddings"):
        merge_gathered([(ids, emb), (ids[:1], emb[:1] + 1.0)])


def test_single_process_extraction():
    loader = DataLoader(_Split(), batch_size=3)
    out = extract_embeddings(_model, loader, expected_ids=IDS, progress=False)
    assert isinstance(out, Embeddings) and out.n_scored == 10 and out.ids == IDS
    loader_by_index = [{"image": b["image"], "index": b["index"]} for b in loader]
    out2 = extract_embeddings(
        _model, loader_by_index, expected_ids=[str(i) for i in range(10)], progress=False
    )
    torch.testing.assert_close(out2.emb, out.emb)


def _worker(rank: int, world: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        sampler = DistributedSampler(_Split(), num_replicas=world, rank=rank, shuffle=False)
        loader = DataLoader(_Split(), batch_size=2, sampler=sampler)
        out = extract_embeddings(_model, loader, expected_ids=IDS, progress=False)
        queue.put((rank, out.ids, out.emb.tolist(), out.n_scored))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # spawning 3 processes that import torch takes 10-40 s on 2 shared cores
def test_real_multi_process_gloo_gather():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    world = 3  # 10 records over 3 ranks: the sampler pads 2 rows
    procs = [ctx.Process(target=_worker, args=(r, world, port, queue)) for r in range(world)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in range(world)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    want = _model(torch.stack([_Split()[i]["image"] for i in range(10)])).tolist()
    for _, ids, emb, n in results:
        assert ids == IDS and n == 10 and emb == want
