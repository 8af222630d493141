"""What a ``training_step`` returns for a batch it cannot learn from (every image of it corrupt,
every target ignored), in one process and under DDP alike.

Lightning skips the optimizer step when ``training_step`` returns None, but only in one process:
under DDP it stops the whole fit ("Skipping the `training_step` by returning None in distributed
training is not supported", checked in tests/methods/test_empty_batch.py), since the ranks whose
batches were readable would otherwise wait in the gradient all-reduce for a rank that never runs
backward. So one corrupt batch on one rank would end a multi-GPU run. Under DDP this rank runs
backward on a zero loss over every trainable parameter instead: its gradients are zeros, the
all-reduce completes and every rank takes the same step (the readable ranks' gradients averaged
with this rank's zeros).
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor


def _world_size(module: L.LightningModule) -> int:
    try:
        return int(module.trainer.world_size)
    except RuntimeError:  # not attached to a Trainer (a bare module in a test or a script)
        return 1


def empty_batch_loss(module: L.LightningModule) -> Tensor | None:
    """None in one process (Lightning skips the step); under DDP a zero loss connected to every
    trainable parameter of ``module`` (see the module docstring)."""
    if _world_size(module) <= 1:
        return None
    zero = torch.zeros((), device=module.device)
    for p in module.parameters():
        if p.requires_grad:
            zero = zero + p.sum() * 0.0
    return zero
