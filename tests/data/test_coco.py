"""COCO 2014 captions: writer -> reader round trip, official vs Karpathy splits, and the
real-file pitfalls (restval, trailing whitespace, 5-7 captions) on hand-written excerpts."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from capbench.data import DatasetFormatError, read
from capbench.data.writers import break_dataset, write


def _captions(tag: str, n: int = 5) -> list[str]:
    return [f"A {tag} photo, caption {k}." for k in range(n)]


def _specs() -> list[dict]:
    return [
        dict(image_id="a", split="train", captions=_captions("first"), meta={"coco_id": 57870}),
        dict(image_id="b", split="restval", captions=_captions("second", 6), mode="L"),
        dict(image_id="c", split="val", captions=_captions("third", 7), mode="RGBA",
             meta={"coco_id": 391895}),
        dict(image_id="d", split="test", captions=_captions("fourth")),
    ]  # fmt: skip


@pytest.fixture
def coco_root(tmp_path, make_items):
    items = make_items(_specs())
    return write("coco", tmp_path / "coco", items), items


def test_official_round_trip(coco_root):
    root, items = coco_root
    records = read("coco", root)
    # coco ids: given, else index + 1
    assert [r.image_id for r in records] == ["57870", "2", "391895", "4"]
    assert [r.split for r in records] == ["train", "val", "val", "val"]
    for rec, item in zip(records, items):
        assert rec.captions == item.record.captions  # stripped back to what was written
        assert rec.source == "coco"
        assert rec.regions == []
        assert rec.meta["coco_id"] == int(rec.image_id)
        with Image.open(rec.image_path) as im:
            assert im.mode == "RGB" and im.format == "JPEG"
    assert records[0].image_path == str(root / "train2014" / "COCO_train2014_000000057870.jpg")
    assert records[2].image_path == str(root / "val2014" / "COCO_val2014_000000391895.jpg")
    assert [r.image_id for r in read("coco", root, "val")] == ["2", "391895", "4"]


def test_karpathy_splits_count_restval_as_train(coco_root):
    root, items = coco_root
    records = read("coco", root, splits="karpathy")
    assert [r.split for r in records] == ["train", "train", "val", "test"]
    assert [r.meta["karpathy_split"] for r in records] == ["train", "restval", "val", "test"]
    assert [r.captions for r in records] == [i.record.captions for i in items]
    # restval lives in val2014 like val and test
    assert "/val2014/" in records[1].image_path
    assert [r.image_id for r in read("coco", root, "train", splits="karpathy")] == ["57870", "2"]
    assert [r.image_id for r in read("coco", root, "test", splits="karpathy")] == ["4"]


def test_written_files_have_real_keys_and_trailing_whitespace(coco_root):
    root, _ = coco_root
    train = json.loads((root / "annotations" / "captions_train2014.json").read_text())
    assert set(train) == {"info", "images", "licenses", "annotations"}  # no "categories"
    assert any(a["caption"].endswith("\n") for a in train["annotations"])
    karpathy = json.loads((root / "dataset_coco.json").read_text())
    entry = karpathy["images"][0]
    assert set(entry) == {
        "filepath",
        "sentids",
        "filename",
        "imgid",
        "split",
        "sentences",
        "cocoid",
    }
    assert any(s["raw"].endswith(" ") for s in entry["sentences"])
    assert entry["sentences"][0]["tokens"] == ["a", "first", "photo", "caption", "0"]


def test_verbatim_karpathy_excerpt(tmp_path):
    """The entry quoted from the real dataset_coco.json in formats.md, written by hand."""
    raw = "A man with a red helmet on a small moped on a dirt road. "
    entry = {
        "filepath": "val2014", "sentids": [770337], "filename": "COCO_val2014_000000391895.jpg",
        "imgid": 0, "split": "test", "cocoid": 391895,
        "sentences": [{"tokens": ["a", "man"], "raw": raw, "imgid": 0, "sentid": 770337}],
    }  # fmt: skip
    (tmp_path / "dataset_coco.json").write_text(json.dumps({"images": [entry], "dataset": "coco"}))
    (tmp_path / "val2014").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "val2014" / "COCO_val2014_000000391895.jpg")
    (rec,) = read("coco", tmp_path, splits="karpathy")
    assert (rec.image_id, rec.split, rec.captions) == ("391895", "test", [raw.strip()])
    assert rec.meta["sentids"] == [770337]


def test_unknown_split_names_valid_ones(coco_root):
    root, _ = coco_root
    with pytest.raises(ValueError, match=r"valid: train, val$"):
        read("coco", root, "test")  # the official 2014 test set has no captions
    with pytest.raises(ValueError, match="valid: train, val, test"):
        read("coco", root, "restval", splits="karpathy")
    with pytest.raises(ValueError, match="official, karpathy"):
        read("coco", root, splits="kaggle")


def test_breaker_error_names_the_file(coco_root):
    root, _ = coco_root
    broken = break_dataset("coco", root)
    with pytest.raises(DatasetFormatError) as err:
        read("coco", root)
    assert str(broken) in str(err.value) and "caption" in str(err.value)


def test_caption_for_unknown_image_is_an_error(coco_root):
    root, _ = coco_root
    path = root / "annotations" / "captions_val2014.json"
    data = json.loads(path.read_text())
    data["annotations"].append({"image_id": 999, "id": 10_000, "caption": "orphan"})
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match="image_id 999 is not in") as err:
        read("coco", root, "val")
    assert err.value.path == str(path) and err.value.record == "annotation 10000"


def test_missing_images_raise_or_are_counted(coco_root):
    root, _ = coco_root
    (root / "val2014" / "COCO_val2014_000000000002.jpg").unlink()
    (root / "val2014" / "COCO_val2014_000000000004.jpg").unlink()
    with pytest.raises(DatasetFormatError, match="image listed but absent") as err:
        read("coco", root)
    assert err.value.path == str(root / "annotations" / "captions_val2014.json")
    result = read("coco", root, allow_missing_images=True)
    assert [r.image_id for r in result] == ["57870", "391895"]
    assert result.missing_images == 2
    karpathy = read("coco", root, splits="karpathy", allow_missing_images=True)
    assert karpathy.skipped["missing_image"] == 2


def test_latin1_annotation_file_error_names_the_file(coco_root):
    root, _ = coco_root
    path = root / "annotations" / "captions_val2014.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["annotations"][0]["caption"] = "A caf\u00e9 on a corner."
    path.write_bytes(json.dumps(data, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(DatasetFormatError, match="not UTF-8 text") as err:
        read("coco", root, "val")
    assert err.value.path == str(path) and err.value.record == "line 1"


def test_exact_repeat_of_an_annotation_is_dropped_and_counted(coco_root, caplog):
    """A file with an annotation copied twice gives the image its captions once, not six."""
    root, items = coco_root
    path = root / "annotations" / "captions_val2014.json"
    data = json.loads(path.read_text())
    data["annotations"] += [dict(data["annotations"][0]), dict(data["annotations"][1])]
    path.write_text(json.dumps(data))
    result = read("coco", root, "val")
    assert [r.captions for r in result] == [i.record.captions for i in items[1:]]
    assert result.skipped["duplicate_annotation"] == 2
    first_ids = f"{data['annotations'][0]['id']}, {data['annotations'][1]['id']}"
    assert f"dropped 2 exact repeat(s) of a caption annotation (first: {first_ids})" in caplog.text


def test_annotation_id_reused_for_another_caption_is_an_error(coco_root):
    root, _ = coco_root
    path = root / "annotations" / "captions_val2014.json"
    data = json.loads(path.read_text())
    clash = dict(data["annotations"][0], caption="A different caption.")
    data["annotations"].append(clash)
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match="annotation id given twice with different") as err:
        read("coco", root, "val")
    assert err.value.path == str(path) and err.value.record == f"annotation {clash['id']}"


def _instance_specs() -> list[dict]:
    specs = _specs()
    specs[0]["meta"] = {"coco_id": 57870, "instances": [(1, 2, 3, 10, 20), (1, 0, 0, 5, 5)]}
    specs[2]["meta"] = {"coco_id": 391895, "instances": [(0, 1.5, 2.5, 4, 4)]}
    return specs


@pytest.mark.parametrize("splits", ["official", "karpathy"])
def test_instances_round_trip_as_labels_and_boxes(tmp_path, make_items, splits):
    """COCO's object annotations (instances_*.json, category ids 1-based) read back as 0-based
    category labels, the category names in id order, and every box."""
    root = write("coco", tmp_path / "c", make_items(_instance_specs()), categories=["cat", "dog"])
    doc = json.loads((root / "annotations" / "instances_train2014.json").read_text())
    assert [c["id"] for c in doc["categories"]] == [1, 2]
    assert {a["category_id"] for a in doc["annotations"]} == {2}
    by_id = {r.image_id: r for r in read("coco", root, splits=splits, instances=True)}
    first = by_id["57870"]
    assert first.labels == [1]
    assert first.meta["categories"] == ["cat", "dog"]
    assert first.meta["instances"] == [(1, 2.0, 3.0, 10.0, 20.0), (1, 0.0, 0.0, 5.0, 5.0)]
    assert by_id["391895"].labels == [0]
    assert by_id["391895"].meta["instances"] == [(0, 1.5, 2.5, 4.0, 4.0)]
    assert by_id["4"].labels == [] and by_id["4"].meta["instances"] == []
    assert read("coco", root)[0].labels == []  # without the option nothing changes


def test_missing_instances_file_is_an_error_naming_it(coco_root):
    root, _ = coco_root  # written without categories: captions only, as the 2014 captions zip
    with pytest.raises(DatasetFormatError, match=r"instances_train2014\.json"):
        read("coco", root, instances=True)


def test_instance_with_unknown_category_names_file_and_image(tmp_path, make_items):
    root = write("coco", tmp_path / "c", make_items(_instance_specs()), categories=["cat", "dog"])
    path = root / "annotations" / "instances_val2014.json"
    doc = json.loads(path.read_text())
    doc["annotations"][0]["category_id"] = 7
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetFormatError, match=r"instances_val2014.json.*category_id 7"):
        read("coco", root, instances=True)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["annotations"].__setitem__(0, None), "expected an object with key"),
        (lambda d: d["categories"][0].__setitem__("id", "x"), "'id' must be an integer"),
        (lambda d: d["annotations"][0]["bbox"].__setitem__(0, "x"), "expected [x, y, w, h]"),
        (lambda d: d["annotations"][0]["bbox"].__setitem__(0, None), "expected [x, y, w, h]"),
    ],
)
def test_instance_of_the_wrong_json_type_names_file(tmp_path, make_items, mutate, message):
    """Found by mutating the instances file: these were an AttributeError, a sort of mixed ids
    or a float() of a string, naming no file."""
    root = write("coco", tmp_path / "c", make_items(_instance_specs()), categories=["cat", "dog"])
    path = root / "annotations" / "instances_train2014.json"
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetFormatError) as err:
        read("coco", root, instances=True)
    assert err.value.path == str(path) and message in err.value.detail, str(err.value)
