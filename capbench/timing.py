"""Wall-clock timing of work that may run asynchronously on a GPU."""

from __future__ import annotations

import time

import torch


def synchronized_clock(device: torch.device | str | None = None) -> float:
    """``time.perf_counter()`` once ``device``'s queued work is done: CUDA kernels return before
    they finish, so a timing read without the synchronisation measures only the launches."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
