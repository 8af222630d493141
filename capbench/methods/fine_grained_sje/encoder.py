"""Reed et al.'s embedding for the cross-method suite. The image side of DS-/DA-SJE is the fixed
CNN feature (the paper learns only the text encoder), so the images are the trunk's pooled
features as the row computed them; the text tower is the row's learned encoder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from capbench.data.records import CaptionedImage
from capbench.suite.encoder import Encoder

NO_TEXT = "attribute vectors per class, not a caption encoder"


def suite_encoder(config: dict[str, Any], checkpoint: str, data_root: Path, seed: int) -> Encoder:
    """Trunk features (one whole-image view) and, unless the row embeds attributes, captions."""
    from capbench.methods.fine_grained_sje.config import row_config
    from capbench.methods.fine_grained_sje.data import (
        build_tokenizer,
        encode_captions,
        encoder_level,
    )
    from capbench.methods.fine_grained_sje.features import backbone_features
    from capbench.methods.fine_grained_sje.train import read_records
    from capbench.methods.training import (
        load_trained,
        resolve_backbone_weights,
        resolve_pretrain_data,
    )

    cfg = resolve_pretrain_data(row_config(config), data_root, seed)
    m = cfg.model
    if m.image_source != "backbone":
        raise ValueError(
            f"model.image_source {m.image_source!r}: Reed's released features exist only for CUB "
            "and Flowers images, so the suite needs a row whose features come from a trunk"
        )
    weights = resolve_backbone_weights(m.backbone or "", m.backbone_weights, m.allow_random_init,
                                       cfg.method.pretrain)  # fmt: skip

    def images(records: Sequence[CaptionedImage]) -> Tensor:
        feats = backbone_features(m, weights, records, False, cfg.train.extract_batch_size, seed)
        return feats[:, 0]

    info = {"backbone": m.backbone, "weights": weights, "text_encoder": m.encoder}
    level = encoder_level(m.encoder)
    if level == "class":
        return Encoder("fine_grained_sje", images, None, info, no_text_reason=NO_TEXT)
    from capbench.methods.fine_grained_sje.module import FineGrainedSJE

    root = Path(cfg.data.root)
    root = root if root.is_absolute() else Path(data_root) / root
    train = read_records(cfg.data.name, root, cfg.data.train_splits, cfg.data.reader_options)
    tokenizer = build_tokenizer(m.encoder, [c for r in train for c in r.captions], m.word_min_count)
    model = load_trained(FineGrainedSJE, checkpoint, "cpu").eval()

    def texts(captions: Sequence[str]) -> Tensor:
        tokens = encode_captions(tokenizer, level, list(captions))
        return model.embed_captions(tokens, cfg.train.embed_batch_size)

    return Encoder("fine_grained_sje", images, texts, info)
