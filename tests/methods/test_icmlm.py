"""ICMLM (Sariyildiz et al. 2020): the masking of concept tokens, the heads, the losses, the
attention-peak scoring against a hand-made grid, the named-layer features, and the row targets
on the tiny scenes data."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from capbench.methods.config import build_config, config_dict
from capbench.methods.icmlm.config import SMOKE, IcmlmConfig, ModelConfig
from capbench.methods.icmlm.data import IGNORE
from capbench.methods.icmlm.evaluate import (
    HeldOut,
    accuracy_by_object_count,
    accuracy_by_word_kind,
    attention_object_share,
    attention_peak_weight,
    box_mask,
    heldout_metrics,
    position_prior,
)
from capbench.methods.icmlm.features import layer_features
from capbench.methods.icmlm.module import AttFcHead, TfmHead, grid_coordinates
from capbench.methods.icmlm.text import concept_positions

torch.set_num_threads(1)


def test_concept_positions_are_whole_words_only():
    tokens = ["[CLS]", "a", "red", "hex", "##agon", "and", "a", "circle", ".", "[SEP]"]
    index = {"red": 0, "hex": 1, "circle": 2}
    # "hex" starts the longer word "hexagon": masking it alone would leak the rest
    assert concept_positions(tokens, index) == [2, 7]


def test_box_mask_by_hand():
    # a 4 x 4 grid over a 96 px square: cell centres at 12, 36, 60, 84
    inside = box_mask([(30.0, 0.0, 40.0, 40.0)], (96, 96), 96, (4, 4))
    expected = np.zeros((4, 4), dtype=bool)
    expected[:2, 1:3] = True  # x in [30, 70] holds 36, 60; y in [0, 40] holds 12, 36
    assert (inside == expected).all()
    # a 48 x 96 (w x h) image is scaled x1 and padded by 24 px left and right
    inside = box_mask([(0.0, 0.0, 48.0, 96.0)], (48, 96), 96, (4, 4))
    assert (inside == np.array([[False, True, True, False]] * 4)).all()


def test_heldout_metrics_by_hand():
    held = HeldOut(correct=[True, False, True, True], targets=[2, 2, 5, 1])
    # two scored attention maps, both peaking on cell 0: on the object in the first (1 of 4
    # cells on it), off it in the second (2 of 4); the first's cell 0 is off the second's
    # object and the second's on the first's: a position prior of 1/2
    held.maps = [np.eye(4)[0], np.eye(4)[0]]  # attention maps whose peak cells are 0 and 0
    held.inside = [np.array([1, 0, 0, 0]), np.array([0, 1, 1, 0])]
    assert held.peak_cells == [0, 0]
    assert held.peaks == [True, False] and held.chance == [0.25, 0.5]
    held.correct_other_image = [False, False, True, False]
    held.own_image_preferred = [1.0, 0.5, 0.0, 1.0]  # a tie counts half
    out = heldout_metrics(held, most_frequent=2)
    assert out == {
        "mlm_acc": 75.0,
        "mlm_acc_most_frequent": 50.0,
        "mlm_acc_other_image": 25.0,
        "mlm_image_preference": 62.5,
        "mlm_attention_peak": 50.0,
        "mlm_attention_chance": pytest.approx(37.5),
        "mlm_attention_position_prior": pytest.approx(50.0),
    }
    with pytest.raises(ValueError, match="no held-out caption"):
        heldout_metrics(HeldOut(), 0)


def test_position_prior_by_hand():
    """Each example's peak cell scored on the other examples' objects, left out its own."""
    inside = [np.array([0, 1, 0, 0]), np.array([0, 1, 1, 0]), np.array([1, 0, 0, 0])]
    # peak 1 on examples 2, 3: 1, 0 -> 1/2; peak 1 on 1, 3: 1, 0 -> 1/2; peak 0 on 1, 2: 0 -> 0
    assert position_prior([1, 1, 0], inside) == pytest.approx(1 / 3)
    # an attention that always picks the cell every object covers: the prior is 1, whatever
    # the images, and so is the peak rate: no evidence of looking
    always = [np.array([1, 0]), np.array([1, 1])]
    assert position_prior([0, 0], always) == 1.0
    with pytest.raises(ValueError, match="two scored examples"):
        position_prior([0], [np.array([1, 0])])
    held = HeldOut(correct=[True, True, True], targets=[0, 0, 0])
    held.maps, held.inside = [np.eye(4)[c] for c in (1, 1, 0)], inside  # peak cells 1, 1, 0
    assert heldout_metrics(held, 0)["mlm_attention_position_prior"] == pytest.approx(100 / 3)


def test_attention_peak_weight_quartiles_beside_a_uniform_map():
    """The peak cell's weight over the scored examples: its quartiles, and 1 / cells for a
    uniform map; nothing when no attention was scored."""
    peaks = [1.0, 0.25, 0.5, 1.0, 1.0]  # a 2 x 2 map's weight at its peak cell
    maps = [np.array([w] + [(1 - w) / 3] * 3) for w in peaks]
    held = HeldOut(maps=maps, grid=(2, 2))
    assert held.peak_weights == pytest.approx(peaks)
    assert attention_peak_weight(held) == pytest.approx(
        {"q1": 0.5, "median": 1.0, "q3": 1.0, "uniform": 0.25}
    )
    assert attention_peak_weight(HeldOut()) == {}


def test_attention_object_share_against_the_same_maps_on_other_objects():
    """The attention's weight on the named object, beside the same maps' weight on the other
    scored examples' objects and a uniform map's: a map that follows its object scores above
    its prior, one that always weighs the same cells scores its prior."""
    inside = [np.array([1, 0, 0, 0]), np.array([0, 1, 0, 0]), np.array([0, 0, 1, 1])]
    following = [np.array([0.7, 0.1, 0.1, 0.1]), np.array([0.1, 0.7, 0.1, 0.1]),
                 np.array([0.0, 0.0, 0.5, 0.5])]  # fmt: skip
    held = HeldOut(maps=following, inside=inside)
    share = attention_object_share(held)
    # own: 0.7, 0.7, 1.0; on the other two's objects: (0.1 + 0.2) / 2, (0.1 + 0.2) / 2, 0
    assert share["own"] == pytest.approx(100 * 2.4 / 3)
    assert share["position_prior"] == pytest.approx(100 * 0.3 / 3)
    assert share["uniform"] == pytest.approx(100 * 4 / 12)
    fixed = HeldOut(maps=[np.array([0.25] * 4)] * 3, inside=inside)
    fixed_share = attention_object_share(fixed)
    assert fixed_share["own"] == pytest.approx(fixed_share["position_prior"])
    assert attention_object_share(HeldOut(maps=following[:1], inside=inside[:1])) == {}


def _model_cfg() -> ModelConfig:
    return ModelConfig(dim=16, tfm_layers=1, tfm_heads=2, attfc_hidden=8, dropout=0.0)


def test_att_fc_attends_over_the_map_and_follows_the_matching_cell():
    """The attention is a distribution over the map's cells, and a query equal to one cell's
    key puts its peak there (the head is a dot-product attention, not a pooling)."""
    torch.manual_seed(0)
    head = AttFcHead(channels=4, text_dim=6, m=_model_cfg(), n_out=5).eval()
    fmap = torch.randn(2, 4, 3, 3)
    states = torch.randn(2, 7, 6)
    logits, att = head(fmap, states, torch.ones(2, 7), torch.tensor([1, 3]))
    assert logits.shape == (2, 5) and att.shape == (2, 3, 3)
    torch.testing.assert_close(att.sum(dim=(1, 2)), torch.ones(2))
    with torch.no_grad():  # identity-like maps: the query of state 0 is cell (2, 1)'s key
        head.key.weight.zero_()
        head.key.bias.zero_()
        head.query.weight.zero_()
        head.query.bias.zero_()
        head.key.weight[0, 0] = 10.0
        head.query.weight[0, 0] = 10.0
    fmap = torch.zeros(1, 4, 3, 3)
    fmap[0, 0, 2, 1] = 1.0
    states = torch.zeros(1, 2, 6)
    states[0, 0, 0] = 1.0
    _, att = head(fmap, states, torch.ones(1, 2), torch.tensor([0]))
    assert int(att[0].argmax()) == 2 * 3 + 1


def test_tfm_reads_the_masked_position_and_ignores_padding():
    torch.manual_seed(0)
    head = TfmHead(channels=4, text_dim=6, m=_model_cfg(), n_out=5).eval()
    fmap = torch.randn(1, 4, 2, 2)
    states = torch.randn(1, 5, 6)
    attention = torch.tensor([[1, 1, 1, 0, 0]])
    logits, att = head(fmap, states, attention, torch.tensor([1]))
    assert logits.shape == (1, 5) and att is None
    noisy = states.clone()
    noisy[0, 3:] = 100.0  # padded positions change: the prediction must not
    again, _ = head(fmap, noisy, attention, torch.tensor([1]))
    torch.testing.assert_close(logits, again)
    assert grid_coordinates(2, 2, torch.device("cpu")).tolist() == [
        [0.25, 0.25], [0.25, 0.75], [0.75, 0.25], [0.75, 0.75]
    ]  # fmt: skip


def test_layer_features_are_average_pooled_stages(tiny_scenes):
    from capbench.data import read
    from capbench.data.datamodule import record_images
    from capbench.models.backbones import create_backbone

    trunk, _ = create_backbone("torchvision::resnet18")
    records = read("voc2007", tiny_scenes / "voc2007", "test")[:5]
    feats, unreadable = layer_features(
        trunk, record_images(records, 64, True), ["layer3", "layer4"], 4
    )
    assert feats["layer3"].shape == (5, 256) and feats["layer4"].shape == (5, 512)
    assert unreadable == 0
    with torch.no_grad():
        x = record_images(records, 64, True)[0]["image"][None]
        full = trunk.eval()(x).mean(dim=(2, 3))  # the features are taken in eval mode
    np.testing.assert_allclose(feats["layer4"][0], full[0].numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(KeyError, match=r"layer9.*stages are"):
        layer_features(trunk, record_images(records, 64, True), ["layer9"])


def test_an_unreadable_image_keeps_a_row_of_zeros_and_is_counted(tiny_scenes, tmp_path):
    """It used to stop the probe ("unreadable image(s) in the probe's set"), so a row's training
    was lost to one bad file of the evaluation set; the suite's probes already zeroed such rows."""
    import dataclasses

    from capbench.data import read
    from capbench.data.datamodule import record_images
    from capbench.models.backbones import create_backbone

    trunk, _ = create_backbone("torchvision::resnet18")
    records = read("voc2007", tiny_scenes / "voc2007", "test")[:5]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    records[1] = dataclasses.replace(records[1], image_path=str(bad))
    for batch_size in (4, 1):  # the bad image in a batch with others, and alone
        feats, unreadable = layer_features(
            trunk, record_images(records, 64, True), ["layer3", "layer4"], batch_size
        )
        assert unreadable == 1
        assert not feats["layer4"][1].any() and feats["layer4"][[0, 2, 3, 4]].any(axis=1).all()
        assert feats["layer3"].shape == (5, 256)


