"""CUB-200-2011 + Reed cvpr2016_cub: round trip through the writer, and the real-file pitfalls
checked on hand-written files (1 = train, 1-based ids, float boxes, 10-line caption files)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from capbench.data import DatasetFormatError, read
from capbench.data.writers import break_dataset, write


def _captions(tag: str, n: int = 10) -> list[str]:
    return [f"{tag} caption number {k}" for k in range(n)]


def _specs() -> list[dict]:
    return [
        dict(image_id="Red_Bird_0001_1", split="train", label=0, captions=_captions("a"),
             meta={"class_name": "001.Red_bird", "image_split": "train", "bbox": [1.5, 2.0, 10.0, 8.25]}),
        dict(image_id="Red_Bird_0002_1", split="train", label=0, captions=_captions("b"), mode="L",
             meta={"class_name": "001.Red_bird", "image_split": "test"}),
        dict(image_id="Blue_Bird_0001_2", split="val", label=1, captions=_captions("c"), mode="RGBA",
             meta={"class_name": "002.Blue_bird", "image_split": "train"}),
        dict(image_id="Class_4_0001_4", split="test", label=3, captions=_captions("d")),
    ]  # fmt: skip


def test_round_trip_record_for_record(tmp_path, make_items):
    items = make_items(_specs())
    root = write("cub", tmp_path, items)
    records = read("cub", root)
    assert [r.image_id for r in records] == [i.record.image_id for i in items]
    for rec, item in zip(records, items):
        src = item.record
        assert (rec.split, rec.label, rec.captions) == (src.split, src.label, src.captions)
        assert rec.source == "cub"
        # without meta["image_split"] the writer alternates train, test: the 4th image is test
        assert rec.meta["image_split"] == src.meta.get("image_split", "test")
        assert rec.meta.get("bbox") == src.meta.get("bbox")
        with Image.open(rec.image_path) as im:
            assert (im.format, im.mode) == ("JPEG", "RGB")
    # the default class name for a label without one: "004.class_4"
    assert records[3].meta["class_name"] == "004.class_4"
    assert Path(records[3].image_path).parent.name == "004.class_4"
    assert [r.image_id for r in read("cub", root, "trainval")] == [
        i.record.image_id for i in items[:3]
    ]
    assert [r.split for r in read("cub", root, "trainval")] == ["trainval"] * 3
    assert [r.image_id for r in read("cub", root, "val")] == ["Blue_Bird_0001_2"]


def _write_real_style(root: Path, *, with_train_val: bool = True) -> None:
    """Two classes, three images, written the way the real files look (not via our writer)."""
    cub, reed = root / "CUB_200_2011", root / "cvpr2016_cub"
    files = {
        "images.txt": "1 001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg\n"
        "2 001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg\n"
        "3 002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg\n",
        "classes.txt": "1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n",
        "image_class_labels.txt": "1 1\n2 1\n3 2\n",
        "train_test_split.txt": "1 0\n2 1\n3 1\n",
        "bounding_boxes.txt": "1 60.0 27.0 325.0 304.0\n2 139.0 30.0 153.0 264.0\n3 14.0 112.0 388.0 186.0\n",
    }
    for name, text in files.items():
        (cub / name).parent.mkdir(parents=True, exist_ok=True)
        (cub / name).write_text(text)
    for line in files["images.txt"].splitlines():
        rel = line.split()[1]
        (cub / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 8)).save(cub / "images" / rel)  # a grayscale JPEG, as a few real ones
        stem = Path(rel).stem
        text = "".join(f"this bird {stem} has feature {k}\n" for k in range(10))
        (reed / "text_c10" / Path(rel).parent / f"{stem}.txt").parent.mkdir(
            parents=True, exist_ok=True
        )
        (reed / "text_c10" / Path(rel).parent / f"{stem}.txt").write_text(text)
    (reed / "trainvalclasses.txt").write_text("001.Black_footed_Albatross\n")
    (reed / "testclasses.txt").write_text("002.Laysan_Albatross\n")
    (reed / "allclasses.txt").write_text("001.Black_footed_Albatross\n002.Laysan_Albatross\n")
    if with_train_val:
        (reed / "trainclasses.txt").write_text("001.Black_footed_Albatross\n")
        (reed / "valclasses.txt").write_text("")


def test_real_layout_pitfalls(tmp_path):
    _write_real_style(tmp_path)
    records = {r.image_id: r for r in read("cub", tmp_path)}
    first = records["Black_Footed_Albatross_0046_18"]
    # train_test_split.txt: 1 = train, 0 = test
    assert first.meta["image_split"] == "test"
    assert records["Black_Footed_Albatross_0009_34"].meta["image_split"] == "train"
    # 1-based class ids -> 0-based labels; float boxes
    assert first.label == 0 and records["Laysan_Albatross_0002_1027"].label == 1
    assert first.meta["bbox"] == [60.0, 27.0, 325.0, 304.0]
    assert first.meta["cub_id"] == 1
    assert first.captions[0] == "this bird Black_Footed_Albatross_0046_18 has feature 0"
    assert first.split == "train" and records["Laysan_Albatross_0002_1027"].split == "test"
    # root may be CUB_200_2011 itself
    assert len(read("cub", tmp_path / "CUB_200_2011")) == 3


def test_only_trainval_and_test_class_files(tmp_path):
    _write_real_style(tmp_path, with_train_val=False)
    assert {r.split for r in read("cub", tmp_path)} == {"trainval", "test"}
    with pytest.raises(DatasetFormatError) as err:
        read("cub", tmp_path, "train")
    assert "trainclasses.txt" in str(err.value)
    with pytest.raises(ValueError, match="unknown split"):
        read("cub", tmp_path, "karpathy")


def test_caption_file_with_nine_or_eleven_lines(tmp_path):
    _write_real_style(tmp_path)
    path = tmp_path / "cvpr2016_cub/text_c10/002.Laysan_Albatross/Laysan_Albatross_0002_1027.txt"
    for n in (9, 11):
        path.write_text("".join(f"line {k}\n" for k in range(n)))
        with pytest.raises(DatasetFormatError) as err:
            read("cub", tmp_path)
        msg = str(err.value)
        assert str(path) in msg and "Laysan_Albatross_0002_1027" in msg and f"found {n}" in msg


def test_missing_image_raises_or_is_counted(tmp_path):
    _write_real_style(tmp_path)
    image = tmp_path / "CUB_200_2011/images/002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg"
    image.unlink()
    with pytest.raises(DatasetFormatError) as err:
        read("cub", tmp_path)
    assert str(image) in str(err.value) and "images.txt" in str(err.value)
    result = read("cub", tmp_path, allow_missing_images=True)
    assert len(result) == 2 and result.skipped["missing_image"] == 1


@pytest.mark.parametrize(
    ("file", "text", "expected"),
    [
        ("image_class_labels.txt", "1 1\n2 1\n", "image has no class label"),
        ("images.txt", "1\n", "expected 2 space-separated columns"),
        ("train_test_split.txt", "1 0\n2 1\n3 yes\n", "must be 0 or 1"),
        ("bounding_boxes.txt", "1 60.0 27.0 325.0\n", "expected 5 space-separated columns"),
    ],
)
def test_malformed_annotation_files_name_the_file(tmp_path, file, text, expected):
    _write_real_style(tmp_path)
    path = tmp_path / "CUB_200_2011" / file
    path.write_text(text)
    with pytest.raises(DatasetFormatError, match=expected) as err:
        read("cub", tmp_path)
    assert str(path) in str(err.value)


def test_missing_reed_archive_and_unknown_split_class(tmp_path):
    _write_real_style(tmp_path)
    (tmp_path / "cvpr2016_cub/testclasses.txt").write_text("003.No_such_bird\n")
    with pytest.raises(DatasetFormatError, match=r"003\.No_such_bird"):
        read("cub", tmp_path)
    (tmp_path / "cvpr2016_cub/testclasses.txt").unlink()
    with pytest.raises(DatasetFormatError, match=r"testclasses\.txt"):
        read("cub", tmp_path)


def test_writer_rejects_a_class_split_across_splits(tmp_path, make_items):
    specs = _specs()
    specs[1]["split"] = "test"  # same class as specs[0], which is train
    with pytest.raises(ValueError, match=r"001\.Red_bird"):
        write("cub", tmp_path, make_items(specs))
    specs = _specs()
    specs[0]["captions"] = specs[0]["captions"][:5]
    with pytest.raises(ValueError, match="exactly 10"):
        write("cub", tmp_path / "b", make_items(specs))


def test_breaker_error_names_the_file(tmp_path, make_items):
    root = write("cub", tmp_path, make_items(_specs()))
    bad = break_dataset("cub", root)
    with pytest.raises(DatasetFormatError) as err:
        read("cub", root)
    assert str(bad) in str(err.value)
