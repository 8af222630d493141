"""End to end: a few training steps of SemanticRetrieval on synthetic images (CPU, seconds).

The synthetic set: images whose coloured quadrants are their 'concepts', and tf-idf rows of
those concepts' words, so the tf-idf k-NN are the images sharing concepts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset

from capbench.data.sampling import sample_pool, select_hard_triplets
from capbench.losses import triplet_margin_dot
from capbench.methods.semantic_retrieval import (
    SemanticRetrieval,
    load_semantic_retrieval,
    train_semantic_retrieval,
)
from capbench.methods.semantic_retrieval_data import TrainingData, relevant_sets

torch.set_num_threads(1)

COLOURS = torch.tensor(
    [
        [1.0, -1.0, -1.0],
        [-1.0, 1.0, -1.0],
        [-1.0, -1.0, 1.0],
        [1.0, 1.0, -1.0],
        [-1.0, 1.0, 1.0],
        [1.0, -1.0, 1.0],
    ]
)


class ConceptImages(Dataset):
    def __init__(self, concepts: np.ndarray, size: int = 64, seed: int = 0) -> None:
        self.concepts = concepts
        g = torch.Generator().manual_seed(seed)
        self.noise = 0.3 * torch.randn(len(concepts), 3, size, size, generator=g)
        self.size = size

    def __len__(self) -> int:
        return len(self.concepts)

    def __getitem__(self, i: int) -> dict:
        img = self.noise[i].clone()
        h = self.size // 2
        for j, c in enumerate(self.concepts[i]):
            y, x = divmod(j, 2)
            img[:, y * h : (y + 1) * h, x * h : (x + 1) * h] += COLOURS[c].view(3, 1, 1)
        return {"image": img, "index": i, "image_id": str(i)}


def synthetic_data(n: int = 48, k: int = 6, size: int = 64, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    concepts = np.stack([rng.choice(6, size=2, replace=False) for _ in range(n)])
    rows = np.repeat(np.arange(n), 2)
    X = sp.csr_matrix(
        (np.full(2 * n, 2**-0.5, dtype=np.float32), (rows, concepts.ravel())), shape=(n, 8)
    )
    return TrainingData(ConceptImages(concepts, size, seed), X, relevant_sets(X, k))


CONFIG = {
    "model": {"backbone": "timm::resnet18", "allow_random_init": True, "levels": 2},
    "train": {
        "lr": 1e-3,
        "lr_after": 1e-4,
        "lr_drop_step": 8,
        "max_steps": 12,
        "margin": 0.1,
        "whitening_images": 32,
        "embed_batch_size": 16,
        "freeze_bn": True,
    },
    "mining": {
        "n_queries": 16,
        "positives_per_query": 3,
        "top_per_pair": 10,
        "batch_size": 8,
        "remine_every": 4,
    },
}


def _fixed_triplet_loss(model: SemanticRetrieval, data, triplets: torch.Tensor) -> float:
    phi = model.embed_dataset(data.images)
    return float(
        triplet_margin_dot(phi[triplets[:, 0]], phi[triplets[:, 1]], phi[triplets[:, 2]], 0.1)
    )


def test_fit_decreases_loss_and_resumes(tmp_path):
    data = synthetic_data(size=32)
    torch.manual_seed(0)
    model0 = SemanticRetrieval(
        backbone="timm::resnet18", levels=2, whitening_images=32, embed_batch_size=16
    )
    model0.init_whitening_from(data.images)
    # a fixed evaluation set of triplets mined by the untrained model
    cfg = model0.mining_cfg
    cfg.n_queries, cfg.positives_per_query, cfg.top_per_pair = 48, 6, 5
    pool = sample_pool(data.relevant, cfg, torch.Generator().manual_seed(1))
    feats = model0.embed_dataset(torch.utils.data.Subset(data.images, pool.pool.tolist()))
    triplets, _ = select_hard_triplets(feats, pool, data.relevant, cfg)
    before = _fixed_triplet_loss(model0, data, triplets)

    model, ckpt = train_semantic_retrieval(
        [],
        None,
        CONFIG,
        tmp_path,
        seed=0,
        mode="V",
        accelerator="cpu",
        devices=1,
        progress=False,
        data=data,
    )
    after = _fixed_triplet_loss(model, data, triplets)
    assert ckpt.is_file() and model.global_step == 12
    assert after < before * 0.8, (before, after)

    # a finished run is reloaded, not retrained: even a broken dataset is never touched
    again, path2 = train_semantic_retrieval(
        [],
        None,
        CONFIG,
        tmp_path,
        seed=0,
        mode="V",
        accelerator="cpu",
        devices=1,
        progress=False,
        data=None,
    )
    assert path2 == ckpt
    x4 = torch.stack([data.images[i]["image"] for i in range(4)])
    torch.testing.assert_close(
        again.embed_images(x4), model.eval().embed_images(x4), atol=1e-5, rtol=1e-4
    )
    loaded = load_semantic_retrieval(ckpt)
    x = torch.stack([data.images[i]["image"] for i in range(4)])
    torch.testing.assert_close(
        loaded.eval().embed_images(x), model.eval().embed_images(x), atol=1e-5, rtol=1e-4
    )


def test_vt_and_wsabie_train_and_query(tmp_path):
    data = synthetic_data(n=32, size=32)
    cfg = {**CONFIG, "train": {**CONFIG["train"], "max_steps": 4}}
    for mode in ("V+T", "WSABIE"):
        model, _ = train_semantic_retrieval(
            [],
            None,
            cfg,
            tmp_path / mode,
            seed=0,
            mode=mode,
            accelerator="cpu",
            devices=1,
            progress=False,
            data=data,
        )
        theta = model.embed_text(data.tfidf[:5])
        assert theta.shape == (5, model.out_dim)
        torch.testing.assert_close(theta.norm(dim=1), torch.ones(5))
        x = torch.stack([data.images[i]["image"] for i in range(5)])
        q = model.embed_query(x, data.tfidf[:5])
        expected = torch.nn.functional.normalize(model.embed_images(x) + theta, dim=1)
        torch.testing.assert_close(q, expected, atol=1e-5, rtol=1e-4)
        # precomputed phi and theta give the same query
        torch.testing.assert_close(
            model.embed_query(model.embed_images(x), theta), expected, atol=1e-5, rtol=1e-4
        )


def test_grad_cam_hooks_compose_to_single_scale_descriptor():
    model = SemanticRetrieval(backbone="timm::resnet18", levels=2, scales=(1.0,)).eval()
    x = torch.randn(2, 3, 64, 64)
    fmap = model.conv_features(x)
    assert fmap.shape == (2, 512, 2, 2)
    torch.testing.assert_close(model.pool_features(fmap), model.embed_images(x))


def test_lightning_cli_resolves_the_method(capsys):
    import pytest

    from capbench.commands.lightning import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", "SemanticRetrieval", "--model.mode", "V", "--print_config"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "class_path: capbench.methods.semantic_retrieval.SemanticRetrieval" in out
    assert "lr_drop_step: 8000" in out


def test_lightning_cli_fit_on_a_real_layout(tmp_path):
    """``capbench fit``: the module reads a Visual Genome layout, fits tf-idf, learns theta's
    vocabulary size at setup, and trains with one mining round per epoch."""
    import json

    from capbench.commands.lightning import main
    from capbench.data.fixtures import write_fixture

    root = write_fixture("visual_genome", tmp_path / "vg")
    data = {
        "name": "visual_genome",
        "root": str(root),
        "split": "train",
        "model": {"longest_side": 64},
        "train": {"k_relevant": 2},
    }
    mining = {"n_queries": 4, "positives_per_query": 2, "batch_size": 4, "remine_every": 2}
    argv = ["fit", "--model", "SemanticRetrieval", "--model.mode", "V+T", "--model.levels", "2",
            "--model.whitening_images", "4", "--model.data", json.dumps(data), "--model.mining", json.dumps(mining),
            "--trainer.max_steps", "4", "--trainer.accelerator", "cpu", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 0
    ckpts = sorted((tmp_path / "run").rglob("*.ckpt"))
    assert ckpts, "LightningCLI saved no checkpoint"
    model = load_semantic_retrieval(ckpts[-1])
    assert model.text is not None and model.hparams.vocab_size == model.text.vocab_size
    ckpt = torch.load(ckpts[-1], map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 4 and ckpt["epoch"] >= 1  # two mining rounds of two updates


def test_trainable_from_freezes_only_the_earlier_stages():
    import pytest

    model = SemanticRetrieval(backbone="timm::resnet18", trainable_from="layer4")
    flags = {n: p.requires_grad for n, p in model.trunk.named_parameters()}
    assert not flags["conv1.weight"] and not flags["layer3.1.bn2.bias"]
    assert flags["layer4.0.conv1.weight"] and all(p.requires_grad for p in model.rmac.parameters())
    with pytest.raises(ValueError, match="layer9"):
        SemanticRetrieval(backbone="timm::resnet18", trainable_from="layer9")


def test_text_projection_gets_its_own_learning_rate_scale():
    """theta's W starts from random, the trunk from pretraining: ``text_lr_scale`` multiplies
    only W's step, before and after the drop; the default keeps one learning rate (the paper)."""
    model = SemanticRetrieval(
        backbone="timm::resnet18", mode="V+T", vocab_size=7, lr=1e-4, lr_after=1e-5,
        lr_drop_step=2, text_lr_scale=10.0,
    )  # fmt: skip
    conf = model.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    trunk_group, text_group = opt.param_groups
    assert [id(p) for p in text_group["params"]] == [id(model.text.proj.weight)]
    assert len(trunk_group["params"]) == sum(1 for p in model.parameters()) - 1
    assert (trunk_group["lr"], text_group["lr"]) == pytest.approx((1e-4, 1e-3))
    for _ in range(3):
        opt.step()
        sched.step()
    assert (trunk_group["lr"], text_group["lr"]) == pytest.approx((1e-5, 1e-4))
    plain = SemanticRetrieval(backbone="timm::resnet18", mode="V", lr=1e-4)
    assert len(plain.configure_optimizers()["optimizer"].param_groups) == 1