@pytest.fixture(scope="module")
def smoke_dm(tiny_scenes):
    from capbench.methods.icmlm.train import build_datamodule

    cfg = build_config(IcmlmConfig, SMOKE["config"], "smoke")
    dm = build_datamodule(cfg, {"source": "coco", "root": str(tiny_scenes / "coco")})
    dm.setup("fit")
    return cfg, dm


def test_train_shift_moves_the_training_images_only(smoke_dm, tiny_scenes):
    """``train.shift``: random translations of the training images (scenes: learning the shapes
    rather than memorising the images), none at evaluation, and no flip with ``augment`` off."""
    from torchvision.transforms import v2

    from capbench.methods.icmlm.train import build_datamodule

    cfg, _ = smoke_dm
    cfg = replace(cfg, train=replace(cfg.train, shift=3, augment=False))
    dm = build_datamodule(cfg, {"source": "coco", "root": str(tiny_scenes / "coco")})
    train_steps = dm.transform(train=True).transforms
    crops = [t for t in train_steps if isinstance(t, v2.RandomCrop)]
    assert len(crops) == 1 and crops[0].padding == [3, 3, 3, 3]
    assert not any(isinstance(t, v2.RandomHorizontalFlip) for t in train_steps)
    assert not any(isinstance(t, v2.RandomCrop) for t in dm.transform(train=False).transforms)
    image = dm.dataset("train", train=True)[0]["image"]
    assert image.shape == (3, cfg.model.image_size, cfg.model.image_size)


