"""The contract between the benchmark runner (``capbench.bench``) and a method.

A row config names a registered ``method`` (``capbench.methods.registry.METHODS``, whose row
target it runs) or a ``target`` (``"package.module:function"``). The runner resolves it and calls
``target(config, ctx) -> RowResult``. The method owns training and evaluation of the row (it knows
its own protocol); the runner owns everything around it: seeds, skipping finished rows, resuming,
run records, launchers and the leaderboard. Living in ``methods`` keeps imports pointing down:
``bench`` imports this, methods never import ``bench``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Top-level keys of a row config that the runner reads (which method or target runs the row,
# which scenes data it needs, what it requires, how it is scheduled); a method's typed row config
# ignores them.
RUNNER_KEYS = ("method", "target", "scenes_data", "requires", "bench", "slurm")


def method_sections(config: dict[str, Any]) -> dict[str, Any]:
    """A row config without the runner's keys: the sections a method's typed config reads."""
    return {k: v for k, v in config.items() if k not in RUNNER_KEYS}


@dataclass
class RowContext:
    """What the runner hands a row: where to work and under which conditions."""

    # per (row, profile, seed, config hash); checkpoints live here, so resuming = reusing it
    workdir: Path
    seed: int
    profile: str  # "scenes" | "ci" | "paper"
    data_root: Path  # $CAPBENCH_DATA, or the scenes output folder for the scenes profile
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    wandb: bool = False
    progress: bool = True
    # the run-records root: a row that uses another row's result (the suite) looks it up there
    results: Path | None = None

    def may_use_gpu(self) -> bool:
        """Whether this row's fits and evaluation run on GPUs: the accelerator allows one and
        one is visible."""
        import torch

        return str(self.accelerator) in ("auto", "gpu", "cuda") and torch.cuda.is_available()

    def training_world_size(self) -> int:
        """How many processes a fit of this row runs on: ``devices`` as Lightning's accelerator
        reads it ("auto" = every visible GPU, or one CPU process), times ``num_nodes``. With DDP
        the effective batch is this times the config's, so a cached model's key holds it when
        it is above 1."""
        from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator

        if self.may_use_gpu():
            auto = self.devices == "auto"
            ids = None if auto else CUDAAccelerator.parse_devices(self.devices)
            per_node = CUDAAccelerator.auto_device_count() if auto else len(ids or [])
        else:
            per_node = 1 if self.devices == "auto" else CPUAccelerator.parse_devices(self.devices)
        return max(per_node, 1) * max(int(self.num_nodes), 1)

    def eval_device(self) -> str:
        """Where a row evaluates: the GPU when the row may use one (thousands of images at the
        paper's sizes are slow on a CPU; Lightning hands a fitted model back on the CPU), else
        the CPU. Under DDP, "cuda" is the rank's own device, which Lightning made current."""
        return "cuda" if self.may_use_gpu() else "cpu"


@dataclass
class RowResult:
    """What a row returns; the runner wraps it into a run record."""

    metrics: dict[str, float]
    n_scored: int  # how many queries/items were scored, each exactly once
    # curve name -> {"x": [...], "y": [...]}
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    checkpoint: str | None = None
    # {"name": ..., "root": ..., "fingerprint": ...}
    dataset: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"backbone_init": "random"}


class RowTarget(Protocol):
    def __call__(self, config: dict[str, Any], ctx: RowContext) -> RowResult: ...
