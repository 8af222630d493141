"""Scenes backbone pretraining: trains on a VOC layout, caches, and loads as a trunk."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from capbench.data.records import CaptionedImage
from capbench.data.writers import WritableImage, write
from capbench.methods import backbone_pretrain
from capbench.methods.backbone_pretrain import pretrain_backbone, pretrain_info
from capbench.methods.training import SCENES_PRETRAIN, trunk_identity
from capbench.models.backbones import create_backbone
from tests.lock_holder import hold

torch.set_num_threads(1)

CLASSES = ["circle", "square", "triangle"]
COLOURS = [(220, 30, 30), (30, 200, 30), (30, 30, 220)]


def _voc(tmp_path, n_train=24, n_val=12):
    rng = np.random.default_rng(0)
    items = []
    for i in range(n_train + n_val):
        labels = sorted(rng.choice(3, size=rng.integers(1, 3), replace=False).tolist())
        arr = np.full((32, 32, 3), 128, dtype=np.uint8)
        for c in labels:  # each class paints its colour in its own third
            arr[:, c * 10 : c * 10 + 10] = COLOURS[c]
        split = "train" if i < n_train else "val"
        rec = CaptionedImage(image_id=f"{i:06d}", image_path="", split=split, labels=labels)
        items.append(WritableImage(rec, Image.fromarray(arr)))
    return write("voc2007", tmp_path / "voc", items, classes=CLASSES)


def test_pretrain_caches_and_loads(tmp_path, monkeypatch):
    root = _voc(tmp_path)
    kw = {
        "arch": "timm::resnet18",
        "epochs": 2,
        "image_size": 32,
        "batch_size": 8,
        "progress": False,
    }
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    path = pretrain_backbone(root, **kw)
    # training reseeded and drew, but the caller's streams are as they were: a row that
    # pretrains its trunk on a cold cache starts from the weights it gets on a warm one
    after = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    torch.testing.assert_close(after[0], torch.rand(3))
    assert np.array_equal(after[1], np.random.rand(3)) and after[2] == random.random()
    assert path.is_file() and path.parent.name == "backbones"
    info = pretrain_info(path)
    assert 0.0 <= info["held_out_mAP"] <= 1.0 and info["n_train"] == 24 and info["n_held_out"] == 12
    per_class = info["held_out_AP"]  # one AP per class, named; their mean is the mAP
    assert list(per_class) == CLASSES
    assert np.mean(list(per_class.values())) == pytest.approx(info["held_out_mAP"], abs=1e-3)
    trunk, _ = create_backbone("timm::resnet18", path)  # the file is a trunk state dict
    saved = torch.load(path, weights_only=True)
    torch.testing.assert_close(trunk.state_dict()["conv1.weight"], saved["conv1.weight"])

    def no_training(*a, **k):
        raise AssertionError("a cached backbone must not be retrained")

    monkeypatch.setattr(backbone_pretrain.L.Trainer, "fit", no_training)
    assert pretrain_backbone(root, **kw) == path
    # the file is known without training, for the cache keys of models trained from it
    assert backbone_pretrain.scenes_backbone_file(data=root, **kw) == path
    assert backbone_pretrain.scenes_backbone_file(data=root, **{**kw, "epochs": 3}) != path
    assert trunk_identity("timm::resnet18", SCENES_PRETRAIN, {"data": root, **kw}) == (
        f"{SCENES_PRETRAIN}:{path.stem}"
    )
    # a different option is a different backbone
    with pytest.raises(AssertionError, match="retrained"):
        pretrain_backbone(root, **{**kw, "epochs": 3})


@pytest.mark.parametrize("part", [".pt", ".json"])
def test_a_damaged_cached_trunk_is_trained_again(tmp_path, caplog, part):
    """A cut trunk file (or its info beside it) is a cache miss: trained again, not handed to
    every row that loads it."""
    root = _voc(tmp_path)
    kw = {"epochs": 1, "image_size": 32, "batch_size": 8, "progress": False}
    path = pretrain_backbone(root, **kw)
    damaged = path.with_suffix(part)
    damaged.write_bytes(damaged.read_bytes()[:50])
    assert pretrain_backbone(root, **kw) == path
    assert f"damaged cache entry {path}, {path.with_suffix('.json')}" in caplog.text
    create_backbone("timm::resnet18", path)  # a whole trunk again
    assert pretrain_info(path)["n_train"] == 24


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="capbench data scenes"):
        pretrain_backbone(tmp_path / "nowhere")


def test_cli_verb_trains_reports_and_writes_the_trunk(tmp_path, capsys):
    from capbench.cli import main

    root = _voc(tmp_path, n_train=8, n_val=4)
    out = tmp_path / "trunk.pt"
    argv = ["pretrain-backbone", "--data", str(root), "--epochs", "1", "--image-size", "32"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str(out) and out.is_file()
    assert printed[0].startswith("held-out mAP ") and "(8 train / 4 held-out images)" in printed[0]
    assert printed[1].startswith("held-out AP per class: ")
    assert [part.split()[0] for part in printed[1].split(": ", 1)[1].split(", ")] == CLASSES
    create_backbone("timm::resnet18", out)  # a loadable trunk


def test_cli_verb_names_the_missing_data(tmp_path, capsys):
    from capbench.cli import main

    missing = tmp_path / "nowhere"
    assert main(["pretrain-backbone", "--data", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing) in err and "capbench data scenes" in err


def test_gordo_scenes_rows_pretrain_with_the_command_profile():
    """`capbench pretrain-backbone --profile scenes` and every Gordo scenes row must train the
    same trunk, so that they share one cached file (its cache key hashes every option)."""
    from pathlib import Path

    from capbench.bench.config import resolve_config

    bench = Path(__file__).resolve().parents[2] / "benchmarks" / "gordo2017"
    for path in sorted(bench.glob("*.scenes.yaml")):
        pre = dict(resolve_config(path)["pretrain"])
        assert pre.pop("data") == "scenes_pretrain", path.name
        assert pre == backbone_pretrain.SCENES_PROFILE, path.name


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--arch", "nope::x"], "backbone name 'nope::x' must look like"),
        (["--arch", "timm::notamodel"], "timm has no model 'notamodel'"),
        (["--arch", "torchvision::resnet5"], "torchvision has no model 'resnet5'"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--image-size", "2"], "--image-size must be at least 16 pixels"),
    ],
)
def test_cli_verb_refuses_a_bad_option_in_one_line(tmp_path, capsys, option, message):
    """Checked before the data is read: these used to train on nothing (epochs 0, a 2-pixel
    image) or end in a KeyError / timm RuntimeError traceback."""
    from capbench.cli import main

    assert main(["pretrain-backbone", "--data", str(tmp_path / "unused"), *option]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_a_class_without_held_out_positives_is_left_out_of_the_map(tmp_path):
    """torchmetrics 1.9 scores such a class as AP -0.0; counted, it pulled the mAP towards 0."""
    root = _voc(tmp_path, n_train=12, n_val=6)
    val = root / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "triangle_val.txt"
    val.write_text("".join(f"{line.split()[0]} -1\n" for line in val.read_text().splitlines()))
    path = pretrain_backbone(
        root, arch="timm::resnet18", epochs=1, image_size=32, batch_size=8, progress=False
    )
    info = pretrain_info(path)
    per_class = info["held_out_AP"]
    assert per_class["triangle"] is None  # n/a, not 0
    scored = [per_class["circle"], per_class["square"]]
    assert info["held_out_mAP"] == pytest.approx(np.mean(scored), abs=1e-3)


def test_a_corrupt_image_is_skipped_and_named_in_the_info(tmp_path, capsys):
    """It used to stop the pretraining with a CorruptImageError, and with it every scenes row
    whose trunk it makes."""
    from capbench.cli import main

    root = _voc(tmp_path, n_train=8, n_val=4)
    images = sorted((root / "VOCdevkit" / "VOC2007" / "JPEGImages").glob("*.jpg"))
    images[2].write_bytes(b"not a jpeg")
    out = tmp_path / "trunk.pt"
    argv = ["pretrain-backbone", "--data", str(root), "--epochs", "2", "--image-size", "32"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    skipped = pretrain_info(out)["skipped_images"]
    assert len(skipped) == 1 and images[2].name in skipped[0]  # once, though met every epoch
    assert "skipped 1 corrupt image(s): record 000002" in capsys.readouterr().out


def test_a_trunk_another_process_is_pretraining_is_waited_for_and_read(
    tmp_path, monkeypatch, capsys
):
    """SLURM jobs whose rows start from the same scenes trunk each pretrained it, and the last
    to finish replaced the file the earlier rows had loaded. Now one pretrains; the others wait
    and read its file."""
    root = _voc(tmp_path)
    kw = {"epochs": 1, "image_size": 32, "batch_size": 8, "progress": False}
    path = pretrain_backbone(root, **kw)
    made = tmp_path / "made"
    made.mkdir()
    for part in (path, path.with_suffix(".json")):  # the other process's result, set aside
        part.rename(made / part.name)

    def no_training(*a, **k):
        raise AssertionError("the trunk another process pretrained must be read, not retrained")

    monkeypatch.setattr(backbone_pretrain.L.Trainer, "fit", no_training)
    release = tmp_path / "release"
    copies = [(made / p.name, p) for p in (path, path.with_suffix(".json"))]
    holder = hold(path.with_suffix(".lock"), release, *copies)
    got: list = []
    t = threading.Thread(target=lambda: got.append(pretrain_backbone(root, **kw)))
    t.start()
    t.join(timeout=1.0)
    assert t.is_alive() and not path.exists()
    release.touch()
    t.join(timeout=60)
    assert got == [path] and holder.wait(timeout=30) == 0
    assert f"waiting for pid {holder.pid} on " in capsys.readouterr().err
    create_backbone("timm::resnet18", path)