def test_concepts_are_single_token_content_words_of_the_training_captions(smoke_dm):
    cfg, dm = smoke_dm
    vocab = dm.text_tokenizer.get_vocab()
    assert 0 < len(dm.concepts) <= cfg.concepts.k
    assert all(w in vocab for w in dm.concepts)
    assert "circle" in dm.concepts and "the" not in dm.concepts
    assert dm.categories[:3] == ["circle", "square", "triangle"]


def test_a_training_example_masks_one_concept_it_can_be_scored_on(smoke_dm):
    _, dm = smoke_dm
    torch.manual_seed(0)
    batch = next(iter(dm.train_dataloader()))
    tok = dm.text_tokenizer
    for j in range(len(batch["index"])):
        target = int(batch["target"][j])
        if target == IGNORE:
            continue
        ids = batch["input_ids"][j]
        pos = int(batch["position"][j])
        assert int(ids[pos]) == tok.mask_token_id
        assert (ids == tok.mask_token_id).sum() == 1  # exactly one masked token
        rec = dm.records("train")[int(batch["index"][j])]
        caption = rec.captions[int(batch["caption_index"][j])]
        assert dm.concepts[target] in caption.lower()
        assert batch["postags"][j, target] == 1.0  # TP_Postag's tags hold the masked concept
        assert batch["labels"][j].sum() == len(set(rec.labels))


def test_object_word_share_masks_the_words_that_name_an_object(smoke_dm, tiny_scenes):
    """``concepts.object_word_share: 1``: every training draw masks a word that names an object
    category (a shape) wherever the image's captions have one, and any concept where they have
    none; evaluation draws as at 0; at 0 the draws are those of before the option."""
    from capbench.methods.icmlm.train import build_datamodule

    cfg, dm0 = smoke_dm
    data = {"source": "coco", "root": str(tiny_scenes / "coco")}
    objects = replace(cfg, concepts=replace(cfg.concepts, object_word_share=1.0))
    dm1 = build_datamodule(objects, data)
    dm1.setup("fit")
    cc, shapes = dm1.concept_captions("train"), set(dm1.categories)
    train, held = dm1.example_set("train", train=True), dm1.example_set("train", train=False)
    plain = dm0.example_set("train", train=True)
    drawn_words, named_somewhere = [], 0
    for index in range(len(train)):
        words = {cc.token(index, c, p) for c, p in cc.examples(index)}
        torch.manual_seed(index)
        ((caption, position),) = train.draw(index)
        word = cc.token(index, caption, position)
        if words & shapes:
            named_somewhere += 1
            assert word in shapes, (index, word, words)
        drawn_words.append(word)
        assert held.draw(index) == dm0.example_set("train", train=False).draw(index)
        torch.manual_seed(index)
        at_zero = plain.draw(index)
        torch.manual_seed(index)
        assert at_zero == [cc.examples(index)[int(torch.randint(len(cc.examples(index)), ()))]]
    assert named_somewhere > 0 and set(drawn_words) & shapes
    # share 0.5: an image with both kinds of word draws a shape name about half the time plus
    # its uniform share of the other half, and still draws the other words
    half = build_datamodule(
        replace(cfg, concepts=replace(cfg.concepts, object_word_share=0.5)), data
    )
    half.setup("fit")
    mixed = half.example_set("train", train=True)

    def shape_rate(i: int) -> float:  # a uniform draw's odds of a shape name in image i
        return float(np.mean([cc.token(i, c, p) in shapes for c, p in cc.examples(i)] or [0]))

    index = min((i for i in range(len(mixed)) if shape_rate(i) > 0), key=shape_rate)
    uniform = shape_rate(index)
    assert uniform < 0.5  # so a draw that ignored the share would fall below the bound
    torch.manual_seed(0)
    named = np.mean([cc.token(index, *mixed.draw(index)[0]) in shapes for _ in range(400)])
    assert 0.5 + 0.5 * uniform - 0.1 < named < 1.0
    with pytest.raises(ValueError, match=r"concepts\.object_word_share must be in \[0, 1\]"):
        replace(cfg.concepts, object_word_share=1.5)


