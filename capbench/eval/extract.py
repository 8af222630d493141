"""Embedding extraction for one split, with record ids, exact under DDP.

``DistributedSampler`` pads the last ranks by repeating records, so a naive gather scores some
records twice; a wrong sampler can also silently drop records. Here every embedding travels
with its record id, duplicates are removed (after checking they agree), and the result is
checked against the split's expected ids: each record scored exactly once, or a clear error.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

T = TypeVar("T")


@dataclass
class Embeddings:
    """Embeddings of one split: ``emb[i]`` belongs to record ``ids[i]``; ``n_scored`` unique ids."""

    ids: list[str]
    emb: torch.Tensor
    n_scored: int

    def __post_init__(self) -> None:
        if len(self.ids) != self.emb.shape[0]:
            raise ValueError(f"{len(self.ids)} ids for {self.emb.shape[0]} embeddings")

    def position(self) -> dict[str, int]:
        """id -> row, for aligning with other id-keyed data (relevance, user-study triplets)."""
        return {i: p for p, i in enumerate(self.ids)}


def _batch_ids(batch: Mapping[str, Any], id_key: str) -> list[str]:
    if id_key in batch:
        raw = batch[id_key]
    elif "index" in batch:
        raw = batch["index"]
    else:
        raise KeyError(f"batch has neither {id_key!r} nor 'index' (keys: {sorted(batch)})")
    if isinstance(raw, torch.Tensor):
        raw = raw.tolist()
    return [str(x) for x in raw]


def merge_gathered(
    per_rank: Sequence[tuple[Sequence[str], torch.Tensor]],
    expected_ids: Sequence[str] | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> Embeddings:
    """Merge per-rank (ids, embeddings) into one de-duplicated, validated :class:`Embeddings`.

    Duplicates are allowed only as ``DistributedSampler`` padding (at most world_size - 1 extra
    rows) and must carry the same embedding within tolerance (a difference means the model was
    not deterministic at evaluation, e.g. dropout or augmentation left on). With
    ``expected_ids`` the output follows that order and must cover it exactly; without, it
    follows first appearance, rank by rank.
    """
    first: dict[str, torch.Tensor] = {}
    order: list[str] = []
    n_rows = 0
    for rank, (ids, emb) in enumerate(per_rank):
        if len(ids) != emb.shape[0]:
            raise ValueError(f"rank {rank}: {len(ids)} ids for {emb.shape[0]} embeddings")
        n_rows += len(ids)
        for i, e in zip(ids, emb):
            if i not in first:
                first[i] = e
                order.append(i)
            elif not torch.allclose(first[i].float(), e.float(), atol=atol, rtol=rtol):
                raise ValueError(
                    f"record {i!r} was scored twice with different embeddings (rank {rank}); "
                    "is the model in eval mode with deterministic preprocessing?"
                )
    extra = n_rows - len(order)
    if extra > max(len(per_rank) - 1, 0):
        raise ValueError(
            f"{extra} duplicate rows across {len(per_rank)} ranks; DistributedSampler padding "
            f"adds at most {len(per_rank) - 1}: records were scored more than once"
        )
    if expected_ids is not None:
        expected = list(expected_ids)
        if len(set(expected)) != len(expected):
            raise ValueError("expected_ids contain duplicates")
        missing = [i for i in expected if i not in first]
        unexpected = sorted(set(first) - set(expected))
        if missing or unexpected:
            raise ValueError(
                f"split not scored exactly once: {len(missing)} missing (e.g. {missing[:5]}), "
                f"{len(unexpected)} not in the split (e.g. {unexpected[:5]})"
            )
        order = expected
    if not order:
        raise ValueError("no embedding was produced")
    return Embeddings(ids=order, emb=torch.stack([first[i] for i in order]), n_scored=len(order))


def _gather_all(ids: list[str], emb: torch.Tensor) -> list[tuple[list[str], torch.Tensor]]:
    """all_gather_object for ids, all_gather for the padded tensor (shapes must match)."""
    world = dist.get_world_size()
    all_ids: list[Any] = [None] * world
    dist.all_gather_object(all_ids, ids)
    counts = [len(x) for x in all_ids]
    pad = torch.zeros((max(counts), *emb.shape[1:]), dtype=emb.dtype, device=emb.device)
    pad[: emb.shape[0]] = emb
    bufs = [torch.empty_like(pad) for _ in range(world)]
    dist.all_gather(bufs, pad)
    return [(all_ids[r], bufs[r][: counts[r]].cpu()) for r in range(world)]


def _world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def world_size() -> int:
    """The number of DDP ranks; 1 outside an initialised process group. What decides whether
    shared work needs an exchange: a rank's share can hold every item (fewer items than ranks)
    while the other ranks still wait for it in the exchange."""
    return _world()[1]


@torch.no_grad()
def extract_embeddings(
    model_fn: Callable[[torch.Tensor], torch.Tensor],
    dataloader: Iterable[Mapping[str, Any]],
    expected_ids: Sequence[str] | None = None,
    device: torch.device | str | None = None,
    input_key: str = "image",
    id_key: str = "image_id",
    progress: bool = True,
) -> Embeddings:
    """Run ``model_fn`` over a split; under DDP gather from every rank and de-duplicate.

    Batches are dicts with ``input_key`` (a tensor) and ``id_key`` (record ids; ``index`` is
    used when absent). Every rank returns the same merged result. ``expected_ids`` (the split's
    record ids) turns on the exactly-once check.
    """
    ids: list[str] = []
    chunks: list[torch.Tensor] = []
    rank, world = _world()
    for batch in tqdm(dataloader, desc="extract", disable=not (progress and rank == 0)):
        x = batch[input_key]
        if device is not None:
            x = x.to(device)
        out = model_fn(x)
        batch_ids = _batch_ids(batch, id_key)
        if out.shape[0] != len(batch_ids):
            raise ValueError(f"model returned {out.shape[0]} rows for {len(batch_ids)} ids")
        ids.extend(batch_ids)
        chunks.append(out.detach())
    if not chunks:
        raise ValueError("the dataloader produced no batch")
    emb = torch.cat(chunks)
    if world > 1:
        per_rank = _gather_all(ids, emb)
    else:
        per_rank = [(ids, emb.cpu())]
    return merge_gathered(per_rank, expected_ids)


@torch.no_grad()
def share_rank_zero_state(module: torch.nn.Module) -> None:
    """Every rank takes rank 0's parameters and buffers (in place); nothing outside DDP.

    After a DDP fit the ranks' parameters agree, but not their BatchNorm running statistics:
    DDP broadcasts buffers before each forward, and the last forward updates them with each
    rank's own batch. Rank 0's are the ones the checkpoint holds and its record reports, so
    ``capbench.methods.training.fit_resumable`` gives every rank that state after the fit: a
    shared evaluation (:func:`embed_in_order`) then scores the checkpointed model, whichever
    rank embeds an item."""
    if world_size() == 1:
        return
    nccl = dist.get_backend() == "nccl"
    for tensor in module.state_dict().values():  # detached views of the module's own storage
        if not torch.is_tensor(tensor):
            continue
        buf = tensor.cuda() if nccl and not tensor.is_cuda else tensor
        dist.broadcast(buf, src=0)
        if buf is not tensor:
            tensor.copy_(buf)


def is_rank_zero() -> bool:
    """True on global rank 0 of a DDP run, and outside DDP: the process that writes shared
    files (caches, records)."""
    return _world()[0] == 0


# how long the other ranks wait for rank 0's work (probe fits, beam search at paper sizes take
# longer than the 30 minutes a DDP process group allows a collective by default)
RANK_ZERO_WAIT = timedelta(hours=float(os.environ.get("CAPBENCH_RANK_ZERO_WAIT_HOURS", "12")))
_waiting_groups: dict[int, Any] = {}


def _waiting_group() -> Any:
    """A gloo group over every rank with a long timeout, for waiting on rank 0: made on first
    use (every rank reaches it at the same call, so its creation is collective too), one per
    default group."""
    key = id(dist.group.WORLD)
    if key not in _waiting_groups:
        _waiting_groups[key] = dist.new_group(backend="gloo", timeout=RANK_ZERO_WAIT)
    return _waiting_groups[key]


def computed_on_rank_zero(compute: Callable[[], T]) -> T:
    """``compute()`` on rank 0 only, its result (any picklable object) handed to every rank.

    For evaluation work that does not split by item (a probe's fits, beam search whose scores
    are cached to one file): in a DDP run it is done once in the job, not once per rank, and
    every rank goes on with the same result. Outside DDP it is ``compute()``. The other ranks
    wait up to ``CAPBENCH_RANK_ZERO_WAIT_HOURS`` (12) on a gloo group of their own, not the
    default group's 30 minutes. An exception on rank 0 (a result that cannot be pickled
    included) is raised there; the other ranks get a ``RuntimeError`` saying so instead of
    waiting for a result that will not come. ``compute`` must not use a collective."""
    rank, world = _world()
    if world == 1:
        return compute()
    group = _waiting_group()
    box: list[Any] = [None]
    if rank == 0:
        try:
            value = compute()
            pickle.dumps(value)  # fails here, where the others can be told, not in the broadcast
            box[0] = ("ok", value)
        except BaseException as exc:
            box[0] = ("failed", f"{type(exc).__name__}: {exc}")
            dist.broadcast_object_list(box, src=0, group=group)
            raise
    dist.broadcast_object_list(box, src=0, group=group)
    status, value = box[0]
    if status != "ok":
        raise RuntimeError(f"rank 0 failed on work this rank waits for: {value}")
    return value


def run_on_every_rank(local: Callable[[], T]) -> T:
    """``local()`` in this rank, where every rank does its share of shared work; if it raised
    on any rank, it raises on every rank (the failing rank its own error, the others a
    ``RuntimeError`` naming it) instead of leaving them waiting in the next collective. An
    unreadable image raises only on the rank whose share holds it."""
    world = world_size()
    if world == 1:
        return local()
    error: BaseException | None = None
    result: Any = None
    try:
        result = local()
    except Exception as exc:
        error = exc
    said: list[Any] = [None] * world
    dist.all_gather_object(said, None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    failed = [(r, msg) for r, msg in enumerate(said) if msg is not None]
    if failed:
        r, msg = failed[0]
        raise RuntimeError(f"rank {r} failed on the work the ranks share: {msg}")
    return result


def rows_in_order(rows_of: Callable[[list[int]], torch.Tensor], n_items: int) -> torch.Tensor:
    """``rows_of(share)`` (one row per item of this rank's :func:`rank_share`) on every rank,
    gathered into one tensor in item order on every rank (:func:`gather_in_order`); a failure in
    any rank's ``rows_of`` fails every rank (:func:`run_on_every_rank`). The one way a method
    shares item-wise work among DDP ranks; outside DDP, ``rows_of`` of every item."""
    share = rank_share(n_items)
    return gather_in_order(run_on_every_rank(lambda: rows_of(share)), share, n_items)


def rank_share(n_items: int) -> list[int]:
    """This rank's items of ``0..n_items-1``: ``r, r + W, r + 2W, ...`` (all of them outside
    DDP). The shares of all ranks cover every item exactly once, without padding."""
    rank, world = _world()
    return list(range(rank, n_items, world))


def gather_in_order(rows: torch.Tensor, share: Sequence[int], n_items: int) -> torch.Tensor:
    """Every rank's ``rows`` (one per item of its :func:`rank_share`) as one tensor in item
    order, on every rank; checked by :func:`merge_gathered` to cover each item exactly once."""
    if rows.shape[0] != len(share):
        raise ValueError(f"{rows.shape[0]} rows for {len(share)} items")
    rows = rows.detach().float().cpu()
    if world_size() == 1:  # one process: its share is every item, already in order
        if len(share) != n_items or list(share) != list(range(n_items)):
            raise ValueError(f"one process must hold items 0..{n_items - 1} in order")
        return rows
    # NCCL exchanges CUDA tensors only; gloo CPU ones
    if dist.get_backend() == "nccl":
        rows = rows.to(torch.device("cuda", torch.cuda.current_device()))
    per_rank = _gather_all([str(i) for i in share], _same_width(rows))
    return merge_gathered(per_rank, [str(i) for i in range(n_items)]).emb


@torch.no_grad()
def embed_in_order(
    encode: Callable[[Sequence[int]], torch.Tensor],
    n_items: int,
    batch_size: int,
    desc: str = "embed",
    progress: bool = False,
) -> torch.Tensor:
    """``encode`` applied to items ``0..n_items-1`` in batches, the rows returned in item order.

    Under an initialised process group (a DDP run that goes on to evaluate) each rank encodes
    its :func:`rank_share` only and the ranks exchange their rows (:func:`gather_in_order`):
    every item is encoded once in the whole job and every rank gets the same complete tensor.
    Outside DDP it is a plain batched loop. ``encode`` gets one batch's item indices and returns
    one row per index.
    """
    if n_items <= 0:
        raise ValueError("nothing to embed: n_items must be positive")
    rank = _world()[0]

    def encode_share(share: list[int]) -> torch.Tensor:
        chunks: list[torch.Tensor] = []
        for s in tqdm(
            range(0, len(share), batch_size), desc=desc, disable=not (progress and rank == 0)
        ):
            idx = share[s : s + batch_size]
            out = encode(idx)
            if out.shape[0] != len(idx):
                raise ValueError(f"encode returned {out.shape[0]} rows for {len(idx)} items")
            chunks.append(out.detach().float().cpu())
        return torch.cat(chunks) if chunks else torch.zeros((0, 0))

    return rows_in_order(encode_share, n_items)


def _same_width(local: torch.Tensor) -> torch.Tensor:
    """Ranks must agree on the row width before ``all_gather``; a rank with no rows (more ranks
    than items) learns it from the others."""
    width = torch.tensor([local.shape[1] if local.shape[0] else -1], device=local.device)
    widths = [torch.zeros_like(width) for _ in range(dist.get_world_size())]
    dist.all_gather(widths, width)
    w = max(int(x.item()) for x in widths)
    return local if local.shape[0] else torch.zeros((0, w), device=local.device)
