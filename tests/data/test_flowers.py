"""Oxford Flowers-102 + Reed cvpr2016_flowers: round trip, and .mat pitfalls on hand-written
files (1xN row vectors, labels 1..102, 1-based setid numbers, a squeezed 1-element set)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from capbench.data import DatasetFormatError, read
from capbench.data.writers import break_dataset, write


def _specs() -> list[dict]:
    caps = [f"a flower with petals of shape {k}" for k in range(10)]
    return [
        dict(image_id="image_00001", split="train", label=0, captions=caps, meta={"image_split": "tst"}),
        dict(image_id="image_00002", split="val", label=4, captions=caps[::-1], mode="L"),
        dict(image_id="image_00003", split="test", label=2, captions=caps, mode="RGBA",
             meta={"image_split": "trn"}),
        dict(image_id="image_00004", split="train", label=0, captions=caps, meta={"image_split": "val"}),
    ]  # fmt: skip


def test_round_trip_record_for_record(tmp_path, make_items):
    items = make_items(_specs())
    root = write("flowers", tmp_path, items)
    records = read("flowers", root)
    assert [r.image_id for r in records] == [i.record.image_id for i in items]
    for rec, item in zip(records, items):
        src = item.record
        assert (rec.split, rec.label, rec.captions) == (src.split, src.label, src.captions)
        assert rec.meta["class_name"] == f"class_{src.label + 1:05d}"
        with Image.open(rec.image_path) as im:
            assert (im.format, im.mode) == ("JPEG", "RGB")
    # meta["image_split"] where given; the default cycles trn, val, tst by position (2nd: val)
    assert [r.meta["image_split"] for r in records] == ["tst", "val", "trn", "val"]
    # the .mat files are 1xN row vectors like the originals
    raw = scipy.io.loadmat(root / "imagelabels.mat")
    assert raw["labels"].shape == (1, 4) and raw["labels"].tolist() == [[1, 5, 3, 1]]
    assert scipy.io.loadmat(root / "setid.mat")["trnid"].shape == (1, 1)
    assert [r.image_id for r in read("flowers", root, "trainval")] == [
        "image_00001",
        "image_00002",
        "image_00004",
    ]


def _write_real_style(root: Path, labels_shape: tuple[int, int] = (1, 5)) -> None:
    """Five images, classes 1 and 102, written like the original files (not via our writer)."""
    labels = np.array([102, 1, 1, 102, 1], dtype=np.uint8).reshape(labels_shape)
    scipy.io.savemat(root / "imagelabels.mat", {"labels": labels})
    # a single trnid squeezes to a scalar with squeeze_me=True
    ids = {"trnid": np.array([[4]]), "valid": np.array([[1, 2]]), "tstid": np.array([[3, 5]])}
    scipy.io.savemat(root / "setid.mat", {k: v.astype(np.uint16) for k, v in ids.items()})
    reed = root / "cvpr2016_flowers"
    for num, label in enumerate(labels.ravel().tolist(), start=1):
        (root / "jpg").mkdir(exist_ok=True)
        Image.new("RGB", (8, 8)).save(root / "jpg" / f"image_{num:05d}.jpg")
        path = reed / "text_c10" / f"class_{label:05d}" / f"image_{num:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"flower {num} sentence {k}\n" for k in range(10)))
    (reed / "trainvalclasses.txt").write_text("class_00102\n")
    (reed / "testclasses.txt").write_text("class_00001\n")


@pytest.mark.parametrize("labels_shape", [(1, 5), (5, 1)])
def test_real_layout_pitfalls(tmp_path, labels_shape):
    _write_real_style(tmp_path, labels_shape)
    records = {r.image_id: r for r in read("flowers", tmp_path)}
    assert len(records) == 5
    assert records["image_00001"].label == 101 and records["image_00002"].label == 0
    assert records["image_00001"].meta["class_name"] == "class_00102"
    assert {k: r.meta["image_split"] for k, r in records.items()} == {
        "image_00001": "val", "image_00002": "val", "image_00003": "tst",
        "image_00004": "trn", "image_00005": "tst",
    }  # fmt: skip
    assert records["image_00001"].split == "trainval" and records["image_00002"].split == "test"
    assert records["image_00003"].captions[9] == "flower 3 sentence 9"
    assert [r.image_id for r in read("flowers", tmp_path, "test")] == [
        "image_00002",
        "image_00003",
        "image_00005",
    ]


def test_torchvision_folder_is_accepted(tmp_path):
    (tmp_path / "flowers-102").mkdir()
    _write_real_style(tmp_path / "flowers-102")
    assert len(read("flowers", tmp_path)) == 5


def test_missing_setid_key_names_setid_mat(tmp_path):
    _write_real_style(tmp_path)
    scipy.io.savemat(
        tmp_path / "setid.mat", {"trnid": np.array([[4]]), "tstid": np.array([[3, 5]])}
    )
    with pytest.raises(DatasetFormatError) as err:
        read("flowers", tmp_path)
    assert str(tmp_path / "setid.mat") in str(err.value) and "'valid'" in str(err.value)


def test_setid_number_out_of_range(tmp_path):
    _write_real_style(tmp_path)
    ids = {"trnid": np.array([[4, 6]]), "valid": np.array([[1, 2]]), "tstid": np.array([[3, 5]])}
    scipy.io.savemat(tmp_path / "setid.mat", ids)
    with pytest.raises(DatasetFormatError, match=r"image number 6 outside 1\.\.5"):
        read("flowers", tmp_path)


def test_not_a_mat_file(tmp_path):
    _write_real_style(tmp_path)
    (tmp_path / "imagelabels.mat").write_bytes(b"<html>moved</html>")
    with pytest.raises(DatasetFormatError, match="not a readable MATLAB") as err:
        read("flowers", tmp_path)
    assert "imagelabels.mat" in str(err.value)


def test_caption_file_with_wrong_line_count(tmp_path):
    _write_real_style(tmp_path)
    path = tmp_path / "cvpr2016_flowers/text_c10/class_00001/image_00003.txt"
    path.write_text("only one line\n")
    with pytest.raises(DatasetFormatError) as err:
        read("flowers", tmp_path)
    assert str(path) in str(err.value) and "image_00003" in str(err.value)


def test_missing_image_raises_or_is_counted(tmp_path):
    _write_real_style(tmp_path)
    (tmp_path / "jpg/image_00005.jpg").unlink()
    with pytest.raises(DatasetFormatError, match="image_00005"):
        read("flowers", tmp_path)
    result = read("flowers", tmp_path, allow_missing_images=True)
    assert len(result) == 4 and result.missing_images == 1


def test_breaker_error_names_the_file(tmp_path, make_items):
    root = write("flowers", tmp_path, make_items(_specs()))
    bad = break_dataset("flowers", root)
    with pytest.raises(DatasetFormatError) as err:
        read("flowers", root)
    assert str(bad) in str(err.value)