def test_several_masked_captions_per_image_share_its_feature_map(smoke_dm):
    """``concepts.masks_per_image: 3``: each image brings 3 distinct masked (caption, concept)
    pairs, each scored against its own image's map, not another's."""
    from capbench.methods.icmlm.data import IcmlmDataModule
    from capbench.methods.icmlm.train import build_module

    cfg, dm = smoke_dm
    concepts = replace(cfg.concepts, masks_per_image=3)
    dm3 = IcmlmDataModule(
        source="coco", root=dm.root, reader_options={"splits": "karpathy", "instances": True},
        longest_side=cfg.model.image_size, pad_to_square=True, batch_size=4, val_split=None,
        test_split=None, concept_options=config_dict(concepts), text_encoder=cfg.model.text_encoder,
    )  # fmt: skip
    dm3.setup("fit")
    torch.manual_seed(0)
    batch = next(iter(dm3.train_dataloader()))
    n = len(batch["index"])
    assert batch["input_ids"].shape[0] == batch["target"].shape[0] == 3 * n
    assert batch["mask_image"].tolist() == [i for i in range(n) for _ in range(3)]
    cc = dm3.concept_captions("train")
    for i, index in enumerate(batch["index"].tolist()):
        rows = range(3 * i, 3 * i + 3)
        pairs = {(int(batch["caption_index"][j]), int(batch["position"][j])) for j in rows}
        assert len(pairs) == min(3, len(cc.examples(index)))  # distinct while there are enough
        for j in rows:
            ids, target = cc.masked(
                index, int(batch["caption_index"][j]), int(batch["position"][j])
            )
            assert torch.equal(batch["input_ids"][j, : len(ids)], ids)
            assert int(batch["target"][j]) == target
    model = build_module(replace(cfg, train=replace(cfg.train, mode="att-fc")), dm3).eval()
    fmap = model(batch["image"])
    logits, att = model.predict_concepts(batch, fmap)
    assert logits.shape[0] == att.shape[0] == 3 * n
    # the second image's captions read the second image's map: changing the first changes nothing
    other = fmap.clone()
    other[0] = torch.randn_like(other[0])
    logits2, _ = model.predict_concepts(batch, other)
    torch.testing.assert_close(logits2[3:], logits[3:])
    assert not torch.allclose(logits2[:3], logits[:3])
    with pytest.raises(ValueError, match=r"concepts\.masks_per_image must be >= 1, got 0"):
        replace(cfg.concepts, masks_per_image=0)


@pytest.mark.parametrize("mode", ["tfm", "att-fc", "tp_label", "tp_postag"])
def test_each_mode_has_its_losses_and_a_gradient_into_the_trunk(smoke_dm, mode):
    from dataclasses import replace

    from capbench.methods.icmlm.train import build_module

    cfg, dm = smoke_dm
    cfg = replace(cfg, train=replace(cfg.train, mode=mode))
    torch.manual_seed(0)
    model = build_module(cfg, dm)
    batch = next(iter(dm.train_dataloader()))
    losses = model.losses(batch)
    expected = {
        "tfm": {"mlm", "postag"}, "att-fc": {"mlm", "postag"},
        "tp_label": {"label"}, "tp_postag": {"postag"},
    }[mode]  # fmt: skip
    assert expected <= set(losses)
    parts = [losses[k] * (cfg.train.tp_postag_weight if k == "postag" else 1) for k in expected]
    torch.testing.assert_close(losses["loss"], sum(parts))
    losses["loss"].backward()
    assert model.trunk.conv1.weight.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in model.text_encoder.model.parameters()) or mode in (
        "tp_label",
        "tp_postag",
    )


@pytest.mark.parametrize("mode", ["tfm", "att-fc", "tp_label", "tp_postag"])
def test_losses_against_hand_values(smoke_dm, mode):
    """Heads replaced by fixed outputs whose losses are known by hand: concept logits 0 except
    ln(K - 1) at the target, so each masked word costs -ln(K - 1) + ln(2 (K - 1)) = ln 2 and
    is predicted right; multi-label logits 0, so every tag costs ln 2 whatever its label. The
    total is ln 2 (1 + tp_postag_weight) for the ICMLM heads, ln 2 for a TP baseline."""
    import math

    from capbench.methods.icmlm.train import build_module

    cfg, dm = smoke_dm
    cfg = replace(cfg, train=replace(cfg.train, mode=mode, tp_postag_weight=0.5))
    torch.manual_seed(0)
    model = build_module(cfg, dm)
    batch = next(iter(dm.train_dataloader()))
    target = batch["target"]
    k = len(model.concept_words)
    logits = torch.zeros(len(target), k)
    scored = (target != IGNORE).nonzero().squeeze(1)
    logits[scored, target[scored]] = math.log(k - 1)
    model.predict_concepts = lambda batch, fmap: (logits, None)
    for head in (model.postag, model.label):
        if head is not None:
            head.forward = lambda pooled, head=head: torch.zeros(len(pooled), head.out_features)
    out = model.losses(batch)
    ln2 = math.log(2)
    if mode in ("tfm", "att-fc"):
        assert len(scored) > 0
        assert out["mlm"].item() == pytest.approx(ln2, abs=1e-6)
        assert out["mlm_acc"].item() == 1.0
        assert out["postag"].item() == pytest.approx(ln2, abs=1e-6)
        assert out["loss"].item() == pytest.approx(ln2 * 1.5, abs=1e-6)
    else:
        key = "label" if mode == "tp_label" else "postag"
        assert set(out) == {key, "loss"}
        assert out[key].item() == out["loss"].item() == pytest.approx(ln2, abs=1e-6)


