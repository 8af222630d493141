"""read_user_study / write_user_study: round trip, atomic write, and errors that name the file
and the triplet."""

from __future__ import annotations

import json

import pytest

from capbench.data.errors import DatasetFormatError
from capbench.data.user_study import Triplet, UserStudy, read_user_study, write_user_study

TRIPLETS = [
    Triplet("1", "2", "3", {"u00": "a", "u01": "neither"}),
    Triplet("4", "5", "6", {"u01": "b"}),
]


def test_round_trip_and_counts(tmp_path):
    path = write_user_study(
        tmp_path / "us" / "triplets_test.json", "visual_genome", "test", ["u00", "u01"], TRIPLETS
    )
    study = read_user_study(path)
    assert study == UserStudy("visual_genome", "test", ["u00", "u01"], TRIPLETS)
    assert study.triplets[0].counts == (1, 0, 1)
    doc = json.loads(path.read_text())
    assert doc["format"] == "capbench-user-study" and doc["version"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["triplets_test.json"]  # no temp file left


def _write(tmp_path, mutate) -> tuple:
    path = write_user_study(tmp_path / "t.json", "visual_genome", "test", ["u00", "u01"], TRIPLETS)
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    "mutate, record, message",
    [
        (lambda d: d["triplets"][1]["votes"].update(u01="maybe"), 1, "chose 'maybe'"),
        (lambda d: d["triplets"][0]["votes"].update(u99="a"), 0, "unknown annotator 'u99'"),
        (lambda d: d["triplets"][1].pop("b"), 1, "missing key 'b'"),
        (lambda d: d["triplets"][0].update(a="1"), 0, "three different images"),
        (lambda d: d["triplets"][1].update(votes=["a"]), 1, "'votes' must be a dict"),
        (lambda d: d.update(format="other"), None, "not a user-study file"),
        (lambda d: d.pop("annotators"), None, "missing key 'annotators'"),
    ],
)
def test_bad_files_name_file_and_triplet(tmp_path, mutate, record, message):
    path = _write(tmp_path, mutate)
    with pytest.raises(DatasetFormatError) as err:
        read_user_study(path)
    assert err.value.path == str(path) and err.value.record == record
    assert message in str(err.value)
    if record is not None:
        assert f"triplet {record}" in str(err.value)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DatasetFormatError, match="missing user-study file"):
        read_user_study(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetFormatError, match="not valid JSON"):
        read_user_study(bad)
