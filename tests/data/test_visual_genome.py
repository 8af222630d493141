"""Visual Genome: round trip of regions/objects/splits, the old key variants (``id``, ``name``),
VG_100K_2, index alignment, our seeded split (kept in the cache), and repeated regions."""

from __future__ import annotations

import json

import pytest

from capbench.data import DatasetFormatError, Region, read
from capbench.data.sources.visual_genome import (
    cached_split_file,
    load_or_make_split,
    make_vg_split,
)
from capbench.data.writers import break_dataset, write


def _objects(i: int) -> list[dict]:
    return [
        {"x": i, "y": 2, "w": 30, "h": 40, "names": ["clock"], "synsets": ["clock.n.01"]},
        {"x": 0, "y": 0, "w": 5, "h": 6, "names": ["tall tree", "tree"], "synsets": []},
    ]


def _specs() -> list[dict]:
    splits = ["train", "val", "test", "train", "train"]
    return [
        dict(image_id=str(i), split=s, meta={"vg_id": 10 + i, "objects": _objects(i)},
             regions=[Region(421, 57, 82, 139, f"the clock is green {i}"),
                      Region(1.5, 2.25, 3, 4, f"a man on a bike {i}  ")][: 2 - i % 2 + (i == 4)],
             mode="RGBA" if i == 3 else "RGB")
        for i, s in enumerate(splits)
    ]  # fmt: skip


@pytest.fixture
def vg(tmp_path, make_items):
    items = make_items(_specs())
    return write("visual_genome", tmp_path / "vg", items), items


def test_round_trip(vg):
    root, items = vg
    records = read("visual_genome", root)
    assert [r.image_id for r in records] == ["10", "11", "12", "13", "14"]
    assert [r.split for r in records] == [i.record.split for i in items]  # seed-0 split file
    for rec, item in zip(records, items):
        want = [Region(g.x, g.y, g.w, g.h, g.phrase.strip()) for g in item.record.regions]
        assert rec.regions == want
        assert rec.captions == [] and rec.source == "visual_genome"
        assert rec.meta["objects"] == item.record.meta["objects"]
        assert rec.meta["vg_id"] == int(rec.image_id)
        assert len(rec.meta["region_ids"]) == len(want)
    assert records[1].image_path == str(root / "VG_100K_2" / "11.jpg")
    assert records[2].image_path == str(root / "VG_100K" / "12.jpg")
    assert [r.image_id for r in read("visual_genome", root, "train")] == ["10", "13", "14"]


def test_cached_and_uncached_reads_agree(vg):
    root, _ = vg
    plain = read("visual_genome", root, use_cache=False)
    first = read("visual_genome", root)  # parses, builds the cache
    second = read("visual_genome", root)  # from the Arrow cache
    assert plain == first == second


def test_legacy_id_and_name_keys(tmp_path, make_items):
    root = write("visual_genome", tmp_path / "old", make_items(_specs()), legacy_keys=True)
    entry = json.loads((root / "image_data.json").read_text())[0]
    assert "id" in entry and "image_id" not in entry
    objects = json.loads((root / "objects.json").read_text())[0]["objects"]
    assert objects[0]["name"] == "clock" and "names" not in objects[0]
    new = write("visual_genome", tmp_path / "new", make_items(_specs()))
    strip = lambda recs: [(r.image_id, r.split, r.regions, r.meta["objects"]) for r in recs]  # noqa: E731
    for use_cache in (False, True, True):
        assert strip(read("visual_genome", root, use_cache=use_cache)) == strip(
            read("visual_genome", new)
        )


def test_mixed_name_and_names_in_one_file(vg):
    """Arrow gives every object both keys (one None): the reader must still pick the real one."""
    root, _ = vg
    path = root / "objects.json"
    data = json.loads(path.read_text())
    data[0]["objects"][0]["name"] = data[0]["objects"][0].pop("names")[0]
    path.write_text(json.dumps(data))
    for _ in range(2):  # parse, then cache
        first = read("visual_genome", root)[0]
        assert [o["names"] for o in first.meta["objects"]] == [["clock"], ["tall tree", "tree"]]


def test_image_found_in_the_other_folder(vg):
    root, _ = vg
    (root / "VG_100K_2" / "11.jpg").rename(root / "VG_100K" / "11.jpg")
    assert read("visual_genome", root)[1].image_path == str(root / "VG_100K" / "11.jpg")


def test_misaligned_lists_are_errors(vg):
    root, _ = vg
    path = root / "region_descriptions.json"
    data = json.loads(path.read_text())
    data[1], data[2] = data[2], data[1]
    path.write_text(json.dumps(data))
    with pytest.raises(
        DatasetFormatError, match=r"id 12 at index 1 but image_data\.json has 11"
    ) as err:
        read("visual_genome", root)
    assert err.value.path == str(path)
    path.write_text(json.dumps(data[:3]))
    with pytest.raises(DatasetFormatError, match=r"3 entries but image_data\.json has 5"):
        read("visual_genome", root)


