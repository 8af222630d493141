"""A JSON value of the wrong type (``null`` for a file name, a number for a url, a string where a
list belongs) is a DatasetFormatError naming the file, the record and the key.

Found by mutating the fixtures one value at a time and running ``capbench data check``: these
cases ended in ``unsupported operand type(s) for /: 'PosixPath' and 'NoneType'``, ``'NoneType'
object is not iterable``, ``unhashable type: 'list'`` or an ``AttributeError`` traceback, none
naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from capbench.data import read
from capbench.data.errors import DatasetFormatError
from capbench.data.fixtures import write_fixture


def _first_image(doc: dict) -> dict:
    return doc["images"][0]


def _set(getter, key: str, value: Any):
    def mutate(doc):
        getter(doc)[key] = value

    return mutate


# (reader, file under the fixture root, mutation, key the message must name, record named)
CASES = [
    ("coco", "annotations/captions_train2014.json", _set(_first_image, "file_name", None),
     "'file_name' must be a string", True),
    ("coco", "annotations/captions_train2014.json", _set(lambda d: d, "annotations", None),
     "'annotations' must be a list", False),
    ("coco", "annotations/captions_train2014.json", _set(_first_image, "id", [1]),
     "'id' must be an integer or a string", False),
    ("flickr8k", "dataset_flickr8k.json", _set(_first_image, "filename", None),
     "'filename' must be a string", True),
    ("flickr8k", "dataset_flickr8k.json", _set(lambda d: d, "images", None),
     "'images' must be a list", False),
    ("flickr30k", "dataset_flickr30k.json", _set(_first_image, "sentences", "a caption"),
     "'sentences' must be a list", True),
    ("graded_retrieval", "benchmark.json", _set(_first_image, "file", 3),
     "'file' must be a string", True),
    ("visual_genome", "image_data.json", lambda d: d[0].__setitem__("url", 7),
     "'url' must be a string", True),
    ("visual_genome", "capbench_split_seed0.json",
     lambda d: d["splits"].__setitem__("train", None), "'train' must be a list", False),
    ("visual_genome", "capbench_split_seed0.json",
     lambda d: d["splits"]["train"].__setitem__(0, [1]), "'train' must list integer", False),
    ("visual_genome", "image_data.json", lambda d: d[0].__setitem__("image_id", [1]),
     "'image_id' must be an integer", True),
    ("visual_genome", "region_descriptions.json", lambda d: d[0].__setitem__("regions", 7),
     "'regions' must be a list", True),
    ("visual_genome", "region_descriptions.json",
     lambda d: d[0]["regions"][0].__setitem__("region_id", {}), "'region_id' must be an integer",
     True),
    ("visual_genome", "objects.json", lambda d: d[0].__setitem__("objects", 2.5),
     "'objects' must be a list", True),
    ("visual_genome", "objects.json", lambda d: d[0]["objects"][0].__setitem__("names", 7),
     "'names' must be a list of strings", True),
]  # fmt: skip


@pytest.mark.parametrize(("name", "rel", "mutate", "message", "names_record"), CASES)
def test_wrong_json_type_names_file_and_key(tmp_path, name, rel, mutate, message, names_record):
    root = tmp_path / name
    write_fixture(name, root)
    path = Path(root, rel)
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetFormatError) as err:
        read(name, root)
    assert err.value.path == str(path)
    assert message in err.value.detail, str(err.value)
    assert (err.value.record is not None) == names_record, str(err.value)


def test_data_check_names_the_root_when_no_record_is_read(tmp_path, capsys):
    from capbench import cli

    root = tmp_path / "flickr8k"
    write_fixture("flickr8k", root)
    path = root / "dataset_flickr8k.json"
    doc = json.loads(path.read_text())
    doc["images"] = []
    path.write_text(json.dumps(doc))
    assert cli.main(["data", "check", "flickr8k", str(root)]) == 1
    assert f"error: no records read from {root}" in capsys.readouterr().err
