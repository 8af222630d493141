"""The region captioner with a frozen trunk trains on the trunk's maps computed once
(``region_captioner.cache_trunk_features``): the same training as running the trunk at every
step, only cheaper. Both are run from one seed on the tiny scenes data (images of one size, so
the padded maps are the padded batch's) and must end with the same weights, far from where they
started; a corrupt image is left out of the cache and named."""

from __future__ import annotations

import torch

from capbench.data import read
from capbench.data.region_phrases import RegionPhrases, collate_regions
from capbench.methods.caption_fusion.captioning import (
    RegionCaptionerModule,
    region_dataloader,
)
from capbench.methods.caption_fusion.config import RegionCaptionerConfig
from capbench.methods.frozen_features import FrozenMapItems
from capbench.models.captioners.vocab import build_vocab
from tests.methods.cached_training import assert_cache_trains_the_same_weights

SEED = 5


def _config(cache: bool) -> RegionCaptionerConfig:
    return RegionCaptionerConfig(
        backbone="timm::resnet18", allow_random_init=True, image_size=64, min_count=1,
        anchor_sizes=(16, 32), fc_dim=32, fc_layers=1, sample_size=16, train_proposals=40,
        proposals=20, pool_size=1, feature_norm="batchnorm", dim=32, dropout=0.0, lr=2e-3,
        batch_size=4, epochs=2, max_len=8, cache_trunk_features=cache,
    )  # fmt: skip


def _vg(tiny_scenes):
    return read("visual_genome", tiny_scenes / "visual_genome", "train")[:24]


def test_cached_trunk_maps_train_the_same_weights(tiny_scenes, tmp_path):
    vg = _vg(tiny_scenes)
    assert_cache_trains_the_same_weights(
        "region_captioner",
        _config,
        vg,
        tmp_path,
        SEED,
        ("code.weight", "decoder.out.weight", "rpn.head.conv.0.0.weight"),
        atol=5e-5,
    )


def test_cached_batches_carry_maps_not_images(tiny_scenes):
    vg = _vg(tiny_scenes)
    vocab = build_vocab([g.phrase for r in vg for g in r.regions], 1)
    module = RegionCaptionerModule(model=_config(True), vocab=vocab.itos)
    batch = next(iter(region_dataloader(_config(True), vg, vocab, module.net.trunk)))
    assert "image" not in batch and batch["features"].shape[:2] == (4, 256)
    assert batch["image_sizes"] == [(64, 64)] * 4
    plain = next(iter(region_dataloader(_config(False), vg, vocab)))
    assert "features" not in plain and plain["image"].shape == (4, 3, 64, 64)


def test_a_corrupt_image_is_left_out_of_the_cache_and_named(tiny_scenes, tmp_path):
    vg = _vg(tiny_scenes)[:3]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    vg[1].image_path = str(bad)
    vocab = build_vocab([g.phrase for r in vg for g in r.regions], 1)
    trunk = RegionCaptionerModule(model=_config(True), vocab=vocab.itos).net.trunk
    items = FrozenMapItems(RegionPhrases(vg, vocab, 64, 8), trunk, batch_size=2)
    assert len(items) == 2 and len(items.skipped) == 1 and "broken.jpg" in items.skipped[0]
    assert [it["image_id"] for it in items] == [vg[0].image_id, vg[2].image_id]
    with torch.no_grad():  # each map is the trunk's output for that image
        want = trunk(RegionPhrases(vg, vocab, 64, 8)[2]["image"][None])[0]
    torch.testing.assert_close(items[1]["features"], want)
    batch = collate_regions([items[0], items[1]])
    assert batch["features"].shape == (2, *want.shape)


def test_a_corrupt_image_is_dropped_from_its_region_batch_and_named(tiny_scenes, tmp_path):
    """Without the cache too: the batch keeps the readable images, names the corrupt one, and a
    batch of corrupt images only is skipped by the training step, not a crash."""
    vg = _vg(tiny_scenes)[:3]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    vg[1].image_path = str(bad)
    vocab = build_vocab([g.phrase for r in vg for g in r.regions], 1)
    data = RegionPhrases(vg, vocab, 64, 8)
    batch = collate_regions([data[0], data[1], data[2]])
    assert batch["image"].shape[0] == 2 and batch["image_id"] == [vg[0].image_id, vg[2].image_id]
    assert batch["n_skipped"] == 1 and "broken.jpg" in batch["skipped"][0]
    empty = collate_regions([data[1]])
    assert empty["boxes"] == [] and "image" not in empty and empty["n_skipped"] == 1
    module = RegionCaptionerModule(model=_config(False), vocab=vocab.itos)
    assert module.training_step(empty, 0) is None
