"""Real multi-process tests on the CPU: a few ranks in a gloo process group, each running one
function, their results gathered here. What DDP code is checked with when there is no GPU."""

from __future__ import annotations

import os
import pickle
import socket
import tempfile
import traceback
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


class _RankFailed(str):
    """A rank's traceback, sent in place of its result so the test fails at once, not at the
    queue's timeout."""


def _entry(
    work: Callable[[int, int], Any], rank: int, world: int, port: int, queue: Any, scratch: str
) -> None:
    """Run ``work`` in the group, then leave without interpreter finalization.

    A rank exited with SIGABRT once in CI after both ranks had delivered correct results: gloo's
    worker threads can still hold tensors while Python finalizes, and freeing them then aborts
    (pytorch/pytorch#179291 describes it; unfixed in torch 2.14). So the ranks meet at a barrier
    (no rank closes while the other still sends), close the group, flush the result queue, and
    exit with ``os._exit(0)``. An exception in ``work`` still ends the process with a nonzero code.
    Skipping finalization also skips the removal of temporary folders (``import timm`` imports
    wandb, which makes two), so the rank's temporary files go to ``scratch``, which
    :func:`run_gloo` removes.
    """
    tempfile.tempdir = scratch
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        # as bytes: torch's queue pickler would send a tensor as a shared-memory handle that the
        # parent fetches from this process later, after the os._exit below (connection reset)
        queue.put((rank, pickle.dumps(work(rank, world))))
        dist.barrier()
    except BaseException:
        queue.put((rank, _RankFailed(traceback.format_exc())))
        raise
    finally:
        dist.destroy_process_group()
    queue.close()
    queue.join_thread()
    os._exit(0)


def run_gloo(work: Callable[[int, int], Any], world: int, timeout: float = 300) -> list[Any]:
    """``work(rank, world)`` in ``world`` spawned processes joined in one gloo group; returns
    their results in rank order and fails if a process does not exit cleanly. ``work`` must be a
    module-level function (spawned processes import it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    # ranks killed below may leave files behind while the folder is removed: not an error
    with tempfile.TemporaryDirectory(prefix="gloo-ranks-", ignore_cleanup_errors=True) as scratch:
        procs = [
            ctx.Process(target=_entry, args=(work, r, world, port, queue, scratch))
            for r in range(world)
        ]
        for p in procs:
            p.start()
        try:
            results = {
                r: _result(res) for r, res in (queue.get(timeout=timeout) for _ in range(world))
            }
        except BaseException:  # a rank hung or died before its result: none outlives the test
            _stop(procs)
            raise
        failed = [
            f"rank {r}:\n{res}"
            for r, res in sorted(results.items())
            if isinstance(res, _RankFailed)
        ]
        if failed:
            _stop(procs)
            raise AssertionError("\n".join(failed))
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0, f"rank process exited with {p.exitcode}"
    return [results[r] for r in range(world)]


def _stop(procs: list[Any]) -> None:
    """Kill the rank processes and wait for them, so none is still writing when the test ends."""
    for p in procs:
        p.kill()
    for p in procs:
        p.join(timeout=30)


def _result(sent: bytes | _RankFailed) -> Any:
    """A rank's result as :func:`_entry` sent it: its pickled bytes, or its traceback."""
    return sent if isinstance(sent, _RankFailed) else pickle.loads(sent)
