"""``capbench fit --model quantized_embedding``: the module's config fields are the only place a
value is set. The Trainer's length, precision and clipping and the DataModule's image size,
batch, caption length and workers follow from them by LightningCLI links; the DataModule serves
the ``pairs`` view of a COCO layout with Karpathy splits unless told otherwise."""

from __future__ import annotations

from typing import Any


def configure_parser(parser: Any) -> None:
    """Link ``model.*`` fields to ``trainer.*`` and ``data.*`` (LightningCLI's
    ``add_arguments_to_parser``)."""
    links = {
        "model.train.precision": "trainer.precision",
        "model.train.max_epochs": "trainer.max_epochs",
        "model.train.grad_clip": "trainer.gradient_clip_val",
        "model.train.batch_size": "data.batch_size",
        "model.train.num_workers": "data.num_workers",
        "model.train.augment": "data.augment",
        "model.model.image_size": "data.longest_side",
        "model.model.max_len": "data.max_len",
        "model.seed": "data.seed",
    }
    for source, target in links.items():
        parser.link_arguments(source, target)
    parser.set_defaults(
        {
            "data.source": "coco",
            "data.view": "pairs",
            "data.reader_options": {"splits": "karpathy"},
            "data.pad_to_square": True,
            "data.val_split": None,
            "data.test_split": None,
            "trainer.limit_val_batches": 0,
            "trainer.num_sanity_val_steps": 0,
        }
    )