@pytest.mark.parametrize("mode", ["tfm", "att-fc"])
def test_heads_can_read_an_earlier_stage_while_tp_postag_reads_the_last(smoke_dm, mode):
    """``model.head_layer``: the heads read that stage's map (finer on small images), the
    TP_Postag term and transfer still the last map; both come from one trunk pass."""
    from capbench.methods.icmlm.train import build_module

    cfg, dm = smoke_dm
    cfg = replace(
        cfg, model=replace(cfg.model, head_layer="layer3"), train=replace(cfg.train, mode=mode)
    )
    torch.manual_seed(0)
    model = build_module(cfg, dm).eval()
    assert model.head_channels == 256 and model.channels == 512
    x = torch.randn(2, 3, 64, 64)
    head, last = model.feature_maps(x)
    assert head.shape == (2, 256, 4, 4) and last.shape == (2, 512, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(last, model(x))
        torch.testing.assert_close(model.head_map(x), model.trunk[:-1](x))
    batch = next(iter(dm.train_dataloader()))
    losses = model.train().losses(batch)
    losses["mlm"].backward()
    # the masked-word loss reaches the stages up to layer3, not layer4 (only TP_Postag trains it)
    assert model.trunk.layer3[0].conv1.weight.grad.abs().sum() > 0
    assert model.trunk.layer4[0].conv1.weight.grad is None
    if mode == "att-fc":
        _, att = model.predict_concepts(batch, model.head_map(batch["image"]))
        assert att is not None and att.shape[1:] == head.shape[2:]
    with pytest.raises(ValueError, match=r"model.head_layer 'layer9' is not a stage"):
        build_module(replace(cfg, model=replace(cfg.model, head_layer="layer9")), dm)
    timm_cfg = replace(cfg.model, backbone="timm::resnet18", head_layer="layer3")
    with pytest.raises(ValueError, match=r"needs a trunk that is a sequence of stages"):
        build_module(replace(cfg, model=timm_cfg), dm)


def test_cross_entropy_at_start_is_log_k(smoke_dm):
    """An untrained head predicts near-uniformly: the ICMLM loss starts near ln K."""
    from dataclasses import replace

    from capbench.methods.icmlm.train import build_module

    cfg, dm = smoke_dm
    cfg = replace(cfg, train=replace(cfg.train, mode="att-fc", tp_postag_weight=0.0))
    torch.manual_seed(0)
    model = build_module(cfg, dm).eval()
    with torch.no_grad():
        loss = model.losses(next(iter(dm.train_dataloader())))["mlm"]
    assert abs(float(loss) - np.log(len(dm.concepts))) < 1.0


def test_suite_encoder_is_the_checkpoint_trunk_pooled(smoke_dm, tiny_scenes, tmp_path):
    from capbench.data import read
    from capbench.methods.icmlm.encoder import suite_encoder
    from capbench.methods.icmlm.train import build_module
    from capbench.methods.training import save_plain_checkpoint

    cfg, dm = smoke_dm
    torch.manual_seed(0)
    model = build_module(cfg, dm)
    ckpt = save_plain_checkpoint(model, tmp_path / "m.ckpt")
    enc = suite_encoder(SMOKE["config"], str(ckpt), tiny_scenes, 0)
    records = read("voc2007", tiny_scenes / "voc2007", "test")[:3]
    feats = enc.images(records)
    assert feats.shape == (3, 512) and enc.texts is None
    from capbench.data.datamodule import record_images

    with torch.no_grad():
        x = record_images(records, 64, True)[1]["image"][None]
        expected = model.trunk.eval()(x).mean(dim=(2, 3))[0]
    torch.testing.assert_close(feats[1], expected, rtol=1e-5, atol=1e-5)


def test_att_fc_position_key_norm_ranks_cells_by_content_not_by_place(tmp_path):
    """``model.attfc_key_norm: position``: a cell that holds the same strong signal in every
    image (a border's padding, a favoured place) stops drawing the attention once the running
    statistics have seen it, while a cell that stands out in one image still does; the
    statistics travel with the state dict."""
    torch.manual_seed(0)
    states = torch.rand(8, 3, 6) + 0.5  # positive: every query prefers the largest keys
    position = torch.ones(8, dtype=torch.long)
    fmap = torch.randn(8, 4, 3, 3) * 0.1
    fmap[:, :, 0, 0] += 5.0  # the same in every image

    def attention_on_corner(head: AttFcHead) -> torch.Tensor:
        with torch.no_grad():
            for layer in (head.query, head.key):
                layer.weight.fill_(1.0)
                layer.bias.zero_()
            return head(fmap, states, torch.ones(8, 3), position)[1][:, 0, 0]

    plain = AttFcHead(4, 6, _model_cfg(), 5).eval()
    assert (attention_on_corner(plain) > 0.99).all()  # raw keys: the constant cell wins
    normed = AttFcHead(4, 6, replace(_model_cfg(), attfc_key_norm="position"), 5)
    with torch.no_grad():
        for _ in range(60):  # training batches: running mean and variance per channel and cell
            normed(fmap + 0.1 * torch.randn_like(fmap), states, torch.ones(8, 3), position)
    normed.eval()
    assert float(attention_on_corner(normed).mean()) < 0.3  # about 1 in 9: no favourite
    bright = fmap.clone()
    bright[0, :, 2, 1] += 1.0  # one image's content stands out at one cell
    with torch.no_grad():
        att = normed(bright, states, torch.ones(8, 3), position)[1]
    assert int(att[0].argmax()) == 2 * 3 + 1
    torch.save(normed.state_dict(), tmp_path / "head.pt")
    again = AttFcHead(4, 6, replace(_model_cfg(), attfc_key_norm="position"), 5)
    again.load_state_dict(torch.load(tmp_path / "head.pt"))
    again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(bright, states, torch.ones(8, 3), position)[1], att)
    with pytest.raises(ValueError, match=r"model.attfc_key_norm must be one of"):
        AttFcHead(4, 6, replace(_model_cfg(), attfc_key_norm="cells"), 5)


