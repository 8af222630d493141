"""paper.yaml validation, config inheritance, overrides and the config hash."""

from __future__ import annotations

import pytest
import yaml

from capbench.bench.catalog import Catalog
from capbench.bench.config import config_hash, deep_merge, parse_overrides, resolve_config
from capbench.bench.paper import PaperSpecError, load_paper


def test_toy_paper_loads_with_defaults(toy):
    paper = load_paper(toy / "toypaper")
    t1 = paper.table("t1")
    assert list(t1.rows) == ["a", "b", "c"]
    assert t1.rows["a"].reported == {"mean": 2.0, "max": None}  # null stays unknown
    assert t1.rows["b"].reported_std == {"mean": 0.3}
    assert t1.rows["c"].pending.startswith("needs")
    # default config names <row>.<profile>.yaml are picked up; explicit ones win
    assert t1.rows["a"].configs["scenes"].name == "a.scenes.yaml"
    assert paper.table("t2").rows["a2"].configs == {"scenes": toy / "toypaper" / "a.scenes.yaml"}
    assert t1.metrics["max"].higher_is_better is False
    assert paper.table("t2").metrics["mean"].scale == 100


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["tables"]["t1"]["rows"]["a"]["reported"].update(nope=1.0),
            "reported.nope: not a metric",
        ),
        (
            lambda d: d["tables"]["t1"]["metrics"]["mean"].pop("tolerance_why"),
            "tolerance_why is required",
        ),
        (
            lambda d: d["tables"]["t1"]["rows"]["a"]["reported"].update(mean="2.0"),
            "must be a number",
        ),
        (
            lambda d: d["tables"]["t1"]["rows"]["a"].update(configs={"scenes": "missing.yaml"}),
            "does not exist",
        ),
    ],
)
def test_malformed_paper_yaml_names_file_and_key(toy, edit, message):
    path = toy / "toypaper" / "paper.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(PaperSpecError) as err:
        load_paper(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_deep_merge_and_overrides():
    base = {"model": {"a": 1, "b": {"c": 2}}, "data": {"values": [1, 2]}}
    over = {"model": {"b": {"d": 3}}, "data": {"values": [9]}}
    assert deep_merge(base, over) == {
        "model": {"a": 1, "b": {"c": 2, "d": 3}},
        "data": {"values": [9]},
    }
    assert base["model"]["b"] == {"c": 2}  # inputs untouched
    # an empty mapping clears (a Flickr layer drops a COCO base's reader options)
    assert deep_merge(base, {"model": {"b": {}}})["model"] == {"a": 1, "b": {}}
    assert parse_overrides(["model.b.c=0.5", "trainer.max_steps=10", "x=[1, 2]"]) == {
        "model": {"b": {"c": 0.5}},
        "trainer": {"max_steps": 10},
        "x": [1, 2],
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["model.margin"])


def test_resolve_config_chains_bases(toy):
    cfg = resolve_config(toy / "toypaper" / "a.paper.yaml", ["model.noise=0.25"])
    # a.paper -> base_paper -> base_scenes: target from the root base, values from the leaf
    assert cfg == {
        "target": "toy_target:run",
        "model": {"noise": 0.25},
        "trainer": {"crash_once": False},
        "data": {"values": [1.5, 2.5, 2.0]},
    }


def test_circular_base_is_an_error(tmp_path):
    (tmp_path / "x.yaml").write_text("base: y.yaml\ntarget: m:f\n")
    (tmp_path / "y.yaml").write_text("base: x.yaml\n")
    with pytest.raises(PaperSpecError, match="circular base"):
        resolve_config(tmp_path / "x.yaml")


def test_config_hash_is_stable_and_ignores_bench_section():
    a = {"target": "m:f", "model": {"x": 1, "y": [1, 2]}}
    b = {"model": {"y": [1, 2], "x": 1}, "target": "m:f", "bench": {"label": "shown only"}}
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash({**a, "model": {"x": 2, "y": [1, 2]}})
    assert len(config_hash(a)) == 64


def test_catalog_finds_user_rows_and_rejects_unknown_rows(toy):
    cat = Catalog.discover([toy], builtin=False)
    rows = [r.name for r in cat.rows("toypaper")]
    assert rows == [
        "toypaper/t1/a",
        "toypaper/t1/b",
        "toypaper/t1/c",
        "toypaper/t1/mine",
        "toypaper/t2/a2",
    ]
    assert cat.paper("toypaper").table("t1").rows["mine"].user_added
    with pytest.raises(KeyError, match="zzz"):
        list(cat.rows("toypaper", rows=["a", "zzz"]))
    with pytest.raises(KeyError, match="unknown paper"):
        cat.paper("nope")
