"""Graded relevance benchmarks: our JSON layout (round trip, validation) and the original
rPascal / rImageNet ``MedianAnnot.mat`` layout, rebuilt here from the authors' scripts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from capbench.data import DatasetFormatError, read
from capbench.data.writers import break_dataset, write

QUERIES = ["q1", "q2"]
RELEVANCE = {"q1": {"r1": 3, "r2": 0, "r3": 1}, "q2": {"r3": 2}}


def _specs() -> list[dict]:
    ids = ["q1", "r1", "q2", "r2", "r3", "r4"]
    return [
        dict(image_id=i, split="", captions=[f"a photo of {i}"] if i != "r4" else [], mode=m)
        for i, m in zip(ids, ["RGB", "L", "RGBA", "RGB", "RGB", "RGB"])
    ]


def test_round_trip_record_for_record(tmp_path, make_items):
    items = make_items(_specs())
    root = write("graded_retrieval", tmp_path, items, queries=QUERIES, relevance=RELEVANCE)
    records = read("graded_retrieval", root)
    assert [r.image_id for r in records] == [i.record.image_id for i in items]
    for rec, item in zip(records, items):
        assert rec.split == ("query" if rec.image_id in QUERIES else "reference")
        assert rec.captions == item.record.captions
        assert rec.meta.get("relevance") == RELEVANCE.get(rec.image_id)
        with Image.open(rec.image_path) as im:
            assert (im.format, im.mode) == ("JPEG", "RGB")
    assert [r.image_id for r in read("graded_retrieval", root, "query")] == QUERIES
    assert len(read("graded_retrieval", root, "reference")) == 4
    # $CAPBENCH_DATA itself may be given: the reader looks in graded_retrieval/
    nested = write(
        "graded_retrieval",
        tmp_path / "d" / "graded_retrieval",
        items,
        queries=QUERIES,
        relevance=RELEVANCE,
    )
    assert len(read("graded_retrieval", nested.parent)) == 6


def _doc(root: Path) -> dict:
    return json.loads((root / "benchmark.json").read_text())


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["relevance"]["q1"].update(r1=7), "grade 7"),
        (lambda d: d["relevance"]["q1"].update(r1="2"), "must be an integer"),
        (lambda d: d["relevance"]["q1"].update(r1=True), "must be an integer"),
        (lambda d: d["relevance"]["q1"].update(zz=1), "'zz' is not a reference image"),
        (lambda d: d["relevance"]["q1"].update(q2=1), "'q2' is not a reference image"),
        (lambda d: d["relevance"].pop("q2"), "query has no 'relevance' entry"),
        (lambda d: d["queries"].append("nope"), "query is not in 'images'"),
        (lambda d: d.update(version=2), "unsupported version 2"),
        (lambda d: d.update(format="other"), "'format' must be"),
        (lambda d: d["images"][0].pop("file"), "missing key 'file'"),
    ],
)
def test_invalid_benchmark_json_names_file_and_record(tmp_path, make_items, mutate, expected):
    root = write(
        "graded_retrieval", tmp_path, make_items(_specs()), queries=QUERIES, relevance=RELEVANCE
    )
    doc = _doc(root)
    mutate(doc)
    (root / "benchmark.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetFormatError, match=expected) as err:
        read("graded_retrieval", root)
    assert str(root / "benchmark.json") in str(err.value)


def test_missing_image_raises_or_is_counted(tmp_path, make_items):
    root = write(
        "graded_retrieval", tmp_path, make_items(_specs()), queries=QUERIES, relevance=RELEVANCE
    )
    (root / "images" / "r4.jpg").unlink()
    with pytest.raises(DatasetFormatError, match="r4"):
        read("graded_retrieval", root)
    assert read("graded_retrieval", root, allow_missing_images=True).missing_images == 1


def test_writer_rejects_bad_grades(tmp_path, make_items):
    with pytest.raises(ValueError, match=r"grade 0\.\.3"):
        write(
            "graded_retrieval",
            tmp_path,
            make_items(_specs()),
            queries=QUERIES,
            relevance={"q1": {"r1": 4}, "q2": {}},
        )


def test_breaker_error_names_the_file(tmp_path, make_items):
    root = write(
        "graded_retrieval", tmp_path, make_items(_specs()), queries=QUERIES, relevance=RELEVANCE
    )
    bad = break_dataset("graded_retrieval", root)
    with pytest.raises(DatasetFormatError) as err:
        read("graded_retrieval", root)
    assert str(bad) in str(err.value)


def _median_annot(root: Path, cell_names: bool) -> None:
    """rPascal layout: Queries/, References/ (holding the queries too), per-query refNames and
    one medAnnot cell per query in sorted query order (eval_retrieval_copy2.m)."""
    queries = ["2008_000043.jpg", "2008_000194.jpg"]
    references = [
        "2008_000002.jpg",
        "2008_000003.jpg",
        "2008_000043.jpg",
        "2008_000194.jpg",
        "2008_000418.jpg",
    ]
    for folder, names in (("Queries", queries), ("References", references)):
        (root / folder).mkdir(parents=True)
        for name in names:
            Image.new("RGB", (8, 8)).save(root / folder / name)
    judged = {
        "2008_000043": (["2008_000002.jpg", "2008_000043.jpg", "2008_000418.jpg"], [3, 3, 1]),
        "2008_000194": (["2008_000003.jpg", "2008_000002.jpg"], [0, 2]),
    }
    (root / "Reference_Lists").mkdir()
    cells = np.empty((1, len(queries)), dtype=object)
    for i, (stem, (names, grades)) in enumerate(judged.items()):
        ref_names = (
            np.array(names, dtype=object) if cell_names else np.array(names)
        )  # cell vs char matrix
        scipy.io.savemat(
            root / "Reference_Lists" / f"{stem}_refs.mat", {"refNames": ref_names.reshape(-1, 1)}
        )
        cells[0, i] = np.array(grades, dtype=np.float64).reshape(1, -1)
    scipy.io.savemat(root / "MedianAnnot.mat", {"medAnnot": cells})


@pytest.mark.parametrize("cell_names", [False, True], ids=["rPascal-char-matrix", "rImageNet-cell"])
def test_median_annot_layout(tmp_path, cell_names):
    _median_annot(tmp_path, cell_names)
    records = read("graded_retrieval", tmp_path)
    queries = {r.image_id: r for r in records if r.split == "query"}
    refs = [r.image_id for r in records if r.split == "reference"]
    # the query itself is dropped from its own ranking and from the database
    assert queries["2008_000043"].meta["relevance"] == {"2008_000002": 3, "2008_000418": 1}
    assert queries["2008_000194"].meta["relevance"] == {"2008_000003": 0, "2008_000002": 2}
    assert refs == ["2008_000002", "2008_000003", "2008_000418"]
    assert Path(queries["2008_000043"].image_path).parent.name == "Queries"


def test_median_annot_length_mismatch(tmp_path):
    _median_annot(tmp_path, cell_names=False)
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0] = np.array([[3.0, 3.0]])
    cells[0, 1] = np.array([[0.0, 2.0]])
    scipy.io.savemat(tmp_path / "MedianAnnot.mat", {"medAnnot": cells})
    with pytest.raises(
        DatasetFormatError, match=r"2 grades but 2008_000043_refs\.mat lists 3"
    ) as err:
        read("graded_retrieval", tmp_path)
    assert "MedianAnnot.mat" in str(err.value)


def test_median_annot_missing_reference(tmp_path):
    _median_annot(tmp_path, cell_names=False)
    (tmp_path / "References" / "2008_000418.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"'2008_000418\.jpg' not in References/") as err:
        read("graded_retrieval", tmp_path)
    assert "2008_000043_refs.mat" in str(err.value) and "2008_000043" in str(err.value)
    result = read("graded_retrieval", tmp_path, allow_missing_images=True)
    assert result.missing_images == 1
    assert next(r for r in result if r.image_id == "2008_000043").meta["relevance"] == {
        "2008_000002": 3
    }
