"""The likelihood test of grounding (``capbench.methods.caption_fusion.text_preference``): its
rate, its per-text loss, the region partners it compares with, and that a captioner blind to
its input scores exactly one half (the slow scenes test shows the trained ones above it)."""

from __future__ import annotations

import math

import torch

from capbench.data import read
from capbench.methods.caption_fusion.captioning import (
    RegionCaptionerModule,
    ShowAndTellModule,
)
from capbench.methods.caption_fusion.config import RegionCaptionerConfig, ShowAndTellConfig
from capbench.methods.caption_fusion.text_preference import (
    preference_rate,
    region_partners,
    text_preference,
)
from capbench.models.captioners.decoder import CaptionDecoder, SpecialIds
from capbench.models.captioners.vocab import build_vocab


def test_preference_rate_counts_ties_half():
    own = torch.tensor([1.0, 2.0, 3.0, 4.0])
    other = torch.tensor([2.0, 1.0, 3.0, 5.0])
    assert preference_rate(own, other) == (1 + 0 + 0.5 + 1) / 4
    assert math.isnan(preference_rate(torch.zeros(0), torch.zeros(0)))


def test_nll_is_the_training_loss_per_text_and_ignores_padding():
    torch.manual_seed(0)
    dec = CaptionDecoder(vocab_size=12, specials=SpecialIds(pad=0, bos=1, eos=2), dim=8).eval()
    code = torch.randn(3, 8)
    tokens = torch.randint(3, 12, (3, 5))
    with torch.no_grad():
        per_text = dec.nll(code, tokens)
        # equal lengths: the mean of the per-text means is the loss the captioner trains on
        torch.testing.assert_close(per_text.mean(), dec.loss(code, tokens))
        padded = torch.cat([tokens[:1, :3], torch.zeros(1, 4, dtype=torch.long)], dim=1)
        torch.testing.assert_close(dec.nll(code[:1], padded), dec.nll(code[:1], tokens[:1, :3]))


def test_region_partners_are_elsewhere_and_about_as_large():
    boxes = torch.tensor(
        [
            [0.0, 0.0, 96.0, 96.0],  # the whole scene: nothing else is as large
            [0.0, 0.0, 30.0, 30.0],
            [60.0, 60.0, 90.0, 90.0],
            [4.0, 4.0, 34.0, 34.0],  # the first object again (IoU 0.6): never its partner
        ]
    )
    for seed in range(5):
        has, partner = region_partners(boxes, 0.3, 2.0, torch.Generator().manual_seed(seed))
        assert has.tolist() == [False, True, True, True]
        first, second, third = partner.tolist()
        assert first == 2 and third == 2 and second in (1, 3)


def _blind(module):
    """Zero the layer that turns the visual input into the decoder's code: every image or
    region then gives the same code."""
    layer = module.net.code if isinstance(module, RegionCaptionerModule) else module.net.embed_image
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
    return module


def test_a_region_captioner_blind_to_its_region_scores_one_half(tiny_scenes):
    vg = read("visual_genome", tiny_scenes / "visual_genome", "train")[:12]
    vocab = build_vocab([g.phrase for r in vg for g in r.regions], 1)
    cfg = RegionCaptionerConfig(
        backbone="timm::resnet18", allow_random_init=True, image_size=64, min_count=1,
        anchor_sizes=(16, 32), fc_dim=32, fc_layers=1, pool_size=1, feature_norm="batchnorm",
        dim=32, max_len=8,
    )  # fmt: skip
    module = RegionCaptionerModule(model=cfg, vocab=vocab.itos)
    seeing = text_preference(module, vg)
    assert seeing["text_preference_n"] > 10 and module.training  # its mode put back
    blind = text_preference(_blind(module), vg)
    assert blind == {"text_preference": 0.5, "text_preference_n": seeing["text_preference_n"]}


def test_a_show_and_tell_blind_to_its_image_scores_one_half(tiny_scenes):
    coco = read("coco", tiny_scenes / "coco", "test", splits="karpathy")[:6]
    vocab = build_vocab([c for r in coco for c in r.captions], 1)
    cfg = ShowAndTellConfig(
        backbone="timm::resnet18", allow_random_init=True, image_size=32, min_count=1, max_len=8
    )
    module = _blind(ShowAndTellModule(model=cfg, vocab=vocab.itos))
    scores = text_preference(module, coco)
    assert scores["text_preference"] == 0.5
    assert scores["text_preference_n"] == sum(len(r.captions) for r in coco)
