"""Suite encoders: modules wrapped for records, unreadable images, the trunk baselines."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from capbench.data.records import CaptionedImage
from capbench.suite.config import EncoderConfig, row_config
from capbench.suite.encoder import EncoderOutputError, embed_with_module, from_image_module
from capbench.suite.sources import build_encoder, user_encoder


def _records(tiny_scenes, n=4):
    from capbench.data import read

    return read("voc2007", tiny_scenes / "voc2007", "test")[:n]


def test_a_feature_map_is_average_pooled(tiny_scenes):
    conv = nn.Conv2d(3, 5, 3)
    enc = from_image_module("conv", conv, image_size=32)
    feats = enc.images(_records(tiny_scenes))
    assert feats.shape == (4, 5) and torch.isfinite(feats).all()
    assert enc.texts is None and enc.no_text_reason == "no text tower"


def test_an_unreadable_image_is_a_nan_row_not_a_crash(tiny_scenes, tmp_path):
    records = _records(tiny_scenes, 3)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    records[1] = CaptionedImage(image_id="broken", image_path=str(bad), split="test")
    feats = embed_with_module(nn.Flatten(), records, image_size=8)
    assert torch.isnan(feats[1]).all() and torch.isfinite(feats[[0, 2]]).all()


class _Returns(nn.Module):
    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def forward(self, images):
        return self.make(images)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda x: torch.ones(x.shape[0]), r"returned \(3,\) for a batch of 3 images; expected"),
        (lambda x: x.flatten(2), r"returned \(3, 3, 64\) for a batch of 3 images"),
        (lambda x: x[:1].flatten(1), r"returned \(1, 192\) for a batch of 3 images"),
        (lambda x: [x.flatten(1)], r"returned list for a batch of 3 images"),
    ],
)
def test_an_encoder_output_of_another_shape_is_an_error_saying_what_is_expected(
    tiny_scenes, make, message
):
    """A (B,) output used to be scored as one feature, ending in a NaN correlation that failed
    the record; a (B, N, D) one was flattened."""
    with pytest.raises(EncoderOutputError, match=message):
        embed_with_module(_Returns(make), _records(tiny_scenes, 3), image_size=8)


def test_an_encoder_returning_nan_is_an_error_naming_the_images(tiny_scenes):
    """NaN rows mean "not read" to the evaluations: an encoder's NaN ended as "VOC07 trainval:
    no image could be embedded", or as images zeroed by the probes."""
    records = _records(tiny_scenes, 3)

    def make(x):
        out = x.flatten(1).clone()
        out[1, 0] = float("inf")
        return out

    with pytest.raises(
        EncoderOutputError, match=r"non-finite .* for 1 of 3 images of a batch: "
    ) as err:
        embed_with_module(_Returns(make), records, image_size=8)
    assert records[1].image_path in str(err.value) and records[0].image_path not in str(err.value)


def test_random_trunk_is_drawn_from_the_seed(tiny_scenes):
    cfg = EncoderConfig(kind="random", backbone="timm::resnet18", image_size=32)
    recs = _records(tiny_scenes, 2)
    a = build_encoder(cfg, "ci", 0, tiny_scenes, tiny_scenes).images(recs)
    b = build_encoder(cfg, "ci", 0, tiny_scenes, tiny_scenes).images(recs)
    c = build_encoder(cfg, "ci", 1, tiny_scenes, tiny_scenes).images(recs)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_config_errors_name_what_is_wrong(tiny_scenes):
    with pytest.raises(ValueError, match=r"encoder\.kind .nope. is unknown"):
        build_encoder(EncoderConfig(kind="nope"), "ci", 0, tiny_scenes, tiny_scenes)
    with pytest.raises(ValueError, match=r"needs encoder\.backbone_weights"):
        build_encoder(EncoderConfig(kind="pretrained"), "ci", 0, tiny_scenes, tiny_scenes)
    with pytest.raises(ValueError, match=r"needs encoder\.paper and encoder\.row"):
        build_encoder(EncoderConfig(kind="paper_row"), "ci", 0, tiny_scenes, tiny_scenes)
    with pytest.raises(ValueError, match=r"needs encoder\.build"):
        user_encoder(EncoderConfig(kind="callable"), 0)
    with pytest.raises(ValueError, match=r"protocols \['imagenet'\] are unknown"):
        row_config({"protocols": ["voc07", "imagenet"]})
