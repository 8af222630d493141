"""End to end: a few training steps of SemanticRetrieval on synthetic images (CPU, seconds),
served by the ``triplets`` view of CaptionDataModule.

The synthetic set: images whose coloured quadrants are their 'concepts', and tf-idf rows of
those concepts' words, so the tf-idf k-NN are the images sharing concepts."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset, Subset

from capbench.data.relevance import TextRelevance, relevant_sets
from capbench.data.sampling import sample_pool, select_hard_triplets
from capbench.losses import triplet_margin_dot
from capbench.methods.config import build_config
from capbench.methods.semantic_retrieval import SemanticRetrieval
from capbench.methods.semantic_retrieval.config import (
    ModelConfig,
    SemanticRetrievalConfig,
    TrainConfig,
)
from capbench.methods.semantic_retrieval.train import (
    build_datamodule,
    load_semantic_retrieval,
    train_semantic_retrieval,
)

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


def synthetic_data(n: int = 48, k: int = 6, size: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    concepts = np.stack([rng.choice(6, size=2, replace=False) for _ in range(n)])
    rows = np.repeat(np.arange(n), 2)
    X = sp.csr_matrix(
        (np.full(2 * n, 2**-0.5, dtype=np.float32), (rows, concepts.ravel())), shape=(n, 8)
    )
    return ConceptImages(concepts, size, seed), TextRelevance(X, relevant_sets(X, k))


CONFIG = build_config(
    SemanticRetrievalConfig,
    {
        "model": {"backbone": "timm::resnet18", "allow_random_init": True, "levels": 2},
        "train": {
            "lr": 1e-3,
            "lr_after": 1e-4,
            "lr_drop_step": 8,
            "max_steps": 12,
            "whitening_images": 32,
            "embed_batch_size": 16,
        },
        "mining": {
            "pool_queries": 16,
            "positives_per_query": 3,
            "top_per_pair": 10,
            "batch_size": 8,
            "remine_every": 4,
        },
    },
)
RANDOM_R18 = ModelConfig(backbone="timm::resnet18", allow_random_init=True, levels=2)


def _datamodule(cfg=CONFIG, **data_kw):
    images, relevance = synthetic_data(**data_kw)
    dm = build_datamodule(cfg, {"records": {"train": []}})
    dm.set_triplet_source(images, relevance)
    return dm


def _fixed_triplet_loss(model: SemanticRetrieval, images, triplets: torch.Tensor) -> float:
    phi = model.embed_dataset(images)
    return float(
        triplet_margin_dot(phi[triplets[:, 0]], phi[triplets[:, 1]], phi[triplets[:, 2]], 0.1)
    )


def test_fit_decreases_loss_and_a_finished_run_is_reloaded(tmp_path):
    images, relevance = synthetic_data(size=32)
    torch.manual_seed(0)
    model0 = SemanticRetrieval(RANDOM_R18, TrainConfig(whitening_images=32, embed_batch_size=16))
    model0.init_whitening_from(images)
    # a fixed evaluation set of triplets mined by the untrained model
    mining = build_config(
        type(CONFIG.mining), {"pool_queries": 48, "positives_per_query": 6, "top_per_pair": 5}
    )
    pool = sample_pool(relevance.relevant, mining, torch.Generator().manual_seed(1))
    feats = model0.embed_dataset(Subset(images, pool.pool.tolist()))
    triplets, _ = select_hard_triplets(feats, pool, relevance.relevant, mining, margin=0.1)
    before = _fixed_triplet_loss(model0, images, triplets)

    dm = build_datamodule(CONFIG, {"records": {"train": []}})
    dm.set_triplet_source(images, relevance)
    model, ckpt = train_semantic_retrieval(
        CONFIG, dm, tmp_path, accelerator="cpu", devices=1, progress=False
    )
    after = _fixed_triplet_loss(model, images, triplets)
    assert ckpt.is_file() and model.global_step == 12
    assert after < before * 0.8, (before, after)

    # a finished run is reloaded, not retrained: a DataModule with no data is never touched
    again, path2 = train_semantic_retrieval(
        CONFIG, build_datamodule(CONFIG, {"records": {"train": []}}), tmp_path, progress=False
    )
    assert path2 == ckpt
    x4 = torch.stack([images[i]["image"] for i in range(4)])
    torch.testing.assert_close(
        again.embed_images(x4), model.eval().embed_images(x4), atol=1e-5, rtol=1e-4
    )
    loaded = load_semantic_retrieval(ckpt)
    torch.testing.assert_close(
        loaded.eval().embed_images(x4), model.eval().embed_images(x4), atol=1e-5, rtol=1e-4
    )


def test_vt_and_wsabie_train_and_query(tmp_path):
    cfg = build_config(
        SemanticRetrievalConfig,
        {"model": {"backbone": "timm::resnet18", "allow_random_init": True, "levels": 2},
         "train": {"max_steps": 4, "whitening_images": 32, "embed_batch_size": 16},
         "mining": {"pool_queries": 16, "positives_per_query": 3, "top_per_pair": 10,
                    "batch_size": 8, "remine_every": 4}},
    )  # fmt: skip
    for mode in ("V+T", "WSABIE"):
        dm = _datamodule(cfg, n=32, size=32)
        model, _ = train_semantic_retrieval(
            cfg, dm, tmp_path / mode, train_mode=mode, accelerator="cpu", devices=1,
            progress=False,
        )  # fmt: skip
        tfidf = dm.relevance.tfidf
        theta = model.embed_text(tfidf[:5])
        assert theta.shape == (5, model.out_dim)
        torch.testing.assert_close(theta.norm(dim=1), torch.ones(5))
        x = torch.stack([dm.train_images()[i]["image"] for i in range(5)])
        q = model.embed_query(x, tfidf[:5])
        expected = torch.nn.functional.normalize(model.embed_images(x) + theta, dim=1)
        torch.testing.assert_close(q, expected, atol=1e-5, rtol=1e-4)
        # precomputed phi and theta give the same query
        torch.testing.assert_close(
            model.embed_query(model.embed_images(x), theta), expected, atol=1e-5, rtol=1e-4
        )


def test_unreadable_images_leave_a_nan_row_and_the_pool():
    class Holes(Dataset):
        def __init__(self, images) -> None:
            self.images = images

        def __len__(self) -> int:
            return len(self.images)

        def __getitem__(self, i):
            return None if i % 5 == 0 else self.images[i]

    images, _ = synthetic_data(n=12, size=32)
    model = SemanticRetrieval(RANDOM_R18, TrainConfig(embed_batch_size=4))
    emb = model.embed_dataset(Holes(images))
    bad = torch.isnan(emb).all(dim=1)
    assert bad.tolist() == [i % 5 == 0 for i in range(12)]
    assert torch.isfinite(emb[~bad]).all()


def test_grad_cam_hooks_compose_to_single_scale_descriptor():
    model = SemanticRetrieval(ModelConfig(backbone="timm::resnet18", levels=2, scales=(1.0,),
                                          allow_random_init=True)).eval()  # fmt: skip
    x = torch.randn(2, 3, 64, 64)
    fmap = model.conv_features(x)
    assert fmap.shape == (2, 512, 2, 2)
    torch.testing.assert_close(model.pool_features(fmap), model.embed_images(x))


def test_the_paper_profile_refuses_random_weights():
    with pytest.raises(ValueError, match="backbone_weights is not set"):
        SemanticRetrieval()
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pth"):
        SemanticRetrieval(ModelConfig(backbone_weights="/nowhere.pth"))


def test_lightning_cli_fit_on_a_real_layout(tmp_path):
    """``capbench fit --model semantic_retrieval``: the DataModule reads a Visual Genome layout
    and fits the relevance, theta learns its vocabulary size at setup, one mining round per
    epoch, and the linked fields set the Trainer (max_steps -> epochs)."""
    from capbench.commands.lightning import main
    from capbench.data.fixtures import write_fixture

    root = write_fixture("visual_genome", tmp_path / "vg")
    argv = ["fit", "--model", "semantic_retrieval", "--model.train_mode", "V+T",
            "--model.model", '{"backbone": "timm::resnet18", "allow_random_init": true, "levels": 2, "longest_side": 64}',
            "--model.train.whitening_images", "4", "--model.train.k_relevant", "2",
            "--model.train.max_steps", "4",
            "--model.mining", '{"pool_queries": 4, "positives_per_query": 2, "batch_size": 4, "remine_every": 2}',
            "--data.root", str(root), "--trainer.accelerator", "cpu", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 0
    ckpts = sorted((tmp_path / "run").rglob("*.ckpt"))
    assert ckpts, "LightningCLI saved no checkpoint"
    model = load_semantic_retrieval(ckpts[-1])
    assert model.text is not None
    assert model.hparams["tfidf_vocab_size"] == model.text.vocab_size
    ckpt = torch.load(ckpts[-1], map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 4 and ckpt["epoch"] >= 1  # two mining rounds of two updates


def test_trainable_from_freezes_only_the_earlier_stages():
    model = SemanticRetrieval(RANDOM_R18, TrainConfig(trainable_from="layer4"))
    flags = {n: p.requires_grad for n, p in model.trunk.named_parameters()}
    assert not flags["conv1.weight"] and not flags["layer3.1.bn2.bias"]
    assert flags["layer4.0.conv1.weight"] and all(p.requires_grad for p in model.rmac.parameters())
    with pytest.raises(ValueError, match="layer9"):
        SemanticRetrieval(RANDOM_R18, TrainConfig(trainable_from="layer9"))


def test_text_projection_gets_its_own_learning_rate_scale():
    """theta's W starts from random, the trunk from pretraining: ``text_lr_scale`` multiplies
    only W's step, before and after the drop; the default keeps one learning rate (the paper)."""
    train = TrainConfig(lr=1e-4, lr_after=1e-5, lr_drop_step=2, text_lr_scale=10.0)
    model = SemanticRetrieval(RANDOM_R18, train, train_mode="V+T", tfidf_vocab_size=7)
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
    plain = SemanticRetrieval(RANDOM_R18, TrainConfig(lr=1e-4))
    assert len(plain.configure_optimizers()["optimizer"].param_groups) == 1


def _first_update_gradients(micro_batches: int, mode: str) -> dict[str, torch.Tensor]:
    """The gradients of the first optimizer step of a fit with ``micro_batches``."""

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

    dm = _datamodule(size=32)
    torch.manual_seed(0)
    train = TrainConfig(whitening_images=32, embed_batch_size=16, micro_batches=micro_batches)
    model = SemanticRetrieval(
        RANDOM_R18, train, CONFIG.mining, train_mode=mode,
        tfidf_vocab_size=dm.relevance.vocab_size,
    )  # fmt: skip
    capture = Capture()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_steps=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[capture],
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
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
        SemanticRetrieval(
            RANDOM_R18, TrainConfig(micro_batches=3), build_config(
                type(CONFIG.mining), {"batch_size": 8}),
        )  # fmt: skip
