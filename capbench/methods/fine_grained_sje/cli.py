"""``capbench fit --model fine_grained_sje``: the module's config fields are the only place a
value is set. The Trainer's length, precision and clipping follow from them by LightningCLI
links; the DataModule (``cli_data.SJECLIData``) gets the module's config sections and builds
the fixed features and captions that ``capbench reproduce reed2016`` trains on, and the module's
data-sized arguments (vocabulary, feature size, attribute table, word vectors) are linked back
from it when it is instantiated."""

from __future__ import annotations

from typing import Any

# module argument <- DataModule attribute, known only once the data is read
_FROM_DATA = ("vocab_size", "feature_dim", "class_attributes", "word_vectors")


def configure_parser(parser: Any) -> None:
    """Link ``model.*`` fields to ``trainer.*`` and ``data.*``, and the DataModule's sizes back
    to ``model.*`` (LightningCLI's ``add_arguments_to_parser``)."""
    links = {
        "model.train.max_epochs": "trainer.max_epochs",
        "model.train.precision": "trainer.precision",
        "model.train.grad_clip": "trainer.gradient_clip_val",
        "model.model": "data.model",
        "model.train": "data.train",
        "model.pretrain": "data.pretrain",
        "model.seed": "data.seed",
    }
    for source, target in links.items():
        parser.link_arguments(source, target)
    for name in _FROM_DATA:
        parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")
    parser.set_defaults(
        {
            "data.source": "cub",
            "data.root": "cub",
            "trainer.limit_val_batches": 0,
            "trainer.num_sanity_val_steps": 0,
            "trainer.use_distributed_sampler": False,  # ClassBalancedBatchSampler splits classes
        }
    )


def __getattr__(name: str) -> Any:
    """``DATAMODULE``: the CLI's DataModule class, imported on first use."""
    if name == "DATAMODULE":
        from capbench.methods.fine_grained_sje.cli_data import SJECLIData

        return SJECLIData
    raise AttributeError(name)
