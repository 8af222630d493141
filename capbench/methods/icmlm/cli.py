"""``capbench fit --model icmlm``: the module's config fields are the only place a value is
set; the Trainer's length and precision and the DataModule's image size, batch, concepts and
text encoder follow from them by LightningCLI links. The DataModule is the shared
CaptionDataModule's ICMLM subclass over a COCO layout with Karpathy splits and instances."""

from __future__ import annotations

from typing import Any


def configure_parser(parser: Any) -> None:
    """Link ``model.*`` fields to ``trainer.*`` and ``data.*`` (LightningCLI's
    ``add_arguments_to_parser``)."""
    links = {
        "model.train.precision": "trainer.precision",
        "model.model.image_size": "data.longest_side",
        "model.train.batch_size": "data.batch_size",
        "model.train.num_workers": "data.num_workers",
        "model.train.augment": "data.augment",
        "model.train.shift": "data.shift",
        "model.model.text_encoder": "data.text_encoder",
        "model.model.text_max_len": "data.text_max_len",
        "model.concepts": "data.concept_options",
        "model.seed": "data.seed",
    }
    for source, target in links.items():
        parser.link_arguments(source, target)
    # the joint epochs, then the head-only ones (train.head_epochs)
    parser.link_arguments(
        ("model.train.max_epochs", "model.train.head_epochs"),
        "trainer.max_epochs",
        compute_fn=lambda joint, heads: joint + heads,
    )
    parser.set_defaults(
        {
            "data.source": "coco",
            "data.reader_options": {"splits": "karpathy", "instances": True},
            "data.view": "images",
            "data.pad_to_square": True,
            "data.val_split": None,
            "data.test_split": None,
            "trainer.limit_val_batches": 0,
            "trainer.num_sanity_val_steps": 0,
        }
    )


def __getattr__(name: str) -> Any:
    """``DATAMODULE``: the CLI's DataModule class, imported on first use."""
    if name == "DATAMODULE":
        from capbench.methods.icmlm.data import IcmlmDataModule

        return IcmlmDataModule
    raise AttributeError(name)
