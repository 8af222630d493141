"""Saving a training checkpoint: Lightning's ``TorchCheckpointIO`` against capbench's
``AtomicCheckpointIO`` (``capbench/methods/checkpoint_io.py``), in one process.

The checkpoint is what ``fit_resumable`` writes for a ResNet-18 row: its weights and AdamW's two
moment buffers (about 140 MB). Each writer saves it ``--repeats`` times over the same target,
alternating, and the best time and the fewest fresh pages (minor page faults) of each count.
Lightning serialises the whole checkpoint into an in-memory buffer, copies it out, and writes
it through an fsspec transaction whose temporary file lives in the system temp folder; capbench
streams ``torch.save`` to a temporary file beside the target. Also reported: where each
writer's temporary file was (beside the target or not), which is what makes the final rename
atomic when the results folder is on another file system than /tmp.

**Gate: AtomicCheckpointIO touches at most ``--max-fault-ratio`` (0.7) of Lightning's fresh
pages, and writes its temporary file beside the target.** The time ratio is reported, not
gated: capbench's save also flushes the file to disk before the rename (``os.fsync``), which
Lightning's does not, so its time follows the disk (best of 5 on 2026-12-04, with other work on
the machine: 1.2-1.8x faster than Lightning's; a single cold pair can come out the other way).

Run: ``python benchmarks/perf/checkpoint_io.py [--repeats N]``; exits 1 below the gate.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torchvision
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from capbench.methods.checkpoint_io import AtomicCheckpointIO


def resnet18_checkpoint() -> dict[str, Any]:
    """A checkpoint shaped like a ResNet-18 row's: weights plus AdamW's exp_avg / exp_avg_sq."""
    net = torchvision.models.resnet18()
    opt = torch.optim.AdamW(net.parameters())
    net(torch.randn(2, 3, 64, 64)).sum().backward()
    opt.step()
    return {"state_dict": net.state_dict(), "optimizer_states": [opt.state_dict()], "epoch": 1}


def _temp_dirs(save: Any) -> set[str]:
    """The folders of the temporary files ``save()`` creates with ``tempfile.mkstemp`` (what
    both writers use: ``capbench.atomic`` and fsspec's local transaction)."""
    seen: set[str] = set()
    real = tempfile.mkstemp

    def spy(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, name = real(*args, **kwargs)
        seen.add(str(Path(name).parent))
        return fd, name

    tempfile.mkstemp = spy  # type: ignore[assignment]
    try:
        save()
    finally:
        tempfile.mkstemp = real  # type: ignore[assignment]
    return seen


def measure(io: Any, ckpt: dict[str, Any], target: Path) -> tuple[float, int]:
    gc.collect()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    io.save_checkpoint(ckpt, target)
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-fault-ratio", type=float, default=0.7)
    args = parser.parse_args(argv)
    ckpt = resnet18_checkpoint()
    writers = {"lightning": TorchCheckpointIO(), "capbench": AtomicCheckpointIO()}
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "results" / "checkpoints" / "last.ckpt"
        target.parent.mkdir(parents=True)
        best: dict[str, tuple[float, int]] = {}
        for _ in range(args.repeats):
            for name, io in writers.items():
                s, f = measure(io, ckpt, target)
                old = best.get(name, (float("inf"), sys.maxsize))
                best[name] = (min(old[0], s), min(old[1], f))
        size_mb = target.stat().st_size / 1e6
        beside = {
            name: _temp_dirs(lambda io=io: io.save_checkpoint(ckpt, target)) == {str(target.parent)}
            for name, io in writers.items()
        }
    (t_l, f_l), (t_c, f_c) = best["lightning"], best["capbench"]
    report = {
        "checkpoint_mb": round(size_mb, 1),
        "seconds": {"lightning": round(t_l, 3), "capbench": round(t_c, 3)},
        "speedup": round(t_l / t_c, 2),
        "fresh_pages": {"lightning": f_l, "capbench": f_c},
        "fault_ratio": round(f_c / max(1, f_l), 3),
        "temp_file_beside_target": beside,
    }
    print(json.dumps(report, indent=2))
    ok = report["fault_ratio"] <= args.max_fault_ratio and beside["capbench"]
    if not ok:
        print(f"FAIL: fault ratio {report['fault_ratio']} > {args.max_fault_ratio} or the "
              "temporary file was not beside the target", file=sys.stderr)  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