def test_objects_file_is_optional(vg):
    root, _ = vg
    (root / "objects.json").unlink()
    assert all("objects" not in r.meta for r in read("visual_genome", root))


def test_breaker_names_the_file(vg):
    root, _ = vg
    read("visual_genome", root)  # a cache from the good file must not hide the damage
    broken = break_dataset("visual_genome", root)
    with pytest.raises(DatasetFormatError, match="missing key 'phrase'") as err:
        read("visual_genome", root)
    assert err.value.path == str(broken)


def test_missing_images_counted(vg):
    root, _ = vg
    (root / "VG_100K" / "12.jpg").unlink()
    with pytest.raises(DatasetFormatError, match="image listed but absent") as err:
        read("visual_genome", root)
    assert err.value.path == str(root / "image_data.json") and err.value.record == 12
    result = read("visual_genome", root, allow_missing_images=True)
    assert len(result) == 4 and result.missing_images == 1


def test_split_file_created_once_in_the_cache_and_deterministic(vg, tmp_path, make_items):
    """A dataset without its own split file gets one made once and kept in the cache: reading
    never writes into the dataset folder."""
    root, _ = vg
    other = write("visual_genome", tmp_path / "other", make_items(_specs()))
    for r in (root, other):
        (r / "capbench_split_seed0.json").unlink()
    before = sorted(p.name for p in root.iterdir())
    first = [x.split for x in read("visual_genome", root)]
    saved_path = cached_split_file(root, 0)
    saved = saved_path.read_text()
    assert [x.split for x in read("visual_genome", root)] == first
    assert [x.split for x in read("visual_genome", other)] == first  # same ids, same seed
    assert saved_path.read_text() == saved
    read("visual_genome", root, split_seed=3)
    assert cached_split_file(root, 3).is_file()
    assert not list(saved_path.parent.glob("*.tmp"))
    assert sorted(p.name for p in root.iterdir()) == before


def test_make_vg_split_sizes():
    real = make_vg_split(range(1, 108_078), seed=0)
    # the paper's 80k / 10k / 10k (section 6.1); the rest of the release is unused, not trained on
    assert [len(real[s]) for s in ("train", "val", "test", "unused")] == [
        80_000,
        10_000,
        10_000,
        8_077,
    ]
    assert len({i for part in real.values() for i in part}) == 108_077
    small = make_vg_split(range(50), seed=1)
    assert [len(small[s]) for s in ("train", "val", "test")] == [40, 5, 5]
    assert sorted(small["train"] + small["val"] + small["test"]) == list(range(50))
    # the split depends on the id set and seed, not on the order ids come in
    assert make_vg_split(reversed(range(50)), seed=1) == small
    assert make_vg_split(range(50), seed=2) != small
    with pytest.raises(ValueError, match="summing to 1"):
        make_vg_split(range(5), fractions=(0.5, 0.5, 0.5))


def test_stale_split_file_is_an_error(tmp_path):
    path = tmp_path / "capbench_split_seed0.json"
    path.write_text(json.dumps({"seed": 0, "splits": {"train": [1, 2], "val": [], "test": []}}))
    assert load_or_make_split(tmp_path, [1, 2], 0) == {1: "train", 2: "train"}
    with pytest.raises(DatasetFormatError, match="made for another image set") as err:
        load_or_make_split(tmp_path, [1, 2, 3], 0)
    assert err.value.path == str(path)


def test_unknown_split(vg):
    root, _ = vg
    with pytest.raises(ValueError, match="valid: train, val, test"):
        read("visual_genome", root, "trainval")


def test_exact_repeat_of_a_region_is_dropped_and_counted_on_every_read(vg, caplog):
    """A region copied twice into its image is one region, on the parsing read and the cached
    one alike, and every read says how many were dropped."""
    root, _ = vg
    expected = read("visual_genome", root, use_cache=False)
    path = root / "region_descriptions.json"
    data = json.loads(path.read_text())
    data[0]["regions"].append(dict(data[0]["regions"][1]))
    data[2]["regions"].insert(0, dict(data[2]["regions"][0]))
    path.write_text(json.dumps(data))
    repeated = f"{data[0]['regions'][1]['region_id']}, {data[2]['regions'][0]['region_id']}"
    for _ in range(2):  # parse (and cache), then from the cache
        caplog.clear()
        result = read("visual_genome", root)
        assert result == expected
        assert [r.meta["region_ids"] for r in result] == [r.meta["region_ids"] for r in expected]
        assert result.skipped["duplicate_region"] == 2
        assert "dropped 2 exact repeat(s) of a region" in caplog.text and repeated in caplog.text


def test_region_id_reused_for_another_region_is_an_error(vg):
    root, _ = vg
    path = root / "region_descriptions.json"
    data = json.loads(path.read_text())
    clash = dict(data[1]["regions"][0], phrase="a different phrase")
    data[3]["regions"].append(clash)
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match="region id given twice with different") as err:
        read("visual_genome", root)
    assert err.value.path == str(path)
    assert err.value.record == f"image 13 region {clash['region_id']}"
