"""Captioner checkpoints end to end: trained briefly on the tiny scenes data, reloaded exactly
from the checkpoint alone, and used by ``capbench caption`` on a real photo (scikit-learn's
china.jpg), with and without regions."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from capbench.data import read
from capbench.methods.caption_fusion.captioning import load_captioner, train_captioner
from capbench.methods.caption_fusion.config import RegionCaptionerConfig, ShowAndTellConfig

PHOTO_NAME = "china.jpg"


@pytest.fixture(scope="module")
def photo():
    from pathlib import Path

    import sklearn.datasets

    path = Path(sklearn.datasets.__file__).parent / "images" / PHOTO_NAME
    assert path.is_file(), path
    return path


@pytest.fixture(scope="module")
def captioners(tiny_scenes, tmp_path_factory):
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("captioners")
    coco = read("coco", tiny_scenes / "coco", "train", splits="karpathy")
    vg = read("visual_genome", tiny_scenes / "visual_genome", "train")
    sat_cfg = ShowAndTellConfig(
        backbone="timm::resnet18", allow_random_init=True, image_size=32, min_count=1,
        optimizer="adam", lr=1e-3, epochs=1, batch_size=16, max_len=8,
    )  # fmt: skip
    rc_cfg = RegionCaptionerConfig(
        backbone="timm::resnet18", allow_random_init=True, image_size=48, anchor_sizes=(16, 32),
        fc_dim=32, sample_size=16, train_proposals=32, proposals=16, min_count=1, max_len=6,
        lr=1e-3, batch_size=8, epochs=1,
    )  # fmt: skip
    kw = {"accelerator": "cpu", "devices": 1, "progress": False}
    sat, sat_ckpt = train_captioner("show_and_tell", sat_cfg, coco, work / "sat", **kw)
    rc, rc_ckpt = train_captioner("region_captioner", rc_cfg, vg, work / "rc", **kw)
    return {"sat": (sat, sat_ckpt), "rc": (rc, rc_ckpt)}


def test_checkpoints_rebuild_the_trained_models(captioners):
    x = torch.randn(2, 3, 32, 32)
    sat, ckpt = captioners["sat"]
    again = load_captioner(ckpt)
    torch.testing.assert_close(again.fic(x), sat.eval().fic(x))
    assert again.caption(x) == sat.caption(x)
    rc, rc_ckpt = captioners["rc"]
    y = torch.randn(1, 3, 48, 48)
    torch.testing.assert_close(load_captioner(rc_ckpt).bord(y), rc.eval().bord(y))


def test_caption_command_on_a_photo(captioners, photo, tmp_path, capsys):
    from capbench.cli import main

    out = tmp_path / "caption.png"
    assert (
        main(["caption", str(photo), "--checkpoint", str(captioners["sat"][1]), "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    vocab = set(captioners["sat"][0].vocab.itos)
    assert printed[0].split() and set(printed[0].split()) <= vocab
    width, height = Image.open(photo).size
    assert Image.open(out).size == (width, height + 24)  # the caption band below the photo


def test_caption_command_describes_regions(captioners, photo, tmp_path, capsys):
    from capbench.cli import main

    out = tmp_path / "regions.png"
    ckpt = str(captioners["rc"][1])
    assert (
        main(
            [
                "caption",
                str(photo),
                "--regions",
                "--checkpoint",
                ckpt,
                "--top",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    lines = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith("wrote")]
    assert 1 <= len(lines) <= 3
    scores = [float(ln.split()[0]) for ln in lines]
    assert scores == sorted(scores, reverse=True)
    width, height = Image.open(photo).size
    for ln in lines:  # boxes are reported in the photo's own pixels
        x1, y1, x2, y2 = (float(v) for v in ln[ln.rindex("[") + 1 : -1].split(","))
        assert 0 <= x1 <= x2 <= width + 1 and 0 <= y1 <= y2 <= height + 1
    assert Image.open(out).size == (width, height)


def test_caption_command_errors_name_the_problem(captioners, photo, tmp_path):
    from capbench.cli import main

    with pytest.raises(SystemExit, match="region captioner: add --regions"):
        main(["caption", str(photo), "--checkpoint", str(captioners["rc"][1])])
    with pytest.raises(SystemExit, match="no such image file"):
        main(["caption", str(tmp_path / "none.jpg"), "--checkpoint", str(captioners["sat"][1])])


def test_a_captioner_given_to_the_retrieval_commands_is_named(captioners, photo, tmp_path):
    """explain and query load a gordo2017 model: given a captioner they used to fail on its
    config ("model: unknown key(s) batch_size, beam_size, ...")."""
    from capbench.cli import main

    sat, rc = str(captioners["sat"][1]), str(captioners["rc"][1])
    out = str(tmp_path / "e.png")
    with pytest.raises(SystemExit) as err:
        main(["explain", str(photo), str(photo), "--checkpoint", sat, "--out", out])
    assert str(err.value) == (
        f"capbench explain: {sat}: not a semantic_retrieval model (gordo2017): it holds a "
        "Show-and-Tell captioner (mopuri2017)"
    )
    argv = ["query", "--build-index", "--checkpoint", rc, "--data", str(tmp_path)]
    with pytest.raises(SystemExit, match=r"it holds a region captioner \(mopuri2017\)"):
        main([*argv, "--index", str(tmp_path / "idx")])
