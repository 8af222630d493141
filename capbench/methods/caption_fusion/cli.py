"""``capbench fit --model caption_fusion``: the module's config fields are the only place a value
is set; the Trainer's length follows from them by a LightningCLI link, and the DataModule
defaults to the graded benchmark's images.

The fusion trains on per-image caption features (``train.build_datamodule``), which the
captioners extract first; the CLI shows and checks the config, and ``capbench reproduce
mopuri2017`` runs the rows (captioners, features, 5-fold fusion)."""

from __future__ import annotations

from typing import Any


def configure_parser(parser: Any) -> None:
    """Link ``model.*`` fields to ``trainer.*`` and ``data.*`` (LightningCLI's
    ``add_arguments_to_parser``)."""
    links = {
        "model.train.max_epochs": "trainer.max_epochs",
        "model.train.num_workers": "data.num_workers",
        "model.seed": "data.seed",
    }
    for source, target in links.items():
        parser.link_arguments(source, target)
    parser.set_defaults(
        {
            "data.source": "graded_retrieval",
            "data.root": "graded_retrieval",
            "data.view": "images",
            "data.train_splits": ["reference"],
            "data.val_split": None,
            "data.test_split": None,
            "trainer.limit_val_batches": 0,
            "trainer.num_sanity_val_steps": 0,
        }
    )
