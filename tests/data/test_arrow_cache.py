"""The Arrow cache: exact round trip of nested region lists, a hit never parses JSON, and a
changed source file invalidates its entry."""

from __future__ import annotations

import json
import os

import pytest

from capbench.data import Region, arrow_cache, read
from capbench.data.writers import write
from capbench.paths import cache_root


def _region_file(tmp_path, n_images: int = 3):
    rows = [
        {
            "id": i,
            "regions": [
                {"region_id": 100 * i + j, "width": 82 + j, "height": 139, "image_id": i,
                 "phrase": f"the clock is green in colour {j} ", "y": 57, "x": 421 - j}
                for j in range(i)  # the first image has no regions at all
            ],
        }
        for i in range(n_images)
    ]  # fmt: skip
    path = tmp_path / "region_descriptions.json"
    path.write_text(json.dumps(rows))
    return path, rows


def test_nested_regions_round_trip_exactly(tmp_path):
    path, rows = _region_file(tmp_path)
    built = arrow_cache.load_json_list(path)
    cached = arrow_cache.load_json_list(path)
    assert built.to_pylist() == rows
    assert cached.to_pylist() == rows
    assert isinstance(cached.to_pylist()[2]["regions"][0]["x"], int)
    (entry,) = (cache_root() / "arrow").iterdir()
    assert entry == arrow_cache.cache_file_for(path)


def _forbid_parsing(monkeypatch, forbidden: set[str]) -> None:
    """Make reading the given source files fail (readers read every text file through
    ``_common.read_text``)."""
    from capbench.data.sources import _common

    real_read = _common.read_text

    def guarded(path, *args, **kwargs):
        if str(path) in forbidden:
            raise AssertionError(f"{path} was parsed on a cache hit")
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(_common, "read_text", guarded)


def test_hit_does_not_parse_json(tmp_path, monkeypatch):
    path, rows = _region_file(tmp_path)
    arrow_cache.load_json_list(path)
    _forbid_parsing(monkeypatch, {str(path)})
    assert arrow_cache.load_json_list(path).to_pylist() == rows
    # the guard is real: without the cache the same call fails
    with pytest.raises(AssertionError, match="parsed on a cache hit"):
        arrow_cache.load_json_list(path, use_cache=False)


def test_changed_file_invalidates(tmp_path):
    path, rows = _region_file(tmp_path)
    arrow_cache.load_json_list(path)
    old_file = arrow_cache.cache_file_for(path)
    rows[2]["regions"][1]["phrase"] = "the clock is red in colour 1 "  # same size
    path.write_text(json.dumps(rows))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # coarse-mtime filesystems
    assert arrow_cache.cache_file_for(path) != old_file
    assert arrow_cache.load_json_list(path).to_pylist() == rows
    assert not old_file.exists()  # the stale entry is removed when the new one is stored


def test_use_cache_false_returns_parsed_json(tmp_path):
    path, rows = _region_file(tmp_path)
    assert arrow_cache.load_json_list(path, use_cache=False) == rows
    assert not (cache_root() / "arrow").exists()


def test_visual_genome_second_read_parses_no_json(tmp_path, make_items, monkeypatch):
    specs = [
        dict(image_id=str(i), split="train", regions=[Region(i, 2, 3, 4, f"phrase {i}")],
             meta={"objects": [{"x": 1, "y": 2, "w": 3, "h": 4, "names": ["a"], "synsets": []}]})
        for i in range(3)
    ]  # fmt: skip
    root = write("visual_genome", tmp_path, make_items(specs))
    first = read("visual_genome", root)
    assert len(list((cache_root() / "arrow").iterdir())) == 3  # image_data, regions, objects

    sources = {
        str(root / f) for f in ("image_data.json", "region_descriptions.json", "objects.json")
    }
    _forbid_parsing(monkeypatch, sources)
    assert read("visual_genome", root) == first
    with pytest.raises(AssertionError, match="parsed on a cache hit"):
        read("visual_genome", root, use_cache=False)


def test_non_list_json_is_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}')
    with pytest.raises(Exception, match="JSON list"):
        arrow_cache.load_json_list(path)


def test_rows_arrow_cannot_type_are_not_cached(tmp_path):
    """One key holding a list in one entry and a string in another: parse every time, no crash."""
    path = tmp_path / "objects.json"
    rows = [{"image_id": 1, "name": ["tree", "oak"]}, {"image_id": 2, "name": "clock"}]
    path.write_text(json.dumps(rows))
    assert arrow_cache.load_json_list(path) == rows
    assert not (cache_root() / "arrow").exists()


def test_visual_genome_regions_are_built_on_first_use(tmp_path, make_items):
    """A read that never looks at regions builds none; a use builds them all, equal to the
    regions written, on the parsing read and the cached one alike."""
    from capbench.data.records import LazyRegions

    specs = [
        dict(image_id=str(i), split="train",
             regions=[Region(i, 2, 3, 4, f"phrase {i}"), Region(0, 0, 5, 5, "sky")])
        for i in range(1, 4)
    ]  # fmt: skip
    root = write("visual_genome", tmp_path, make_items(specs))
    for _ in range(2):  # parse (and cache), then from the cache
        records = read("visual_genome", root)
        assert all(type(r.__dict__["regions"]) is LazyRegions for r in records)
        by_id = {r.image_id: r.regions for r in records}
        assert by_id == {s["image_id"]: s["regions"] for s in specs}


def _truncate(entry):
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])


def _empty(entry):
    entry.write_bytes(b"")


def _garbage(entry):
    entry.write_bytes(b"not an arrow file at all" * 40)


@pytest.mark.parametrize("damage", [_truncate, _empty, _garbage])
def test_damaged_cache_entry_is_rebuilt(tmp_path, caplog, damage):
    path, rows = _region_file(tmp_path)
    arrow_cache.load_json_list(path)
    entry = arrow_cache.cache_file_for(path)
    damage(entry)
    assert arrow_cache.load_json_list(path).to_pylist() == rows
    assert f"damaged cache entry {entry}" in caplog.text
    caplog.clear()
    assert arrow_cache.load_json_list(path).to_pylist() == rows  # rebuilt: a clean hit again
    assert "damaged" not in caplog.text


def test_unwritable_cache_folder_reads_without_the_cache(tmp_path, monkeypatch, caplog, make_items):
    """CAPBENCH_CACHE naming a file (or a read-only folder): a warning naming it, no traceback."""
    not_a_folder = tmp_path / "cache_is_a_file"
    not_a_folder.write_text("")
    monkeypatch.setenv("CAPBENCH_CACHE", str(not_a_folder))
    path, rows = _region_file(tmp_path)
    assert arrow_cache.load_json_list(path) == rows
    assert f"cannot write the Arrow cache under {not_a_folder / 'arrow'}" in caplog.text
    specs = [dict(image_id="1", split="train", regions=[Region(1, 2, 3, 4, "a red kite")])]
    root = write("visual_genome", tmp_path / "vg", make_items(specs))
    (record,) = read("visual_genome", root)
    assert record.regions == [Region(1, 2, 3, 4, "a red kite")]
