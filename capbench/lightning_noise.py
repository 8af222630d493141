"""Lightning's messages that say nothing about a capbench run, kept out of its output.

A ``capbench reproduce`` of thirty rows builds thirty Trainers, and each printed the same three
lines that no user can act on: an advertisement for a cloud logger (and, once per process, one
for a cloud model registry), a deprecation inside
Lightning's own pytree helper (Lightning calling a torch API that torch has deprecated), and a
note that the data module has a validation loader the module does not use (capbench fits with
``limit_val_batches=0`` on purpose; the CaptionDataModule serves every method), or its mirror,
a module with a validation step fitted without a loader (the scenes trunk's pretraining
validates once, after its fit, with ``trainer.validate``). A resumed fit
added a fourth: its checkpoint folder "exists and is not empty", which is what resuming means
(``capbench.methods.training.fit_resumable`` keeps ``last.ckpt`` there). A fifth, "Found N
module(s) in eval mode at the start of training. This may lead to unexpected behavior", came
from parts the papers keep frozen on purpose, in eval mode so that their BatchNorm statistics
stay fixed: gordo2017's BatchNorm layers (``train.freeze_bn``), the captioners' trunks
(im2txt's first phase), ICMLM's text encoder; ``make demo`` printed it twice. A sixth, printed by
every ``capbench fit``: "Starting from v1.9.0, `tensorboardX` has been removed as a dependency",
a paragraph saying that the default logger is the CSV one unless TensorBoard is installed
(capbench's loggers are CSV and wandb; ``--trainer.logger`` picks another). Only these exact
messages are dropped; every other warning and log line stays.
"""

from __future__ import annotations

import logging
import warnings

# (category, message regex) of the warnings dropped
_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    (UserWarning, r"You passed in a `val_dataloader` but have no `validation_step`"),
    (UserWarning, r"You defined a `validation_step` but have no `val_dataloader`"),
    (UserWarning, r"Checkpoint directory .* exists and is not empty"),
    (UserWarning, r"Found \d+ module\(s\) in eval mode at the start of training"),
    (UserWarning, r"Starting from v1\.9\.0, `tensorboardX` has been removed as a dependency"),
)
# the start of the log records dropped from Lightning's rank-zero logger
_LOG_PREFIXES = (
    "💡 Tip: For seamless cloud logging",  # a cloud logger (every Trainer)
    "💡 Tip: For seamless cloud uploads",  # litmodels (a Trainer that checkpoints, once)
)
_RANK_ZERO_LOGGER = "lightning.pytorch.utilities.rank_zero"


class _DropAdvert(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_LOG_PREFIXES)


def quiet_lightning() -> None:
    """Drop the messages above, process-wide; calling it again adds nothing."""
    for category, message in _WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    logger = logging.getLogger(_RANK_ZERO_LOGGER)
    if not any(isinstance(f, _DropAdvert) for f in logger.filters):
        logger.addFilter(_DropAdvert())
