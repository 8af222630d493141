"""PASCAL VOC 2007: ``%s %2d`` lines (double space before positives), 1 / -1 / 0 = difficult,
canonical class order, the three accepted roots, and the writer round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from capbench.data import DatasetFormatError, read
from capbench.data.sources.voc import VOC_CLASSES
from capbench.data.writers import break_dataset, write


def _write_real_style(root: Path, classes=VOC_CLASSES) -> Path:
    """VOCdevkit with images 000005 (train) and 000007 (val), 000001 (test), by hand."""
    voc = root / "VOCdevkit" / "VOC2007"
    main = voc / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    splits = {"train": ["000005"], "val": ["000007"], "test": ["000001"]}
    splits["trainval"] = splits["train"] + splits["val"]
    # 000005: chair present, car difficult; 000007: car present; 000001: dog and person present
    truth = {
        "000005": {"chair": 1, "car": 0},
        "000007": {"car": 1},
        "000001": {"dog": 1, "person": 1},
    }
    for split, ids in splits.items():
        (main / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for cls in classes:
            lines = "".join("%s %2d\n" % (i, truth[i].get(cls, -1)) for i in ids)  # noqa: UP031
            (main / f"{cls}_{split}.txt").write_text(lines)
    for image_id in truth:
        Image.new("RGB", (8, 8)).save(voc / "JPEGImages" / f"{image_id}.jpg")
    return voc


def test_real_layout_labels_difficult_and_double_spaces(tmp_path):
    voc = _write_real_style(tmp_path)
    assert "000007  1" in (voc / "ImageSets/Main/car_val.txt").read_text()  # the real spacing
    records = {r.image_id: r for r in read("voc2007", tmp_path)}
    assert {k: r.split for k, r in records.items()} == {
        "000005": "train",
        "000007": "val",
        "000001": "test",
    }
    c = VOC_CLASSES.index
    assert records["000005"].labels == [c("chair")] and records["000005"].meta["difficult"] == [
        c("car")
    ]
    assert records["000007"].labels == [c("car")] and records["000007"].meta["difficult"] == []
    assert records["000001"].labels == [c("dog"), c("person")]
    assert records["000001"].meta["classes"] == list(VOC_CLASSES)  # canonical, not sorted
    assert [r.image_id for r in read("voc2007", tmp_path, "trainval")] == ["000005", "000007"]
    # the other two accepted roots
    assert len(read("voc2007", tmp_path / "VOCdevkit")) == 3
    assert len(read("voc2007", voc, "test")) == 1


def test_class_list_is_sorted_when_not_the_voc_twenty(tmp_path):
    _write_real_style(tmp_path, classes=("person", "dog", "car", "chair"))
    records = {r.image_id: r for r in read("voc2007", tmp_path)}
    assert records["000001"].meta["classes"] == ["car", "chair", "dog", "person"]
    assert records["000001"].labels == [2, 3]


@pytest.mark.parametrize("line", ["000005  2", "000005", "000005 1 1", "000005 yes"])
def test_malformed_line_names_file_and_image(tmp_path, line):
    voc = _write_real_style(tmp_path)
    path = voc / "ImageSets/Main/chair_train.txt"
    path.write_text(line + "\n")
    with pytest.raises(DatasetFormatError) as err:
        read("voc2007", tmp_path)
    msg = str(err.value)
    assert str(path) in msg and "000005" in msg and "line 1" in msg


def test_missing_class_file_and_missing_label_line(tmp_path):
    voc = _write_real_style(tmp_path)
    (voc / "ImageSets/Main/dog_test.txt").write_text("")
    with pytest.raises(DatasetFormatError, match="has no label line") as err:
        read("voc2007", tmp_path, "test")
    assert "dog_test.txt" in str(err.value) and "000001" in str(err.value)
    (voc / "ImageSets/Main/dog_test.txt").unlink()
    with pytest.raises(DatasetFormatError, match="missing class file") as err:
        read("voc2007", tmp_path, "test")
    assert "dog_test.txt" in str(err.value)


def test_missing_image(tmp_path):
    voc = _write_real_style(tmp_path)
    (voc / "JPEGImages/000007.jpg").unlink()
    with pytest.raises(DatasetFormatError, match="000007"):
        read("voc2007", tmp_path)
    assert read("voc2007", tmp_path, allow_missing_images=True).missing_images == 1


def _specs() -> list[dict]:
    return [
        dict(image_id="000001", split="train", labels=[0, 2], meta={"difficult": [1]}),
        dict(image_id="000002", split="val", labels=[], mode="L"),
        dict(image_id="000003", split="test", labels=[1], mode="RGBA"),
        dict(image_id="000004", split="train", labels=[2]),
    ]


def test_round_trip_record_for_record(tmp_path, make_items):
    items = make_items(_specs())
    classes = ["bird", "cat", "dog"]
    root = write("voc2007", tmp_path, items, classes=classes)
    (
        root / "VOCdevkit/VOC2007/capbench_classes.txt"
    ).unlink()  # sorted names: same order without it
    records = read("voc2007", root)
    by_id = {r.image_id: r for r in records}
    assert len(records) == 4
    for item in items:
        rec, src = by_id[item.record.image_id], item.record
        assert (rec.split, rec.labels) == (src.split, src.labels)
        assert rec.meta["difficult"] == src.meta.get("difficult", [])
        assert rec.meta["classes"] == classes
        with Image.open(rec.image_path) as im:
            assert (im.format, im.mode) == ("JPEG", "RGB")
    main = root / "VOCdevkit/VOC2007/ImageSets/Main"
    assert (main / "bird_train.txt").read_text() == "000001  1\n000004 -1\n"
    assert (main / "cat_train.txt").read_text() == "000001  0\n000004 -1\n"
    assert (main / "trainval.txt").read_text().split() == ["000001", "000002", "000004"]
    assert (root / "VOCdevkit/VOC2007/Annotations/000001.xml").read_text().count("<object>") == 3


def test_unsorted_class_order_survives_the_round_trip(tmp_path, make_items):
    classes = ["dog", "cat", "bird"]  # neither canonical nor sorted
    root = write("voc2007", tmp_path, make_items(_specs()), classes=classes)
    order_file = root / "VOCdevkit/VOC2007/capbench_classes.txt"
    assert order_file.read_text().split() == classes
    records = {r.image_id: r for r in read("voc2007", root)}
    assert records["000001"].meta["classes"] == classes
    assert records["000001"].labels == [0, 2] and records["000001"].meta["difficult"] == [1]
    order_file.write_text("dog\ncat\n")
    with pytest.raises(DatasetFormatError, match="must list each class") as err:
        read("voc2007", root)
    assert str(order_file) in str(err.value)


def test_canonical_classes_write_no_order_file(tmp_path, make_items):
    root = write("voc2007", tmp_path, make_items(_specs()), classes=list(VOC_CLASSES))
    assert not (root / "VOCdevkit/VOC2007/capbench_classes.txt").exists()
    assert read("voc2007", root)[0].labels == [0, 2]


def test_breaker_error_names_the_file(tmp_path, make_items):
    root = write("voc2007", tmp_path, make_items(_specs()), classes=["bird", "cat", "dog"])
    bad = break_dataset("voc2007", root)
    with pytest.raises(DatasetFormatError) as err:
        read("voc2007", root)
    assert str(bad) in str(err.value)


def test_byte_order_mark_is_not_read_as_part_of_the_first_id(tmp_path):
    """Split lists and class files saved by a Windows editor start with a UTF-8 BOM."""
    voc = _write_real_style(tmp_path)
    main = voc / "ImageSets/Main"
    for name in ("test.txt", "dog_test.txt"):
        (main / name).write_bytes(b"\xef\xbb\xbf" + (main / name).read_bytes())
    (record,) = read("voc2007", tmp_path, "test")
    assert record.image_id == "000001"
    assert record.labels == [VOC_CLASSES.index("dog"), VOC_CLASSES.index("person")]


def test_id_listed_twice_in_a_split_list_is_an_error(tmp_path):
    voc = _write_real_style(tmp_path)
    path = voc / "ImageSets/Main/trainval.txt"
    path.write_text("000005\n000007\n000005\n")
    with pytest.raises(
        DatasetFormatError, match=r"line 3: image listed twice \(first at line 1\)"
    ) as err:
        read("voc2007", tmp_path, "trainval")
    assert err.value.path == str(path) and err.value.record == "000005"