def test_att_fc_cosine_scores_stay_below_their_scale_and_learn_it():
    """``model.attfc_scores: cosine``: keys of any magnitude score a cell at most the learned
    scale above another (so the softmax keeps a gradient where raw dot products make it one-hot),
    the scale gets a gradient and starts at ``attfc_cosine_scale``; bad values are refused."""
    torch.manual_seed(0)
    states = torch.rand(4, 3, 6) + 0.5  # positive: with the weights below every query agrees
    position = torch.ones(4, dtype=torch.long)
    fmap = torch.rand(4, 4, 3, 3)
    fmap[:, :, 2, 2] *= 1000.0  # one cell's features a thousand times louder
    plain = AttFcHead(4, 6, _model_cfg(), 5).eval()
    with torch.no_grad():
        for layer in (plain.query, plain.key):
            layer.weight.fill_(1.0)
            layer.bias.zero_()
    cosine = AttFcHead(
        4, 6, replace(_model_cfg(), attfc_scores="cosine", attfc_cosine_scale=2.0), 5
    )
    cosine.eval()
    with torch.no_grad():
        hard = plain(fmap, states, torch.ones(4, 3), position)[1].flatten(1)
        soft = cosine(fmap, states, torch.ones(4, 3), position)[1].flatten(1)
    assert (hard.max(dim=1).values > 0.999).all()  # raw scores: one cell takes it all
    # cosines in [-1, 1] times 2: no two cells' weights differ by more than e^4
    assert float((soft.max(dim=1).values / soft.min(dim=1).values).max()) <= math.exp(4.0) + 1e-3
    assert float(cosine.log_scale.exp()) == pytest.approx(2.0)
    logits, _ = cosine.train()(fmap, states, torch.ones(4, 3), position)
    logits.sum().backward()
    assert cosine.log_scale.grad is not None and float(cosine.log_scale.grad.abs()) > 0
    assert "log_scale" not in dict(plain.named_parameters())
    with pytest.raises(ValueError, match=r"model.attfc_scores must be one of"):
        AttFcHead(4, 6, replace(_model_cfg(), attfc_scores="l2"), 5)
    with pytest.raises(ValueError, match=r"model.attfc_cosine_scale must be in"):
        AttFcHead(4, 6, replace(_model_cfg(), attfc_scores="cosine", attfc_cosine_scale=0.0), 5)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("attfc_scores", "l2"),
        ("attfc_key_norm", "cells"),
        ("attfc_norm", "layernorm"),
        ("tfm_visual_norm", "layernorm"),
        ("text_dtype", "float16"),
    ],
)
def test_a_misspelt_model_choice_fails_when_the_config_is_read_even_in_a_row_that_ignores_it(
    key, value
):
    """A tfm row never builds att-fc's head, so a choice checked only there would pass unseen."""
    config = {**SMOKE["config"], "train": {**SMOKE["config"]["train"], "mode": "tfm"}}
    config["model"] = {**config["model"], key: value}
    with pytest.raises(ValueError, match=rf"model\.{key} must be one of .*got '{value}'"):
        build_config(IcmlmConfig, config, "smoke")


@pytest.mark.parametrize("with_text", [True, False])
def test_att_fc_reads_the_masked_text_state_only_when_told(with_text):
    """``model.attfc_text``: the FC layers see the masked token's state beside the attended
    vector (so they can tell which kind of word is masked); off, they see the image alone."""
    torch.manual_seed(0)
    m = replace(_model_cfg(), attfc_text=with_text)
    head = AttFcHead(channels=4, text_dim=6, m=m, n_out=5).eval()
    fmap = torch.randn(1, 4, 3, 3)
    states = torch.randn(1, 3, 6)
    other = states.clone()
    other[0, 1] += 1.0  # the masked state differs; the query does not (attention held equal)
    with torch.no_grad():
        head.query.weight.zero_()
        a, att_a = head(fmap, states, torch.ones(1, 3), torch.tensor([1]))
        b, att_b = head(fmap, other, torch.ones(1, 3), torch.tensor([1]))
    torch.testing.assert_close(att_a, att_b)
    assert (not torch.allclose(a, b)) == with_text


def test_accuracy_by_word_kind_by_hand():
    held = HeldOut(correct=[True, False, True, True], targets=[2, 2, 5, 1])
    held.correct_other_image = [False, False, True, True]
    held.names_object = [True, True, False, False]
    assert accuracy_by_word_kind(held) == {
        "object_words": {"n": 2, "acc": 50.0, "acc_other_image": 0.0},
        "other_words": {"n": 2, "acc": 100.0, "acc_other_image": 100.0},
    }


