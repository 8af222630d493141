"""Flickr8k and Flickr30k: both annotation modes agree, and the real files' pitfalls (phantom
``.jpg.1`` rows, dev -> val, the misspelled folder, flickr30k_images, images missing from the
Karpathy JSON) are handled."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from capbench.data import DatasetFormatError, read
from capbench.data.writers import break_dataset, write


def _specs() -> list[dict]:
    names = [
        "1000268201_693b08cb0e",
        "2513260012_03d33305cf",
        "1000092795",
        "3385593926_d3e9c21170",
    ]
    splits = ["train", "val", "test", "train"]
    return [
        dict(image_id=n, split=s, captions=[f"A dog {n[:4]} runs , take {k} ." for k in range(5)],
             mode="L" if i == 1 else "RGB")
        for i, (n, s) in enumerate(zip(names, splits))
    ]  # fmt: skip


def _summary(records) -> list[tuple]:
    return [(r.image_id, r.split, r.captions, r.image_path) for r in records]


@pytest.mark.parametrize("name", ["flickr8k", "flickr30k"])
def test_karpathy_and_original_round_trip_agree(tmp_path, make_items, name):
    items = make_items(_specs())
    root = write(name, tmp_path / name, items)
    karpathy = read(name, root, annotations="karpathy")
    original = read(name, root, annotations="original")
    expected = [(i.record.image_id, i.record.split, i.record.captions) for i in items]
    assert [(r.image_id, r.split, r.captions) for r in karpathy] == expected
    assert _summary(original) == _summary(karpathy)
    assert _summary(read(name, root)) == _summary(karpathy)  # auto prefers Karpathy's JSON
    assert all(r.source == name for r in karpathy)
    assert karpathy[0].meta["sentids"] == [0, 1, 2, 3, 4]
    assert [r.image_id for r in read(name, root, "val")] == ["2513260012_03d33305cf"]


def test_flickr8k_layout_phantom_rows_and_dev_split(tmp_path, make_items):
    root = write("flickr8k", tmp_path, make_items(_specs()))
    assert (root / "Flicker8k_Dataset" / "1000092795.jpg").is_file()  # the real misspelling
    assert (root / "Flickr_8k.devImages.txt").read_text() == "2513260012_03d33305cf.jpg\n"
    token = (root / "Flickr8k.token.txt").read_text()
    assert "2258277193_586949ec62.jpg.1#4\t" in token
    original = read("flickr8k", root, annotations="original")
    assert original.skipped["phantom_row"] == 5
    assert "2258277193_586949ec62" not in {r.image_id for r in original}
    clean = write("flickr8k", tmp_path / "clean", make_items(_specs()), phantom=False)
    assert read("flickr8k", clean, annotations="original").skipped["phantom_row"] == 0


def test_flickr8k_hand_written_original_files(tmp_path):
    """Real line format, independent of our writer: '#n' order, a phantom, an unsplit image."""
    (tmp_path / "Flicker8k_Dataset").mkdir()
    for stem in ("1000268201_693b08cb0e", "1001773457_577c3a7d70"):
        Image.new("RGB", (4, 4)).save(tmp_path / "Flicker8k_Dataset" / f"{stem}.jpg")
    lines = [f"1000268201_693b08cb0e.jpg#{k}\tA child climbs stairs {k} ." for k in (4, 3, 2, 1, 0)]
    lines += [f"2258277193_586949ec62.jpg.1#{k}\tphantom {k}" for k in range(5)]
    lines += [f"1001773457_577c3a7d70.jpg#{k}\tTwo dogs {k} .  " for k in range(5)]
    (tmp_path / "Flickr8k.token.txt").write_text("\r\n".join(lines) + "\r\n")
    (tmp_path / "Flickr_8k.trainImages.txt").write_text("")
    (tmp_path / "Flickr_8k.devImages.txt").write_text("")
    (tmp_path / "Flickr_8k.testImages.txt").write_text("1000268201_693b08cb0e.jpg\n")
    result = read("flickr8k", tmp_path)  # no Karpathy JSON: auto falls back to the originals
    assert [(r.image_id, r.split) for r in result] == [("1000268201_693b08cb0e", "test")]
    assert result[0].captions == [f"A child climbs stairs {k} ." for k in range(5)]
    assert result.skipped["phantom_row"] == 5 and result.skipped["not_in_split"] == 1


def test_malformed_token_line_names_file_and_line(tmp_path, make_items):
    root = write("flickr8k", tmp_path, make_items(_specs()))
    token = root / "Flickr8k.token.txt"
    token.write_text(token.read_text() + "no tab on this line\n")
    with pytest.raises(DatasetFormatError, match=r"line \d+ .*expected '<image>.jpg#<n>") as err:
        read("flickr8k", root, annotations="original")
    assert err.value.path == str(token)


def test_split_list_image_without_captions(tmp_path, make_items):
    root = write("flickr8k", tmp_path, make_items(_specs()))
    with (root / "Flickr_8k.testImages.txt").open("a") as fh:
        fh.write("999_nope.jpg\n")
    with pytest.raises(DatasetFormatError, match=r"no captions in Flickr8k\.token\.txt") as err:
        read("flickr8k", root, annotations="original")
    assert err.value.record == "999_nope.jpg"


def test_flickr30k_underscore_folder_and_images_missing_from_json(tmp_path, make_items):
    root = write("flickr30k", tmp_path, make_items(_specs()), image_dir="flickr30k_images")
    Image.new("RGB", (4, 4)).save(root / "flickr30k_images" / "5555.jpg")
    with (root / "results_20130124.token").open("a") as fh:
        fh.writelines(
            f"5555.jpg#{k}\tA jpg that Karpathy's JSON leaves out {k} .\n" for k in range(5)
        )
    original = read("flickr30k", root, annotations="original")
    assert len(original) == 4 and original.skipped["not_in_split"] == 1
    assert "/flickr30k_images/" in original[0].image_path
    assert len(read("flickr30k", root)) == 4


def test_flickr30k_original_needs_karpathy_split(tmp_path, make_items):
    root = write("flickr30k", tmp_path, make_items(_specs()))
    (root / "dataset_flickr30k.json").unlink()
    with pytest.raises(DatasetFormatError, match="has no split") as err:
        read("flickr30k", root)
    assert err.value.path == str(root / "dataset_flickr30k.json")


def test_wrong_caption_count_is_an_error(tmp_path, make_items):
    root = write("flickr8k", tmp_path, make_items(_specs()))
    path = root / "dataset_flickr8k.json"
    data = json.loads(path.read_text())
    data["images"][2]["sentences"].pop()
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match="expected 5 sentences, found 4") as err:
        read("flickr8k", root)
    assert err.value.record == "1000092795.jpg"


@pytest.mark.parametrize("name", ["flickr8k", "flickr30k"])
def test_breakers_name_the_file(tmp_path, make_items, name):
    root = write(name, tmp_path, make_items(_specs()))
    broken = break_dataset(name, root)
    with pytest.raises(DatasetFormatError) as err:
        read(name, root)
    assert str(broken) in str(err.value)


@pytest.mark.parametrize("name", ["flickr8k", "flickr30k"])
def test_missing_images_counted_when_allowed(tmp_path, make_items, name):
    root = write(name, tmp_path, make_items(_specs()))
    folder = "Flicker8k_Dataset" if name == "flickr8k" else "flickr30k-images"
    (root / folder / "1000092795.jpg").unlink()
    with pytest.raises(DatasetFormatError, match="image listed but absent"):
        read(name, root)
    for mode in ("karpathy", "original"):
        result = read(name, root, allow_missing_images=True, annotations=mode)
        assert len(result) == 3 and result.missing_images == 1


def test_bad_options(tmp_path, make_items):
    root = write("flickr8k", tmp_path, make_items(_specs()))
    with pytest.raises(ValueError, match="valid: train, val, test"):
        read("flickr8k", root, "dev")
    with pytest.raises(ValueError, match="auto, karpathy, original"):
        read("flickr8k", root, annotations="kaggle")
    with pytest.raises(ValueError, match="exactly 5"):
        write(
            "flickr8k",
            tmp_path / "x",
            make_items([dict(image_id="1", split="train", captions=["a"])]),
        )


def test_latin1_token_file_is_an_error_not_replacement_characters(tmp_path, make_items):
    root = write("flickr8k", tmp_path, make_items(_specs()))
    token = root / "Flickr8k.token.txt"
    lines = token.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].rstrip(" .") + " in a caf\u00e9 ."
    token.write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    with pytest.raises(DatasetFormatError, match=r"not UTF-8 text: byte\(s\) e9 at line 3") as err:
        read("flickr8k", root, annotations="original")
    assert err.value.path == str(token) and err.value.record == "line 3"
