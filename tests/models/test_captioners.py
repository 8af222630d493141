"""The captioner networks: the decoder's targets and beam search, Show-and-Tell's FIC feature,
the region captioner's losses, detections and BoRD feature (random weights, tiny inputs)."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from capbench.models.captioners.decoder import CaptionDecoder, SpecialIds, append_eos
from capbench.models.captioners.region_captioner import RegionCaptioner, RegionSettings
from capbench.models.captioners.show_and_tell import ShowAndTell

SP = SpecialIds(pad=0, bos=3, eos=4)


def test_append_eos_writes_after_the_last_word():
    tokens = torch.tensor([[7, 8, 0], [9, 0, 0], [5, 6, 7]])
    want = torch.tensor([[7, 8, 4, 0], [9, 4, 0, 0], [5, 6, 7, 4]])
    torch.testing.assert_close(append_eos(tokens, SP), want)


def _greedy(dec: CaptionDecoder, code: torch.Tensor, max_len: int) -> list[int]:
    """Greedy decoding written step by step through forward() (teacher forcing on its own
    output), the independent reference for beam_size=1."""
    words: list[int] = []
    for _ in range(max_len + 1):
        logits = dec(code[None], torch.tensor([words], dtype=torch.long).view(1, -1))[0, -1]
        logits[[SP.pad, SP.bos]] = -float("inf")
        w = int(logits.argmax())
        if w == SP.eos:
            break
        words.append(w)
    return words


def test_beam_of_one_is_greedy_and_wider_beams_score_at_least_as_high():
    torch.manual_seed(0)
    dec = CaptionDecoder(12, SP, dim=16, dropout=0.0).eval()
    codes = torch.randn(5, 16)
    greedy = dec.beam_search(codes, beam_size=1, max_len=6)
    assert greedy == [_greedy(dec, c, 6) for c in codes]

    def logprob(code: torch.Tensor, words: list[int]) -> float:
        """log p(words, <eos> | code) by teacher forcing."""
        seq = torch.tensor([words], dtype=torch.long).view(1, -1)
        logp = torch.log_softmax(dec(code[None], seq)[0], dim=-1)
        return float(sum(logp[i, w] for i, w in enumerate([*words, SP.eos])))

    wide = dec.beam_search(codes, beam_size=4, max_len=6)
    for c, g, w in zip(codes, greedy, wide):
        if len(g) < 6 and len(w) < 6:  # both finished with <eos>: comparable sequence scores
            assert logprob(c, w) >= logprob(c, g) - 1e-5


def test_show_and_tell_fic_is_the_normalised_lstm_input():
    torch.manual_seed(0)
    model = ShowAndTell("timm::resnet18", 20, SP, dim=32, dropout=0.0).eval()
    images = torch.randn(2, 3, 64, 64)
    fic = model.fic(images)
    assert fic.shape == (2, 32)
    torch.testing.assert_close(fic.norm(dim=1), torch.ones(2))
    emb = model.image_embedding(images)
    torch.testing.assert_close(fic, emb / emb.norm(dim=1, keepdim=True))
    loss = model.loss(images, torch.tensor([[5, 6, 7], [8, 0, 0]]))
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_show_and_tell_stride_16_pools_layer3_and_batchnorm_standardises_it():
    torch.manual_seed(0)
    model = ShowAndTell(
        "timm::resnet18", 20, SP, dim=32, dropout=0.0, stride=16, feature_norm="batchnorm"
    )
    images = torch.randn(8, 3, 64, 64)
    pooled = model.pooled(images)
    assert pooled.shape == (8, 256)  # ResNet-18's layer3 has 256 channels
    assert model.embed_image.in_features == 256
    model.train()
    normed = model.feature_norm(pooled)
    torch.testing.assert_close(normed.mean(dim=0), torch.zeros(256), atol=1e-5, rtol=0)
    # the loss from cached pooled features goes through the same standardisation
    tokens = torch.tensor([[5, 6, 7]] * 8)
    model.eval()
    pooled = model.pooled(images)
    torch.testing.assert_close(model.loss(images, tokens), model.loss_from_pooled(pooled, tokens))


def test_show_and_tell_rejects_an_unknown_feature_norm():
    with pytest.raises(ValueError, match="feature_norm"):
        ShowAndTell("timm::resnet18", 20, SP, feature_norm="layernorm")
    with pytest.raises(ValueError, match="feature_norm"):
        RegionCaptioner("timm::resnet18", 20, SP, RegionSettings(feature_norm="layernorm"))


def test_region_captioner_batchnorm_standardises_regions_and_keeps_the_head_keys():
    torch.manual_seed(0)
    plain = RegionSettings(anchor_sizes=(16, 32), fc_dim=32, sample_size=16, pool_size=1)
    normed = RegionSettings(
        anchor_sizes=(16, 32), fc_dim=32, sample_size=16, pool_size=1, feature_norm="batchnorm"
    )
    a = RegionCaptioner("timm::resnet18", 20, SP, plain, dim=24, dropout=0.0)
    b = RegionCaptioner("timm::resnet18", 20, SP, normed, dim=24, dropout=0.0)
    # a checkpoint without the option loads into the model with it, but for the norm's buffers
    missing = set(b.state_dict()) - set(a.state_dict())
    assert missing and all(k.startswith("region_norm.") for k in missing)
    assert set(a.state_dict()) <= set(b.state_dict())
    regions = torch.randn(12, 256) * 5 + 3  # pool_size 1: a 256-d layer3 vector per region
    z = b.region_norm.train()(regions)
    torch.testing.assert_close(z.mean(dim=0), torch.zeros(256), atol=1e-5, rtol=0)
    images = ImageList(torch.randn(2, 3, 64, 64), [(64, 64), (64, 64)])
    boxes = [torch.tensor([[4.0, 4.0, 30.0, 30.0]]), torch.tensor([[10.0, 10.0, 50.0, 40.0]])]
    losses = b.train().loss(images, boxes, [torch.tensor([[5, 6]]), torch.tensor([[7, 8]])])
    sum(losses.values()).backward()
    assert b.head[1].weight.grad is not None


def test_region_captioner_losses_detections_and_bord():
    torch.manual_seed(0)
    settings = RegionSettings(
        anchor_sizes=(16, 32), fc_dim=32, sample_size=16, train_proposals=40, proposals=20
    )
    model = RegionCaptioner("timm::resnet18", 20, SP, settings, dim=24, dropout=0.0)
    images = ImageList(torch.randn(2, 3, 64, 64), [(64, 64), (64, 48)])
    boxes = [torch.tensor([[4.0, 4.0, 30.0, 30.0], [20.0, 30.0, 60.0, 60.0]]),
             torch.tensor([[0.0, 0.0, 40.0, 20.0]])]  # fmt: skip
    tokens = [torch.tensor([[5, 6], [7, 0]]), torch.tensor([[8, 9]])]
    losses = model.loss(images, boxes, tokens)
    assert {"rpn_objectness", "rpn_box", "score", "refine", "caption"} == set(losses)
    sum(losses.values()).backward()
    assert model.decoder.lstm.weight_ih_l0.grad is not None

    model.eval()
    regions = model.detect(images, top=3)
    assert len(regions) == 2
    for r, (h, w) in zip(regions, images.image_sizes):
        assert 1 <= len(r.boxes) <= 3
        assert (r.boxes[:, 2] <= w).all() and (r.boxes[:, 3] <= h).all()
        assert (r.scores[:-1] >= r.scores[1:]).all()  # best first
        assert r.encoded.shape == (len(r.boxes), 24)
    bord = model.bord(images)
    assert bord.shape == (2, 24)
    torch.testing.assert_close(bord.norm(dim=1), torch.ones(2))
    settings5 = RegionSettings(
        anchor_sizes=(16, 32), fc_dim=32, sample_size=16, train_proposals=40, proposals=20,
        top_regions=3,
    )  # fmt: skip
    model.settings = settings5
    want = torch.nn.functional.normalize(regions[0].encoded.mean(dim=0), dim=0)
    torch.testing.assert_close(model.bord(images)[0], want)


def test_region_losses_are_summed_with_densecaps_weights():
    """DenseCap weighs its detection terms far below its captioning term (train_opts.lua:
    RPN objectness 0.1, RPN boxes 0.05, final objectness 0.1 and boxes 0.1, captioning 1.0);
    the typed default is those weights, and a loss without a weight is an error."""
    from capbench.methods.caption_fusion.config import RegionCaptionerConfig
    from capbench.models.captioners.region_captioner import weighted_loss

    weights = RegionCaptionerConfig().loss_weights
    assert weights == {
        "rpn_objectness": 0.1, "rpn_box": 0.05, "score": 0.1, "refine": 0.1, "caption": 1.0,
    }  # fmt: skip
    losses = {k: torch.tensor(float(i + 1)) for i, k in enumerate(weights)}  # 1, 2, 3, 4, 5
    torch.testing.assert_close(
        weighted_loss(losses, weights), torch.tensor(0.1 + 0.1 + 0.3 + 0.4 + 5.0)
    )
    with pytest.raises(KeyError, match="extra"):
        weighted_loss({**losses, "extra": torch.tensor(1.0)}, weights)
    with pytest.raises(ValueError, match="missing \\['rpn_box'\\]"):
        RegionCaptionerConfig(loss_weights={k: v for k, v in weights.items() if k != "rpn_box"})


def test_region_head_without_fc_layers_reads_the_pooled_region():
    """``fc_layers: 0``: no recognition fc layers; the code, score and refinement are linear maps
    of the (normalised) pooled region, and training, detection and BoRD still work. The default
    keeps DenseCap's two layers at the head's indices 1 and 4 (its checkpoint keys)."""
    torch.manual_seed(0)
    dense = RegionCaptioner("timm::resnet18", 20, SP, RegionSettings(fc_dim=32), dim=24)
    assert {"head.1.weight", "head.4.weight"} <= set(dense.state_dict())
    settings = RegionSettings(
        anchor_sizes=(16, 32), fc_dim=32, fc_layers=0, pool_size=1, sample_size=16,
        train_proposals=40, proposals=20, feature_norm="batchnorm",
    )  # fmt: skip
    model = RegionCaptioner("timm::resnet18", 20, SP, settings, dim=24, dropout=0.0)
    assert not any(k.startswith("head.") for k in model.state_dict())
    assert model.code.in_features == 256  # layer3's channels, pool 1 x 1
    images = ImageList(torch.randn(2, 3, 64, 64), [(64, 64), (64, 64)])
    boxes = [torch.tensor([[4.0, 4.0, 30.0, 30.0]]), torch.tensor([[10.0, 10.0, 50.0, 40.0]])]
    losses = model.train().loss(images, boxes, [torch.tensor([[5, 6]]), torch.tensor([[7, 8]])])
    sum(losses.values()).backward()
    assert model.code.weight.grad is not None and model.score.weight.grad is not None
    assert model.eval().bord(images).shape == (2, 24)
    with pytest.raises(ValueError, match="fc_layers"):
        RegionCaptioner("timm::resnet18", 20, SP, RegionSettings(fc_layers=-1), dim=24)


def test_square_crops_cut_the_square_around_each_box():
    """On a linear ramp bilinear resampling is exact, so the crop of a box at pixel edges,
    resampled to its own size, is the image's pixels: a 2 x 4 box (x1, y1, x2, y2) = (2, 2, 4, 6)
    becomes the 4 x 4 square centred on it, columns 1-4 and rows 2-5."""
    from capbench.models.captioners.region_captioner import _square_crops

    image = torch.arange(100.0).view(1, 1, 10, 10)
    crops = _square_crops(image, [torch.tensor([[2.0, 2.0, 4.0, 6.0]])], 4)
    torch.testing.assert_close(crops[0], image[0, :, 2:6, 1:5])
    two = torch.cat([image, image + 1000])  # the second image's box is read from it
    crops = _square_crops(two, [torch.zeros(0, 4), torch.tensor([[2.0, 2.0, 4.0, 6.0]])], 1)
    torch.testing.assert_close(crops.flatten(), torch.tensor([1037.5]))  # its mean


def test_region_features_from_crops_train_detect_and_need_the_images():
    """``region_features: crop`` (R-CNN style): every box is cut from the image and run through
    the trunk, whose map is pooled to ``pool_size``; training, detection and BoRD work, the
    code reads the crop (not the whole image's map), and cached maps without the images are
    refused with a message."""
    torch.manual_seed(0)
    settings = RegionSettings(
        anchor_sizes=(16, 32), fc_dim=32, fc_layers=0, pool_size=1, sample_size=16,
        train_proposals=40, proposals=20, feature_norm="batchnorm", region_features="crop",
        crop_size=32,
    )  # fmt: skip
    model = RegionCaptioner("timm::resnet18", 20, SP, settings, dim=24, dropout=0.0)
    images = ImageList(torch.randn(2, 3, 64, 64), [(64, 64), (64, 64)])
    boxes = [torch.tensor([[4.0, 4.0, 30.0, 30.0]]), torch.tensor([[10.0, 10.0, 50.0, 40.0]])]
    tokens = [torch.tensor([[5, 6]]), torch.tensor([[7, 8]])]
    losses = model.train().loss(images, boxes, tokens)
    sum(losses.values()).backward()
    assert model.code.weight.grad is not None and model.trunk.conv1.weight.grad is not None
    model.eval()
    assert model.bord(images).shape == (2, 24)
    # the code of a box depends on what is inside it, not on the rest of the image
    features = model.trunk(images.tensors)
    code = model.region_codes(images.tensors, boxes)
    outside = images.tensors.clone()
    outside[:, :, 50:, 50:] = 5.0  # away from both boxes' squares
    torch.testing.assert_close(model.region_codes(outside, boxes), code)
    inside = images.tensors.clone()
    inside[0, :, 10:20, 10:20] = 5.0
    changed = model.region_codes(inside, boxes)
    assert not torch.allclose(changed[0], code[0]) and torch.allclose(changed[1], code[1])
    cached = ImageList(torch.zeros(2, 0, 64, 64), images.image_sizes)
    with pytest.raises(ValueError, match="needs the images"):
        model.train().loss_from_features(features, cached, boxes, tokens)
    with pytest.raises(ValueError, match="region_features must be one of"):
        RegionCaptioner("timm::resnet18", 20, SP, RegionSettings(region_features="roi"), dim=24)


def test_the_config_refuses_crops_from_cached_maps_and_an_unknown_region_feature():
    from capbench.methods.caption_fusion.config import RegionCaptionerConfig

    with pytest.raises(ValueError, match="set cache_trunk_features false"):
        RegionCaptionerConfig(region_features="crop", cache_trunk_features=True)
    with pytest.raises(ValueError, match=r"region_features must be one of \('roi_align', 'crop'\)"):
        RegionCaptionerConfig(region_features="crops")  # a typo fails when the row is planned
    RegionCaptionerConfig(region_features="crop", cache_trunk_features=True, train_trunk=True)
