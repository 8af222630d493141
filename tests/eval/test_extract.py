"""Extraction under DDP: gather with ids, de-duplicate sampler padding, exactly-once check."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from capbench.eval import extract
from capbench.eval.extract import (
    Embeddings,
    embed_in_order,
    extract_embeddings,
    gather_in_order,
    merge_gathered,
    rank_share,
)
from tests.distributed import run_gloo

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


def _worker(rank: int, world: int) -> tuple:
    sampler = DistributedSampler(_Split(), num_replicas=world, rank=rank, shuffle=False)
    loader = DataLoader(_Split(), batch_size=2, sampler=sampler)
    out = extract_embeddings(_model, loader, expected_ids=IDS, progress=False)
    encoded: list[int] = []

    def encode(idx):
        encoded.extend(idx)
        return _model(torch.stack([_Split()[i]["image"] for i in idx]))

    ordered = embed_in_order(encode, len(IDS), batch_size=2)
    return out.ids, out.emb.tolist(), out.n_scored, encoded, ordered.tolist()


@pytest.mark.slow  # spawning 3 processes that import torch takes 10-40 s on 2 shared cores
def test_real_multi_process_gloo_gather():
    results = run_gloo(_worker, world=3, timeout=120)  # 10 records, 3 ranks: 2 padded rows
    want = _model(torch.stack([_Split()[i]["image"] for i in range(10)])).tolist()
    for ids, emb, n, _, ordered in results:
        assert ids == IDS and n == 10 and emb == want
        assert ordered == want  # embed_in_order: every rank gets every row, in item order
    encoded = sorted(i for r in results for i in r[3])
    assert encoded == list(range(10))  # ... and each item was encoded once in the whole job


def test_rank_shares_cover_every_item_once_without_padding(monkeypatch):
    for world in (1, 2, 3, 7, 12):
        shares = []
        for rank in range(world):
            monkeypatch.setattr(extract, "_world", lambda r=rank, w=world: (r, w))
            shares.append(rank_share(10))
        flat = sorted(i for s in shares for i in s)
        assert flat == list(range(10)), world
        assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_embed_in_order_single_process_batches_and_keeps_order():
    seen: list[list[int]] = []

    def encode(idx):
        seen.append(list(idx))
        return torch.tensor([[float(i), 2.0 * i] for i in idx])

    out = embed_in_order(encode, 7, batch_size=3)
    assert seen == [[0, 1, 2], [3, 4, 5], [6]]
    assert out[:, 0].tolist() == list(range(7)) and out.shape == (7, 2)
    with pytest.raises(ValueError, match="rows for"):
        embed_in_order(lambda idx: torch.zeros(1, 2), 4, batch_size=2)
    with pytest.raises(ValueError, match="nothing to embed"):
        embed_in_order(encode, 0, batch_size=2)
    with pytest.raises(ValueError, match="2 rows for 3 items"):
        gather_in_order(torch.zeros(2, 1), [0, 1, 2], 3)
    with pytest.raises(ValueError, match="in order"):  # one process holds every item
        gather_in_order(torch.zeros(2, 1), [1, 0], 2)


def _rank_zero_worker(rank: int, world: int) -> tuple:
    from capbench.eval.extract import computed_on_rank_zero

    ran: list[int] = []
    value = computed_on_rank_zero(lambda: ran.append(rank) or {"rank": rank, "rows": [1, 2]})

    def fails() -> None:
        raise ValueError("no such file")

    try:
        computed_on_rank_zero(fails)
        failure = None
    except (ValueError, RuntimeError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    return ran, value, failure


def test_computed_on_rank_zero_runs_once_and_hands_every_rank_its_result():
    zero, one = run_gloo(_rank_zero_worker, world=2)
    assert zero[0] == [0] and one[0] == []  # computed on rank 0 only
    assert zero[1] == one[1] == {"rank": 0, "rows": [1, 2]}
    assert zero[2] == "ValueError: no such file"  # rank 0 raises its own error
    assert one[2].startswith("RuntimeError: rank 0 failed") and "no such file" in one[2]


def test_computed_on_rank_zero_outside_ddp_is_the_call():
    from capbench.eval.extract import computed_on_rank_zero

    assert computed_on_rank_zero(lambda: 7) == 7


def _failing_share_worker(rank: int, world: int) -> str:
    """Rank 1's share holds an "unreadable image": every rank must raise, none may hang."""

    def encode(idx):
        if 3 in idx:
            raise ValueError("record 3: unreadable image")
        return torch.zeros(len(idx), 2)

    try:
        embed_in_order(encode, 6, batch_size=1)
    except (ValueError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def test_a_rank_that_fails_on_its_share_makes_every_rank_fail_at_once():
    zero, one = run_gloo(_failing_share_worker, world=2, timeout=60)
    assert one == "ValueError: record 3: unreadable image"  # item 3 is rank 1's
    assert zero.startswith("RuntimeError: rank 1 failed") and "record 3" in zero


def _unpicklable_worker(rank: int, world: int) -> str:
    from capbench.eval.extract import RANK_ZERO_WAIT, _waiting_group, computed_on_rank_zero

    assert RANK_ZERO_WAIT.total_seconds() >= 3600  # far past a process group's 30 minutes
    assert _waiting_group() is _waiting_group()  # made once
    try:
        computed_on_rank_zero(lambda: lambda: None)  # a lambda cannot be pickled
    except Exception as exc:
        return type(exc).__name__
    return "no error"


def test_a_result_rank_zero_cannot_send_is_an_error_on_every_rank():
    zero, one = run_gloo(_unpicklable_worker, world=2, timeout=60)
    assert zero != "no error" and one == "RuntimeError"
