"""``capbench fit --model fine_grained_sje``: the module's config fields are the only place a
value is set; the Trainer's length, precision and clipping follow from them by LightningCLI
links, and the DataModule defaults to CUB's ``classes`` view with Reed's 10 training views.

The module trains on fixed image features (``train.build_datamodule``); the CLI shows and
checks the config, and ``capbench reproduce reed2016`` runs the rows."""

from __future__ import annotations

from typing import Any


def configure_parser(parser: Any) -> None:
    """Link ``model.*`` fields to ``trainer.*`` and ``data.*`` (LightningCLI's
    ``add_arguments_to_parser``)."""
    links = {
        "model.train.max_epochs": "trainer.max_epochs",
        "model.train.precision": "trainer.precision",
        "model.train.grad_clip": "trainer.gradient_clip_val",
        "model.train.batch_size": "data.batch_size",
        "model.train.num_workers": "data.num_workers",
        "model.model.crop": "data.crop",
        "model.model.views": "data.train_views",
        "model.seed": "data.seed",
    }
    for source, target in links.items():
        parser.link_arguments(source, target)
    parser.set_defaults(
        {
            "data.source": "cub",
            "data.root": "cub",
            "data.view": "classes",
            "data.train_splits": ["train", "val"],
            "data.val_split": None,
            "data.test_split": "test",
            "trainer.limit_val_batches": 0,
            "trainer.num_sanity_val_steps": 0,
            "trainer.use_distributed_sampler": False,
        }
    )
