"""A damaged cache entry is a miss (deleted with a warning naming it, then recomputed), not a
failed row: ``capbench.cache_entry.read_cached`` and the caches that read through it."""

from __future__ import annotations

import json

import pytest

from capbench.cache_entry import json_object, read_cached


def test_a_missing_file_is_a_quiet_miss(tmp_path, caplog):
    present = tmp_path / "a.json"
    present.write_text("{}")
    assert read_cached((present, tmp_path / "b.json"), lambda: 1 / 0) is None
    assert present.is_file() and caplog.text == ""


def test_a_readable_entry_is_returned(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"x": 1}))
    assert read_cached(path, lambda: json_object(path)) == {"x": 1}


@pytest.mark.parametrize("content", ['{"x": 1', "[1, 2]", "\x00\x01"], ids=["cut", "list", "bytes"])
def test_a_damaged_entry_is_deleted_whole_and_named(tmp_path, caplog, content):
    path, partner = tmp_path / "a.json", tmp_path / "a.npz"
    path.write_text(content)
    partner.write_bytes(b"fine")
    assert read_cached((path, partner), lambda: json_object(path)) is None
    assert not path.exists() and not partner.exists()  # the entry is written again as one
    assert f"damaged cache entry {path}, {partner}" in caplog.text


def test_a_damaged_tfidf_entry_is_refitted(tmp_path, caplog):
    from capbench.data.records import CaptionedImage, Region
    from capbench.data.tfidf import cached_tfidf

    docs = ["a red circle", "a blue square", "a green triangle"]
    recs = [
        CaptionedImage(str(i), f"{i}.jpg", "train", regions=[Region(0, 0, 1, 1, d)])
        for i, d in enumerate(docs)
    ]
    model, x = cached_tfidf(recs, recs, "regions", tmp_path)
    for suffix in ("npz", "joblib"):
        (entry,) = tmp_path.glob(f"tfidf-*.{suffix}")
        entry.write_bytes(entry.read_bytes()[:20])
        again, x2 = cached_tfidf(recs, recs, "regions", tmp_path)
        assert "damaged cache entry" in caplog.text and str(entry) in caplog.text
        assert again.vocabulary == model.vocabulary and (x2 != x).nnz == 0
        assert entry.stat().st_size > 20  # written again
        caplog.clear()


def test_a_damaged_cached_vg_split_is_made_again(tmp_path, caplog):
    from capbench.data.sources.visual_genome import cached_split_file, load_or_make_split

    first = load_or_make_split(tmp_path, list(range(1, 21)), 0)
    saved = cached_split_file(tmp_path, 0)
    saved.write_text(saved.read_text()[:30])
    assert load_or_make_split(tmp_path, list(range(1, 21)), 0) == first
    assert f"damaged cache entry {saved}" in caplog.text
    assert json_object(saved)["seed"] == 0
