"""Wall-clock timing of work that may run asynchronously on a GPU."""

from __future__ import annotations

import time
from pathlib import Path

import torch


def synchronized_clock(device: torch.device | str | None = None) -> float:
    """``time.perf_counter()`` once ``device``'s queued work is done: CUDA kernels return before
    they finish, so a timing read without the synchronisation measures only the launches."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def report_json(result: dict, out: str | Path | None = None, indent: int = 2) -> str:
    """A ``gpu_check.py`` result: printed as JSON and, with ``out``, written there atomically
    (its folder made), so a cluster job's measurement survives the job."""
    import json

    from capbench.atomic import atomic_write_text

    text = json.dumps(result, indent=indent, default=str)
    print(text)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, text + "\n")
    return text
