"""Reed et al. 2016 (``fine_grained_sje``): the ``.t7`` and trunk image sides, Reed's batches,
the shuffled-class control, and learning that is real (trained beats untrained)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from capbench.data.errors import DatasetFormatError
from capbench.data.writers.torch7 import write_t7
from capbench.eval.protocols.zero_shot import score_zero_shot
from capbench.methods.config import build_config
from capbench.methods.fine_grained_sje.config import SMOKE, FineGrainedSJEConfig
from capbench.methods.fine_grained_sje.features import t7_features
from capbench.methods.fine_grained_sje.train import (
    build_datamodule,
    build_module,
    read_records,
    shuffle_class_captions,
    train_fine_grained_sje,
    zero_shot_side,
)


@pytest.fixture(scope="module")
def cub_records(tiny_scenes):
    return read_records("cub", tiny_scenes / "cub", ["train", "val"])


def _class_name(record) -> str:
    return record.meta["class_name"]


def test_t7_features_map_rows_of_each_class_file_to_its_records(cub_records, tmp_path):
    """Row j of ``images/<class>.t7`` (N x 1024 x 10) is the class's j-th image: training takes
    every view, the test side view 0."""
    folder = tmp_path / "cvpr2016_cub" / "images"
    by_class: dict[str, list[int]] = {}
    for i, r in enumerate(cub_records):
        by_class.setdefault(_class_name(r), []).append(i)
    for name, rows in by_class.items():
        block = np.zeros((len(rows), 1024, 10), dtype=np.float32)
        for j, i in enumerate(rows):
            block[j, 0, :] = i  # the record's position ...
            block[j, 1, :] = np.arange(10)  # ... and the view, readable back
        write_t7(folder / f"{name}.t7", torch.from_numpy(block))
    train = t7_features(tmp_path, "cub", cub_records, train=True, views=10)
    assert train.shape == (len(cub_records), 10, 1024)
    assert train[:, :, 0].tolist() == [[float(i)] * 10 for i in range(len(cub_records))]
    assert train[0, :, 1].tolist() == [float(v) for v in range(10)]
    test = t7_features(tmp_path, "cub", cub_records, train=False, views=10)
    assert test.shape == (len(cub_records), 1, 1024) and test[:, 0, 1].eq(0).all()

    name = _class_name(cub_records[0])
    write_t7(folder / f"{name}.t7", torch.zeros(len(by_class[name]) + 1, 1024, 10))
    with pytest.raises(DatasetFormatError, match=rf"{name}\.t7.*expected {len(by_class[name])}"):
        t7_features(tmp_path, "cub", cub_records, train=True, views=10)


def test_t7_features_without_the_release_name_the_missing_folder(cub_records, tmp_path):
    with pytest.raises(FileNotFoundError, match="cvpr2016_cub"):
        t7_features(tmp_path, "cub", cub_records, train=True, views=10)


def test_shuffled_labels_give_every_image_the_captions_of_one_other_class(cub_records):
    shuffled = shuffle_class_captions(cub_records, seed=3)
    owner = {tuple(r.captions): int(r.label) for r in cub_records}
    moved: dict[int, set[int]] = {}
    for before, after in zip(cub_records, shuffled, strict=True):
        assert after.label == before.label and after.image_id == before.image_id
        source = owner[tuple(after.captions)]  # all ten captions of one image of one class
        moved.setdefault(int(before.label), set()).add(source)
    assert all(len(v) == 1 for v in moved.values())  # a permutation of classes
    assert sum(k != next(iter(v)) for k, v in moved.items()) > len(moved) // 2


def _smoke_config(**train) -> FineGrainedSJEConfig:
    cfg = build_config(FineGrainedSJEConfig, SMOKE["config"], "smoke")
    return replace(cfg, train=replace(cfg.train, **train))


def test_batches_hold_one_image_per_class_with_a_view_and_caption(tiny_scenes):
    cfg = _smoke_config(batch_size=8)
    dm = build_datamodule(cfg, {"source": "cub", "root": tiny_scenes / "cub"})
    assert dm.items.features.shape[1:] == (10, 512)  # 10 views of a ResNet-18 trunk
    batches = list(dm.train_dataloader())
    assert len(batches) == -(-len(dm.items) // 8)  # ceil(N / batch) batches an epoch
    for b in batches:
        assert len(set(b["label"].tolist())) == len(b["label"])
        assert b["features"].shape == (len(b["label"]), 512)
        assert b["tokens"].shape == (len(b["label"]), 30)  # Word-CNN-RNN reads 30 words


@pytest.mark.slow  # two 20-epoch trainings: 40 s on 2 idle cores, minutes when shared
def test_trained_beats_untrained_and_shuffled_captions_on_the_training_classes(
    tiny_scenes, tmp_path
):
    """Learning is real: after training, images find their own class's captions far above
    chance and above the untrained encoder; trained on permuted classes, they do not."""
    cfg = replace(_smoke_config(lr=0.01, max_epochs=20), model=replace(
        _smoke_config().model, encoder="bow"
    ))  # fmt: skip
    data = {"source": "cub", "root": tiny_scenes / "cub"}
    records = read_records("cub", tiny_scenes / "cub", ["train", "val"])

    def seen_class_top1(model, dm) -> float:
        side = zero_shot_side(cfg, dm, "cub", tiny_scenes / "cub", records)
        captions = model.embed_captions(side.caption_tokens)
        return score_zero_shot(
            side.image_features, side.image_labels, captions, side.caption_labels
        )["top1"]

    dm = build_datamodule(cfg, data)
    untrained = seen_class_top1(build_module(cfg, dm, seed=0), dm)
    model, _ = train_fine_grained_sje(
        cfg, dm, tmp_path / "trained", accelerator="cpu", devices=1, progress=False
    )
    trained = seen_class_top1(model, dm)
    shuffled_dm = build_datamodule(cfg, data, shuffle_labels=True)
    shuffled_model, _ = train_fine_grained_sje(
        cfg, shuffled_dm, tmp_path / "shuffled", accelerator="cpu", devices=1, progress=False
    )
    shuffled = seen_class_top1(shuffled_model, dm)
    chance = 100.0 / len({r.label for r in records})
    assert trained > 3 * chance, (trained, chance)
    assert trained > untrained + 5, (trained, untrained)
    assert shuffled < trained - 5, (shuffled, trained, untrained)


def test_googlenet_features_are_torchvisions_pool5_of_the_ten_views(cub_records, tmp_path):
    """The paper profile's second image source: torchvision's GoogLeNet from a local weights
    file, 1024 pooling units per view, cached; equal to torchvision's own forward."""
    import torchvision

    from capbench.data.images import MultiViewTransform, load_rgb
    from capbench.methods.fine_grained_sje.features import backbone_features

    net = torchvision.models.googlenet(
        weights=None, aux_logits=True, init_weights=True, transform_input=True
    ).eval()
    weights = tmp_path / "googlenet.pth"
    torch.save(net.state_dict(), weights)
    cfg = replace(
        FineGrainedSJEConfig().model,
        image_source="backbone",
        backbone="torchvision::googlenet",
        backbone_weights=str(weights),
        resize=40,
        crop=32,
    )
    records = cub_records[:3]
    feats = backbone_features(cfg, str(weights), records, train=True, batch_size=2)
    assert feats.shape == (3, 10, 1024)
    net.fc, net.dropout = torch.nn.Identity(), torch.nn.Identity()
    views = MultiViewTransform(32, views=10, shorter_side=40)(load_rgb(records[1].image_path))
    with torch.no_grad():
        torch.testing.assert_close(feats[1], net(views), rtol=1e-4, atol=1e-5)
    again = backbone_features(cfg, str(weights), records, train=True, batch_size=2)
    torch.testing.assert_close(again, feats, rtol=0, atol=0)  # from the feature cache