def _first_update_gradients(micro_batches: int, mode: str) -> dict[str, torch.Tensor]:
    """The gradients of the first optimizer step of a fit with ``micro_batches``."""
    import lightning as L

    class Capture(L.Callback):
        def __init__(self) -> None:
            self.grads: dict[str, torch.Tensor] = {}

        def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
            if not self.grads:
                self.grads = {
                    n: p.grad.detach().clone()
                    for n, p in pl_module.named_parameters()
                    if p.grad is not None
                }

    data = synthetic_data(size=32)
    torch.manual_seed(0)
    model = SemanticRetrieval(
        backbone="timm::resnet18", mode=mode, vocab_size=data.tfidf.shape[1], levels=2,
        whitening_images=32, embed_batch_size=16, mining=CONFIG["mining"],
        micro_batches=micro_batches,
    )  # fmt: skip
    model.attach_training_data(data)
    capture = Capture()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_steps=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[capture],
    )  # fmt: skip
    trainer.fit(model)
    assert trainer.accumulate_grad_batches == micro_batches
    assert trainer.global_step == 1 and trainer.fit_loop.total_batch_idx + 1 == micro_batches
    return capture.grads


@pytest.mark.parametrize("mode", ["V", "V+T"])
def test_micro_batches_accumulate_the_same_gradient_as_one_batch(mode):
    """``micro_batches`` (how the paper's 64 triplets at 576 px fit on one GPU) splits a batch
    into passes whose accumulated gradient is the whole batch's: BN is frozen and the loss is a
    mean over triplets, so the update is unchanged."""
    whole = _first_update_gradients(1, mode)
    split = _first_update_gradients(4, mode)
    assert whole.keys() == split.keys() and "rmac.whiten.weight" in whole
    if mode == "V+T":
        assert "text.proj.weight" in whole
    for name in whole:
        torch.testing.assert_close(split[name], whole[name], rtol=1e-4, atol=1e-6, msg=name)


def test_micro_batches_must_divide_the_batch():
    with pytest.raises(ValueError, match="micro_batches=3 must divide the batch of 8"):
        SemanticRetrieval(backbone="timm::resnet18", mining={"batch_size": 8}, micro_batches=3)
