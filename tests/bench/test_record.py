"""Run records: typed schema, validation on write and read, atomic writes."""

from __future__ import annotations

import json

import pytest

from capbench.bench.record import RecordError, RunRecord, read_record, record_path, write_record


def make_record(**kw) -> RunRecord:
    base = dict(
        paper="p", table="t", row="r", profile="scenes", seed=0, metrics={"m": 0.5}, n_scored=10,
        config={"target": "m:f"}, config_hash="ab" * 32, dataset={"name": "d", "root": None, "fingerprint": "x"},
        capbench_version="0.1.0", git={"sha": None, "dirty": None}, packages={}, device={"kind": "cpu"},
        wall_time_s=1.0, started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:00:01+00:00",
    )  # fmt: skip
    base.update(kw)
    return RunRecord(**base)


def test_roundtrip_and_path(tmp_path):
    rec = make_record(curves={"c": {"x": [1, 2], "y": [0.1, 0.2]}})
    path = write_record(rec, tmp_path)
    assert path == record_path(tmp_path, "p", "t", "r", "scenes", 0, "ab" * 32)
    assert path.name == "scenes-s0-abababab.json"
    assert read_record(path) == rec
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"metrics": {"m": float("nan")}}, "finite"),
        ({"metrics": {}}, "non-empty"),
        ({"seed": -1}, "seed"),
        ({"config_hash": "xyz"}, "64 hex"),
        ({"curves": {"c": {"x": [1], "y": [1, 2]}}}, "equal length"),
        ({"status": "running"}, "status"),
    ],
)
def test_invalid_records_are_refused_on_write(tmp_path, kw, message):
    with pytest.raises(RecordError, match=message):
        write_record(make_record(**kw), tmp_path)
    assert not any(tmp_path.rglob("*.json"))


def test_malformed_file_error_names_path(tmp_path):
    path = write_record(make_record(), tmp_path)
    raw = json.loads(path.read_text())
    del raw["metrics"]
    raw["surprise"] = 1
    path.write_text(json.dumps(raw))
    with pytest.raises(RecordError) as err:
        read_record(path)
    assert str(path) in str(err.value) and "metrics" in str(err.value)
    path.write_text("{not json")
    with pytest.raises(RecordError, match="not valid JSON"):
        read_record(path)