def test_accuracy_by_object_count_by_hand():
    held = HeldOut(correct=[True, False, True, True, False], targets=[2, 2, 5, 1, 3])
    held.correct_other_image = [False, False, True, True, True]
    held.n_objects = [1, 1, 3, 2, 0]
    assert accuracy_by_object_count(held) == {
        "no_objects": {"n": 1, "acc": 0.0, "acc_other_image": 100.0},
        "one_object": {"n": 2, "acc": 50.0, "acc_other_image": 0.0},
        "several_objects": {"n": 2, "acc": 100.0, "acc_other_image": 100.0},
    }
    held.n_objects = held.n_objects[:4]  # not recorded for every example: no split, not a wrong one
    assert accuracy_by_object_count(held) == {}


def test_heldout_examples_carry_their_images_object_count(smoke_dm):
    """``evaluate_heldout`` notes for each scored example how many annotated objects its image
    has (the COCO instances the reader attaches; on scenes, the shapes drawn)."""
    from capbench.methods.icmlm.evaluate import evaluate_heldout
    from capbench.methods.icmlm.train import build_module

    cfg, dm = smoke_dm
    torch.manual_seed(0)
    held = evaluate_heldout(build_module(cfg, dm), dm, "val", 6)
    records = dm.records("val")
    data = dm.example_set("val", train=False)
    scored = [i for i in range(min(6, len(data))) if int(data[i]["target"]) != IGNORE]
    assert len(scored) == len(held.correct) > 0
    assert held.n_objects == [len(records[i].meta["instances"]) for i in scored]
    assert all(n > 0 for n in held.n_objects)
    split = accuracy_by_object_count(held)
    assert sum(row["n"] for row in split.values()) == len(held.correct)


def test_heldout_att_fc_examples_carry_their_peak_weight(smoke_dm):
    """For each att-fc example scored on its object, ``evaluate_heldout`` keeps the attention's
    weight at the peak cell: between a uniform map's 1 / cells and 1."""
    from capbench.methods.icmlm.evaluate import evaluate_heldout
    from capbench.methods.icmlm.train import build_module

    cfg, dm = smoke_dm
    torch.manual_seed(0)
    model = build_module(replace(cfg, train=replace(cfg.train, mode="att-fc")), dm)
    held = evaluate_heldout(model, dm, "val", 1000)
    assert held.grid is not None and len(held.peak_weights) == len(held.peak_cells) > 0
    assert len(held.maps) == len(held.peak_cells)
    assert all(m.size == held.grid[0] * held.grid[1] for m in held.maps)
    np.testing.assert_allclose([m.sum() for m in held.maps], 1.0, atol=1e-3)
    cells = held.grid[0] * held.grid[1]
    assert all(1 / cells - 1e-6 <= w <= 1 + 1e-6 for w in held.peak_weights)
    assert attention_peak_weight(held)["uniform"] == pytest.approx(1 / cells)


def test_att_fc_can_standardise_the_attended_vector_before_its_fc_layers():
    """``model.attfc_norm: batchnorm``: the FC layers read the attended vector with each channel
    standardised over the batch (so a scaled map gives the same logits); an unknown norm fails."""
    torch.manual_seed(0)
    head = AttFcHead(4, 6, replace(_model_cfg(), attfc_norm="batchnorm"), 5).train()
    fmap, states = torch.randn(8, 4, 3, 3), torch.randn(8, 3, 6)
    with torch.no_grad():
        head.key.weight.zero_()  # attention independent of the map's scale
        a, _ = head(fmap, states, torch.ones(8, 3), torch.full((8,), 1))
        b, _ = head(fmap * 50.0, states, torch.ones(8, 3), torch.full((8,), 1))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"model.attfc_norm.*batchnorm"):
        AttFcHead(4, 6, replace(_model_cfg(), attfc_norm="layernorm"), 5)


def test_tfm_can_standardise_its_visual_tokens():
    """``model.tfm_visual_norm: batchnorm``: each channel of the map is standardised over the
    batch's images and cells before the visual projection, so a scaled map gives the same
    logits (without it, it does not); an unknown norm fails."""
    from capbench.methods.icmlm.module import TfmHead

    fmap, states = torch.randn(8, 4, 3, 3), torch.randn(8, 3, 6)
    args = (states, torch.ones(8, 3), torch.full((8,), 1))
    for norm, same in (("batchnorm", True), ("none", False)):
        torch.manual_seed(0)
        cfg = replace(_model_cfg(), tfm_visual_norm=norm, dropout=0.0)
        head = TfmHead(4, 6, cfg, 5).train()
        with torch.no_grad():
            a, _ = head(fmap, *args)
            b, _ = head(fmap * 50.0, *args)
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4) == same, norm
    with pytest.raises(ValueError, match=r"model.tfm_visual_norm.*batchnorm"):
        TfmHead(4, 6, replace(_model_cfg(), tfm_visual_norm="layernorm"), 5)


def test_peak_cell_shares_and_their_figure(tmp_path):
    from capbench.methods.icmlm.figures import draw_peak_cells, peak_cell_shares

    inside = [np.array([0, 1, 0, 1]), np.array([0, 1, 1, 0]), np.array([1, 1, 0, 0])]
    peaks, covered = peak_cell_shares([1, 1, 0], inside, (2, 2))
    np.testing.assert_allclose(peaks, [[1 / 3, 2 / 3], [0.0, 0.0]])
    np.testing.assert_allclose(covered, [[1 / 3, 1.0], [1 / 3, 1 / 3]])
    rates = {"mlm_attention_peak": 66.7, "mlm_attention_position_prior": 66.7}
    path = draw_peak_cells(peaks, covered, 3, rates, tmp_path / "cells.png")
    assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"


