"""``capbench.lightning_noise``: the seven Lightning messages no capbench user can act on are
dropped, and nothing else is."""

from __future__ import annotations

import logging
import warnings

import lightning.pytorch as L
from lightning.fabric.utilities.warnings import PossibleUserWarning

from capbench.lightning_noise import quiet_lightning

RANK_ZERO = "lightning.pytorch.utilities.rank_zero"


def test_the_known_warnings_are_dropped_and_others_kept():
    with warnings.catch_warnings(record=True) as seen:  # restores the filters on exit
        warnings.simplefilter("always")
        quiet_lightning()
        for message, category in (
            ("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning),
            ("You passed in a `val_dataloader` but have no `validation_step`.", UserWarning),
            ("You defined a `validation_step` but have no `val_dataloader`. Skipping", UserWarning),
            ("Checkpoint directory /x/run/checkpoints exists and is not empty.", UserWarning),
            (
                "Found 20 module(s) in eval mode at the start of training. This may lead to "
                "unexpected behavior during training. If this is intentional, you can ignore "
                "this warning.",
                PossibleUserWarning,
            ),
            (
                "Starting from v1.9.0, `tensorboardX` has been removed as a dependency of the "
                "`lightning.pytorch` package, due to potential conflicts ...",
                UserWarning,
            ),
            ("some other deprecation", FutureWarning),
            ("a real problem", UserWarning),
        ):
            warnings.warn(message, category, stacklevel=1)
    assert [str(w.message) for w in seen] == ["some other deprecation", "a real problem"]


def test_the_cloud_logger_advert_is_dropped_from_a_real_trainer(caplog):
    quiet_lightning()
    quiet_lightning()  # a second call adds no second filter
    logger = logging.getLogger(RANK_ZERO)
    assert sum(type(f).__name__ == "_DropAdvert" for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger=RANK_ZERO):
        L.Trainer(logger=False, enable_progress_bar=False, accelerator="cpu")
        logger.info("GPU available: something worth saying")
        logger.info(  # what Lightning 2.6's callback connector says once per process
            "💡 Tip: For seamless cloud uploads and versioning, try installing "
            "[litmodels](https://pypi.org/project/litmodels/) to enable LitModelCheckpoint, ..."
        )
    said = [r.getMessage() for r in caplog.records if r.name == RANK_ZERO]
    assert said and not any("litlogger" in m or "litmodels" in m for m in said)
    assert "GPU available: something worth saying" in said
