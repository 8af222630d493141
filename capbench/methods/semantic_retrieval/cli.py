"""``capbench fit --model semantic_retrieval``: the module's config fields are the only place a
value is set. The Trainer's length and precision and the DataModule's image size, relevance
and workers follow from them by LightningCLI links; the DataModule serves the ``triplets``
view of a Visual Genome layout unless told otherwise."""

from __future__ import annotations

from typing import Any

from capbench.eval.protocols.semantic_retrieval import TfidfConfig


def _rounds(max_steps: int, remine_every: int) -> int:
    """Epochs of a run: one per mining round (the last one cut to ``max_steps``)."""
    return -(-int(max_steps) // int(remine_every))


def configure_parser(parser: Any) -> None:
    """Link ``model.*`` fields to ``trainer.*`` and ``data.*`` (LightningCLI's
    ``add_arguments_to_parser``)."""
    links = {
        "model.train.precision": "trainer.precision",
        "model.model.longest_side": "data.longest_side",
        "model.model.pad_to_square": "data.pad_to_square",
        "model.train.k_relevant": "data.k_relevant",
        "model.train.embed_batch_size": "data.batch_size",
        "model.train.num_workers": "data.num_workers",
        "model.seed": "data.seed",
    }
    for source, target in links.items():
        parser.link_arguments(source, target)
    parser.link_arguments(
        ("model.train.max_steps", "model.mining.remine_every"),
        "trainer.max_epochs",
        compute_fn=_rounds,
    )
    parser.set_defaults(
        {
            "data.source": "visual_genome",
            "data.tfidf_options": TfidfConfig().options,  # the relevance's weighting, one source
            "data.view": "triplets",
            "data.augment": False,
            "data.val_split": None,
            "data.test_split": None,
            "trainer.limit_val_batches": 0,
            "trainer.num_sanity_val_steps": 0,
        }
    )
