"""The pydantic schemas of paper.yaml, row configs and run records: errors name the file and the
key, a row names exactly one entry point, and the JSON Schema in the docs is the models'."""

from __future__ import annotations

import json

import pytest
import yaml

from capbench.bench.config import resolve_config
from capbench.bench.paper import PaperSpecError, load_paper
from capbench.bench.schemas import (
    JSON_SCHEMA_DIR,
    PaperSpec,
    RowConfigSpec,
    json_schemas,
    schema_text,
    validate,
)


def _row_config(tmp_path, text: str):
    path = tmp_path / "r.scenes.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("target: m:f\nmethod: gordo\n", "exactly one of 'target: package.module:function' and"),
        ("model: {a: 1}\n", "(neither given)"),
        ("target: no_colon\n", "target: must be 'package.module:function', got 'no_colon'"),
        ("target: m:f\nrequires: [data.x]\n", "requires: must be a mapping, got list"),
        ("target: m:f\nbench: {paper: p, tabel: t}\n", "bench: unknown key 'tabel'"),
    ],
)
def test_row_config_errors_name_file_and_key(tmp_path, text, message):
    path = _row_config(tmp_path, text)
    with pytest.raises(PaperSpecError) as err:
        resolve_config(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_row_config_takes_a_method_name_or_a_target(tmp_path):
    cfg = resolve_config(_row_config(tmp_path, "method: semantic_retrieval\nmodel: {levels: 3}\n"))
    assert cfg["method"] == "semantic_retrieval"
    with pytest.raises(
        PaperSpecError, match=r"unknown method 'gordo'; registered: .*semantic_retrieval"
    ):
        resolve_config(_row_config(tmp_path, "method: gordo\n"))
    assert resolve_config(_row_config(tmp_path, "target: m:f\n"), ["x.y=1"]) == {
        "target": "m:f",
        "x": {"y": 1},
    }


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(bogus=1), "top level: unknown key 'bogus'"),
        (lambda d: d.update(schema=2), "schema: must be 1, got 2"),
        (
            lambda d: d["tables"]["t1"]["metrics"]["mean"].update(tolerance=-1),
            "tables.t1.metrics.mean.tolerance: must be >= 0",
        ),
        (
            lambda d: d["tables"]["t1"]["rows"]["a"].update(configs={"weird": "a.scenes.yaml"}),
            "tables.t1.rows.a.configs.key 'weird': must be 'scenes', 'ci' or 'paper'",
        ),
        (
            lambda d: d["figures"]["fig1"].update(table="t9"),
            "figures.fig1.table: unknown table 't9'",
        ),
        (
            lambda d: d["tables"]["t1"]["rows"]["b"]["reported_std"].update(max=True),
            "tables.t1.rows.b.reported_std.max: must be a number, got True",
        ),
    ],
)
def test_paper_errors_name_file_and_key_path(toy, edit, message):
    path = toy / "toypaper" / "paper.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(PaperSpecError) as err:
        load_paper(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_a_non_mapping_file_is_refused():
    with pytest.raises(ValueError, match="top level: must be a mapping, got list"):
        validate(PaperSpec, [1, 2])
    with pytest.raises(ValueError, match="top level: must be a mapping"):
        validate(RowConfigSpec, "target: m:f")


def test_committed_json_schema_is_the_models():
    """The docs' JSON Schema files are generated; regenerate them with
    ``python -m capbench.bench.schemas`` after changing a model."""
    for name, schema in json_schemas().items():
        committed = (JSON_SCHEMA_DIR / name).read_text()
        assert committed == schema_text(schema), f"{name} is stale"
    row = json.loads((JSON_SCHEMA_DIR / "row_config.schema.json").read_text())
    assert row["oneOf"] == [{"required": ["target"]}, {"required": ["method"]}]
    record = json.loads((JSON_SCHEMA_DIR / "run_record.schema.json").read_text())
    assert "metrics" in record["required"] and "schema" in record["properties"]


def test_a_row_config_missing_a_required_section_names_it(tmp_path):
    """It used to be ``TypeError: SemanticRetrievalRow.__init__() missing 1 required
    keyword-only argument: 'row'``, with no file named, when the row started."""
    from capbench.bench.config import check_row_entry

    path = _row_config(tmp_path, "method: semantic_retrieval\nmodel: {levels: 3}\n")
    with pytest.raises(PaperSpecError) as err:
        check_row_entry(path, resolve_config(path))
    assert str(err.value) == f"{path}: gordo2017 row config: missing key(s) row"
