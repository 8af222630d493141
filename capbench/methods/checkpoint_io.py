"""Lightning checkpoints written the way capbench writes every file: to a temporary file beside
the target, flushed to disk, then renamed over it (:func:`capbench.atomic.atomic_path`).

Why not Lightning's own ``TorchCheckpointIO``: it serialises the whole checkpoint into memory
first and then writes it through an fsspec transaction, whose temporary file lives in the
system's temp folder, not beside the target. Where the results folder is on another file system
than ``/tmp`` (a cluster's shared disk), the final ``move`` is a copy, and a job killed during it
leaves a truncated ``last.ckpt`` that the next run would try to resume from. Writing beside the
target keeps the rename atomic wherever the results live, and streaming ``torch.save`` to the
file skips the in-memory copy (a ResNet-50 with its AdamW state is about 300 MB).
``benchmarks/perf/checkpoint_io.py`` compares the two on a ResNet-18 row's checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from capbench.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves to a local path are atomic on the target's own file
    system. A URL (``s3://...``: no rename there) and loading are left to Lightning."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(
                f"{type(self).__name__} takes no storage_options (got {storage_options!r})"
            )
        with atomic_path(Path(path), suffix=".ckpt") as tmp:
            torch.save(checkpoint, tmp)