def test_word2vec_and_attribute_encoders_get_their_tables_from_the_data(tiny_scenes):
    """word2vec_avg: gensim vectors trained on the training captions (scenes); attributes: CUB's
    class attribute file (one row per class), the class id as the "text". Both train a step to a finite loss."""
    data = {"source": "cub", "root": tiny_scenes / "cub"}
    for encoder in ("word2vec_avg", "attributes"):
        base = _smoke_config(batch_size=8)
        cfg = replace(base, model=replace(base.model, encoder=encoder))
        dm = build_datamodule(cfg, data)
        model = build_module(cfg, dm, seed=0)
        batch = next(iter(dm.train_dataloader()))
        loss = model.loss(batch["features"], batch["tokens"])
        loss.backward()
        assert torch.isfinite(loss) and loss > 0, encoder
        if encoder == "attributes":
            assert dm.class_attributes.shape[0] == dm.vocab_size and batch["tokens"].shape[1] == 1
            assert torch.equal(batch["tokens"][:, 0], batch["label"])
        else:
            assert dm.word_vectors.shape[0] == dm.vocab_size
            assert dm.word_vectors.abs().sum(1).gt(0).sum() > 10  # words with a vector


def test_lightning_cli_fit_trains_on_the_fixed_features(tiny_scenes, tmp_path, monkeypatch):
    """``capbench fit --model fine_grained_sje``: the DataModule builds Reed's feature batches
    from the module's config sections, the module's encoder is sized by the data (linked at
    instantiation), and training runs the linked number of epochs and saves a checkpoint,
    through capbench's atomic checkpoint writer."""
    from capbench.commands.lightning import main
    from capbench.methods.checkpoint_io import AtomicCheckpointIO
    from capbench.methods.fine_grained_sje.module import FineGrainedSJE

    saved: list[str] = []
    real_save = AtomicCheckpointIO.save_checkpoint

    def counted(self, checkpoint, path, storage_options=None):
        saved.append(str(path))
        return real_save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", counted)

    argv = ["fit", "--model", "fine_grained_sje",
            "--model.model", '{"encoder": "bow", "image_source": "backbone", "backbone": "timm::resnet18", "allow_random_init": true, "resize": 40, "crop": 32}',
            "--model.train.max_epochs", "2", "--model.train.batch_size", "8",
            "--data.root", str(tiny_scenes / "cub"), "--trainer.accelerator", "cpu",
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 0
    ckpts = sorted((tmp_path / "run").rglob("*.ckpt"))
    assert ckpts, "LightningCLI saved no checkpoint"
    assert str(ckpts[-1]) in saved
    ckpt = torch.load(ckpts[-1], map_location="cpu", weights_only=False)
    dm = build_datamodule(
        _smoke_config(batch_size=8), {"source": "cub", "root": tiny_scenes / "cub"}
    )
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 2 * len(dm.train_dataloader())
    assert ckpt["hyper_parameters"]["feature_dim"] == 512  # the trunk's, from the data
    words = ckpt["state_dict"]["encoder.proj.weight"].shape[1]
    model = FineGrainedSJE.load_from_checkpoint(ckpts[-1], map_location="cpu", strict=False)
    assert model.cfg.model.encoder == "bow" and model.hparams["vocab_size"] > 2
    assert words == model.hparams["vocab_size"] - 1  # bag of words: one column per word id


def test_lightning_cli_fit_names_a_missing_data_root(tmp_path, capsys):
    from capbench.commands.lightning import main

    missing = tmp_path / "nowhere"
    argv = ["fit", "--model", "fine_grained_sje", "--data.root", str(missing),
            "--trainer.accelerator", "cpu", "--trainer.logger", "false"]  # fmt: skip
    assert main(argv) == 1  # one line, no traceback
    assert f"capbench fit: error: data.root: {missing} is not a folder" in capsys.readouterr().err


def test_train_sentences_rows_need_their_counts():
    """Figure 4 (left) rows train one model per count: an empty or non-positive list is refused
    when the row config is read, naming the key."""
    from capbench.methods.fine_grained_sje.config import RowConfig

    assert RowConfig(kind="train_sentences", train_sentences=(1, 10)).train_sentences == (1, 10)
    for bad in ((), (0, 5)):
        with pytest.raises(ValueError, match=r"row\.train_sentences"):
            RowConfig(kind="train_sentences", train_sentences=bad)


def test_an_unreadable_training_image_is_left_out_and_a_test_image_stops_the_row(
    tiny_scenes, tmp_path
):
    """Found by corrupting a CUB file of the tiny scenes data: the fixed-feature extraction
    stopped every one of the 22 CUB rows, whatever split the file was in."""

    cfg = _smoke_config(batch_size=8)
    root = tiny_scenes / "cub"
    records = read_records("cub", root, ("train",))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    records[1] = replace(records[1], image_path=str(bad))
    dm = build_datamodule(cfg, {"source": "cub", "root": root, "records": records})
    assert len(dm.items) == len(records) - 1
    assert torch.isfinite(dm.items.features).all()
    with pytest.raises(ValueError, match=r"1 test image\(s\) cannot be read.*bad\.jpg"):
        zero_shot_side(cfg, dm, "cub", root, records[:4])


@pytest.mark.parametrize(("name", "what"), [("cub", "CUB-200-2011"), ("flowers", "Flowers-102")])
def test_a_missing_dataset_folder_names_its_data_card(tmp_path, name, what):
    """As the other papers' rows do; it was the reader's error on the first file it opened."""
    from capbench.methods.fine_grained_sje.rows import run_row
    from capbench.methods.protocol import RowContext

    ctx = RowContext(workdir=tmp_path / "w", seed=0, profile="paper", data_root=tmp_path / "d")
    config = {"data": {"name": name, "root": name}, "row": {"kind": "untrained"}}
    with pytest.raises(FileNotFoundError, match=rf"{what} not found at .*data_cards/{name}\.md"):
        run_row(config, ctx)
