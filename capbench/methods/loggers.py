"""Loggers for a row's Lightning Trainer: CSV always, wandb only when asked and offline by default.

Methods build their own Trainer (they own their protocol), but every row must log the same way,
so they all take their loggers from here.
"""

from __future__ import annotations

import os
from typing import Any

from capbench.methods.protocol import RowContext


def make_loggers(ctx: RowContext, name: str) -> list[Any]:
    """Lightning loggers for a row: ``CSVLogger`` under ``ctx.workdir``, plus wandb if ``ctx.wandb``.

    wandb runs offline unless the user set ``WANDB_MODE`` (e.g. ``online``) themselves, so a run
    never needs a network or an account.
    """
    from lightning.pytorch.loggers import CSVLogger

    loggers: list[Any] = [CSVLogger(save_dir=str(ctx.workdir), name="lightning")]
    if ctx.wandb:
        from lightning.pytorch.loggers import WandbLogger

        mode = os.environ.setdefault("WANDB_MODE", "offline")
        loggers.append(
            WandbLogger(
                save_dir=str(ctx.workdir),
                project="capbench",
                name=name,
                offline=mode == "offline",
            )
        )
    return loggers
