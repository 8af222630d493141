"""Show-and-Tell with a frozen trunk trains on pooled features computed once
(``show_and_tell.cache_trunk_features``): the same training as running the trunk at every step,
only cheaper. Both are run from one seed on the tiny scenes data and must end with the same
weights, far from where they started; the cached run's batches carry no image."""

from __future__ import annotations

from capbench.data import read
from capbench.methods.caption_fusion.captioning import (
    show_and_tell_datamodule,
)
from capbench.methods.caption_fusion.config import ShowAndTellConfig
from capbench.models.captioners.vocab import build_vocab
from tests.methods.cached_training import assert_cache_trains_the_same_weights

SEED = 3


def _config(cache: bool) -> ShowAndTellConfig:
    return ShowAndTellConfig(
        backbone="timm::resnet18", allow_random_init=True, image_size=32, min_count=1,
        optimizer="adam", lr=1e-3, epochs=2, batch_size=8, max_len=8, dropout=0.3,
        cache_trunk_features=cache,
    )  # fmt: skip


def test_cached_trunk_features_train_the_same_weights(tiny_scenes, tmp_path):
    coco = read("coco", tiny_scenes / "coco", "train", splits="karpathy")
    assert_cache_trains_the_same_weights(
        "show_and_tell",
        _config,
        coco,
        tmp_path,
        SEED,
        ("embed_image.weight", "decoder.out.weight"),
        atol=2e-5,
    )


def test_cached_batches_carry_the_index_not_the_image(tiny_scenes):
    coco = read("coco", tiny_scenes / "coco", "train", splits="karpathy")
    vocab = build_vocab([c for r in coco for c in r.captions], 1)
    for cache, has_image in ((True, False), (False, True)):
        dm = show_and_tell_datamodule(_config(cache), coco, vocab, SEED)
        dm.setup("fit")
        batch = next(iter(dm.train_dataloader()))
        assert ("image" in batch) is has_image and len(batch["index"]) == len(batch["tokens"])
