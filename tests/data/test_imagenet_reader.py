"""The ImageNet-1k reader on fixtures written by its writer: both validation layouts, Kaggle's
download root, the sorted-wnid class order, and the errors a real copy runs into."""

from __future__ import annotations

import shutil

import pytest

from capbench.data import read
from capbench.data.errors import DatasetFormatError
from capbench.data.fixtures import write_fixture


@pytest.fixture()
def flat(tmp_path):
    return write_fixture("imagenet", tmp_path / "imagenet")


def _by_id(records):
    return {(r.split, r.image_id): (r.label, r.meta["wnid"]) for r in records}


def test_classes_are_the_sorted_train_wnids(flat):
    records = read("imagenet", flat)
    classes = records[0].meta["classes"]
    assert classes == sorted(classes) and len(classes) == 4
    assert all(classes[r.label] == r.meta["wnid"] and r.labels == [r.label] for r in records)
    assert records[0].meta["class_names"][0] == "001.Space_scene"  # LOC_synset_mapping.txt
    assert {r.split for r in read("imagenet", flat, "val")} == {"val"}


def test_refoldered_val_and_kaggle_root_read_the_same_labels(flat, tmp_path):
    expected = _by_id(read("imagenet", flat))
    # val/<wnid>/ folders (the usual re-foldering), no CSV needed
    folders = tmp_path / "folders"
    shutil.copytree(flat, folders)
    (folders / "LOC_val_solution.csv").unlink()
    val = {r.image_id: r.meta["wnid"] for r in read("imagenet", flat, "val")}
    for stem, wnid in val.items():
        (folders / "val" / wnid).mkdir(exist_ok=True)
        (folders / "val" / f"{stem}.JPEG").rename(folders / "val" / wnid / f"{stem}.JPEG")
    assert _by_id(read("imagenet", folders)) == expected
    # Kaggle: ILSVRC/Data/CLS-LOC/{train,val} with the CSV at the download root
    kaggle = tmp_path / "kaggle"
    shutil.copytree(flat / "train", kaggle / "ILSVRC" / "Data" / "CLS-LOC" / "train")
    shutil.copytree(flat / "val", kaggle / "ILSVRC" / "Data" / "CLS-LOC" / "val")
    shutil.copy(flat / "LOC_val_solution.csv", kaggle)
    assert _by_id(read("imagenet", kaggle)) == expected


def test_flat_val_without_its_csv_says_what_to_do(flat):
    (flat / "LOC_val_solution.csv").unlink()
    with pytest.raises(DatasetFormatError, match=r"LOC_val_solution\.csv") as err:
        read("imagenet", flat, "val")
    assert "re-folder" in str(err.value)
    assert len(read("imagenet", flat, "train")) == 8  # train alone needs no CSV


def test_a_csv_line_with_an_unknown_wnid_names_its_line(flat):
    path = flat / "LOC_val_solution.csv"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(lines[1].split(",")[1].split()[0], "n99999999")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=r"line 2: 'n99999999' is not a class") as err:
        read("imagenet", flat)
    assert err.value.path == str(path)


def test_a_class_folder_that_is_not_a_wnid_is_refused(flat):
    (flat / "train" / "cats").mkdir()
    with pytest.raises(DatasetFormatError, match=r"n########-named folder per class.*cats"):
        read("imagenet", flat)
