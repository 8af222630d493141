"""Which process of a distributed launch this is, read from the launchers' environment.

Its own module because the runner (which writes records on rank 0 only) and the locks
(``capbench.file_lock.job_lock``, taken on rank 0 only) both need it, and the locks must not
import the runner.
"""

from __future__ import annotations

import os


def launch_rank() -> int:
    """Non-zero on any process but the global rank 0 of a DDP / SLURM run (which alone writes
    the record). Lightning's launcher sets LOCAL_RANK/NODE_RANK, torchrun RANK, SLURM PROCID."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) != 0:
            return int(value)
    return 0
