"""Malali & Keller's towers for the cross-method suite: the image tower and the caption tower
of a row's checkpoint, in their joint space (continuous embeddings, before quantization)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from capbench.data.records import CaptionedImage
from capbench.suite.encoder import Encoder


def suite_encoder(config: dict[str, Any], checkpoint: str, data_root: Path, seed: int) -> Encoder:
    """Both towers; the caption tokenizer is refitted on the row's training captions, which
    gives the vocabulary the checkpoint was trained with (it is a function of those captions)."""
    from capbench.eval.protocols.image_text_retrieval import dataset_root
    from capbench.methods.quantized_embedding.config import row_config
    from capbench.methods.quantized_embedding.train import (
        build_datamodule,
        eval_images,
        load_quantized_embedding,
    )

    cfg = row_config(config)
    root = dataset_root(cfg.data, Path(data_root))
    data = {
        "source": cfg.data.name,
        "root": str(root),
        "reader_options": dict(cfg.data.reader_options),
        "train_splits": (cfg.data.train_split,),
    }
    tokenizer = build_datamodule(cfg.method, data, seed=seed).tokenizer
    model = load_quantized_embedding(checkpoint).eval()
    if tokenizer.vocab_size != model.hparams["text_vocab_size"]:
        raise ValueError(
            f"{checkpoint}: trained with a vocabulary of {model.hparams['text_vocab_size']} "
            f"words, but the training captions at {root} give {tokenizer.vocab_size}: the data "
            "changed since the row ran (rerun it)"
        )

    def images(records: Sequence[CaptionedImage]) -> Tensor:
        return model.embed_image_dataset(eval_images(cfg.method, records))

    def texts(captions: Sequence[str]) -> Tensor:
        return model.embed_captions(list(captions), tokenizer)

    info = {"backbone": cfg.model.backbone, "dim": cfg.model.embed_dim}
    return Encoder("quantized_embedding", images, texts, info)
