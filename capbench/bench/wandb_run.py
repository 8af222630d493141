"""One wandb run per row (``capbench reproduce --wandb``).

The runner opens the run before the row's target starts, so the ``WandbLogger`` a method builds
(``capbench.methods.loggers``) attaches to it (Lightning reuses ``wandb.run``) instead of
starting a second run; the row's final metrics go into the same run's summary, and the run is
finished when the row ends, failed rows included. wandb runs offline unless the user set
``WANDB_MODE`` themselves, so no network or account is needed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from capbench.bench.runner import RowJob

WANDB_EXTRA = "pip install 'capbench[wandb]'"
# Lightning says this when a method's WandbLogger finds the row's run: reusing it is the point.
_REUSE_WARNING = "There is a wandb run already in progress"


def import_wandb() -> Any:
    """``wandb``, or an ImportError that says which extra installs it."""
    try:
        import wandb
    except ImportError as err:
        raise ImportError(f"--wandb needs the wandb package: {WANDB_EXTRA}") from err
    return wandb


def _mode() -> str:
    """``WANDB_MODE`` (offline when unset), as wandb names it today."""
    mode = os.environ.setdefault("WANDB_MODE", "offline")
    return "offline" if mode == "dryrun" else mode


@contextmanager
def row_run(job: RowJob, enabled: bool) -> Iterator[Any]:
    """The row's wandb run while the row computes (``None`` when not ``enabled``: no
    ``--wandb``, or a DDP rank other than 0)."""
    if not enabled:
        yield None
        return
    wandb = import_wandb()
    mode = _mode()
    run = wandb.init(
        project="capbench",
        group=f"{job.paper}/{job.table}",
        name=f"{job.row}-{job.profile}-s{job.seed}",
        dir=str(job.workdir),
        config=dict(job.config),
        mode=mode,
        reinit="finish_previous",
    )
    # what WandbLogger would have declared had it started the run: curves against the step
    run.define_metric("trainer/global_step")
    run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_REUSE_WARNING)
            yield run
    except BaseException:
        run.finish(exit_code=1)
        raise
    else:
        run.finish()
    finally:
        # Lightning's offline WandbLogger rewrites WANDB_MODE to "dryrun"; put it back, or the
        # next row's wandb.init warns that the environment changed under its session
        os.environ["WANDB_MODE"] = mode


def log_final(run: Any, metrics: Mapping[str, float]) -> None:
    """The row's final metrics, as the run's summary (one value per metric, not a curve)."""
    run.summary.update({k: float(v) for k, v in metrics.items()})