def test_two_phase_cosine_restarts_for_the_head_epochs():
    from capbench.methods.icmlm.module import two_phase_cosine

    got = [round(two_phase_cosine(e, 3, 2), 6) for e in range(5)]
    assert got == [1.0, 0.75, 0.25, 1.0, 0.5]


def test_head_epochs_need_an_icmlm_head():
    from capbench.methods.icmlm.config import TrainConfig

    with pytest.raises(ValueError, match="head_epochs trains an ICMLM head"):
        TrainConfig(mode="tp_postag", head_epochs=2)
    with pytest.raises(ValueError, match=">= 0"):
        TrainConfig(mode="tfm", head_epochs=-1)
    with pytest.raises(ValueError, match="head_examples_per_image"):
        TrainConfig(mode="tfm", head_examples_per_image=-1)
    with pytest.raises(ValueError, match=r"set train\.head_epochs too"):
        TrainConfig(mode="tfm", head_examples_per_image=4)  # would silently do nothing


def test_head_epochs_train_the_head_alone_on_the_frozen_trunks_maps(tiny_scenes, tmp_path):
    """After the joint epoch, the head-only epochs leave the trunk and TP_Postag head as they
    were, train the ICMLM head, and read no image (the trunk's maps were cached)."""
    import lightning as L

    from capbench.methods.icmlm.train import build_datamodule, train_icmlm

    cfg = build_config(IcmlmConfig, SMOKE["config"], "smoke")
    cfg = replace(
        cfg, train=replace(cfg.train, max_epochs=1, head_epochs=2, head_examples_per_image=1)
    )
    dm = build_datamodule(cfg, {"source": "coco", "root": str(tiny_scenes / "coco")})
    seen: list[tuple[int, bool]] = []
    masked: dict[int, set[tuple[int, int, int]]] = {}  # epoch -> (image, caption, position)
    after_joint: dict[str, torch.Tensor] = {}

    class Spy(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append((trainer.current_epoch, "image" in batch))
            rows = zip(batch["index"].tolist(), batch["caption_index"].tolist(),
                       batch["position"].tolist(), batch["target"].tolist())  # fmt: skip
            masked.setdefault(trainer.current_epoch, set()).update(
                (i, c, p) for i, c, p, t in rows if t >= 0
            )

        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.current_epoch == 0:
                after_joint.update({k: v.clone() for k, v in pl_module.state_dict().items()})

    torch.manual_seed(0)
    model, _ = train_icmlm(
        cfg, dm, tmp_path, accelerator="cpu", devices=1, progress=False, callbacks=[Spy()]
    )
    assert {e for e, _ in seen} == {0, 1, 2}
    assert all(img for e, img in seen if e == 0) and not any(img for e, img in seen if e > 0)
    final = model.state_dict()
    for name, before in after_joint.items():
        moved = not torch.equal(final[name], before)
        if name.startswith("head.") and name.endswith("weight"):
            assert moved, f"{name}: the head did not train in the head-only epochs"
        elif not name.startswith("head."):
            assert not moved, f"{name} moved in the head-only epochs"
    assert dm.dataset("train", train=True).load_images  # restored for a later fit
    # head_examples_per_image=1: both head epochs mask the same caption word of each image
    assert masked[1] == masked[2] and len(masked[1]) == len({i for i, _, _ in masked[1]})
    assert dm.concept_captions("train").kept == 0  # every example offered again


def test_kept_examples_are_a_fixed_seeded_subset():
    """``keep_examples(n, seed)``: each record offers the same n of its examples until reset,
    another seed another subset; a record with n or fewer offers them all."""
    from capbench.methods.icmlm.data import ConceptCaptions

    cc = ConceptCaptions.__new__(ConceptCaptions)
    cc.positions = [[[1, 3, 5], [2, 4]], [[1]]]  # record 0: 5 examples; record 1: one
    cc.keep_examples(0)  # what __init__ does after tokenising
    every = cc.examples(0)
    assert len(every) == 5
    cc.keep_examples(2, seed=0)
    kept = cc.examples(0)
    assert len(kept) == 2 and set(kept) <= set(every) and cc.examples(0) == kept
    assert cc.examples(1) == [(0, 1)]
    subsets = set()
    for seed in range(8):
        cc.keep_examples(2, seed)
        subsets.add(tuple(cc.examples(0)))
    assert len(subsets) > 1  # the seed chooses
    cc.keep_examples(0)
    assert cc.examples(0) == every
    with pytest.raises(ValueError, match=">= 0"):
        cc.keep_examples(-1)


def test_bfloat16_text_states_match_float32_ones():
    """The frozen encoder in bfloat16 gives the float32 states up to rounding (the scenes
    profile's speed choice must not change what the heads read)."""
    from capbench.methods.icmlm.text import FrozenTextEncoder
    from capbench.models.pretrained_text import MINILM

    exact = FrozenTextEncoder(MINILM, 32, cache=False)
    fast = FrozenTextEncoder(MINILM, 32, cache=False, dtype="bfloat16")
    enc = exact.tokenizer(
        ["a small red [MASK] on the grass", "two [MASK] shapes near the lake shore"],
        return_tensors="pt", padding=True,
    )  # fmt: skip
    a = exact.encode(enc["input_ids"], enc["attention_mask"])
    b = fast.encode(enc["input_ids"], enc["attention_mask"])
    assert b.dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)[enc["attention_mask"].bool()]
    assert float(cos.min()) > 0.99
    with pytest.raises(ValueError, match="text_dtype"):
        FrozenTextEncoder(MINILM, 32, dtype="float8")
