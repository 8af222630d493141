"""Shared reader helpers: every error names the file, the record and what was expected."""

from __future__ import annotations

import pytest

from capbench.data.errors import DatasetFormatError
from capbench.data.sources._common import (
    ReadResult,
    keep_image,
    load_json,
    read_lines,
    require_key,
)


def test_load_json_names_the_file_on_bad_json(tmp_path):
    bad = tmp_path / "captions.json"
    bad.write_text('{"images": [1, 2,,]}')
    with pytest.raises(DatasetFormatError) as err:
        load_json(bad)
    assert str(bad) in str(err.value)
    assert "not valid JSON" in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DatasetFormatError, match="missing JSON file"):
        load_json(tmp_path / "absent.json")


def test_require_key_names_record(tmp_path):
    path = tmp_path / "a.json"
    with pytest.raises(DatasetFormatError) as err:
        require_key({"id": 3}, "caption", path, record=3)
    msg = str(err.value)
    assert str(path) in msg and "record 3" in msg and "'caption'" in msg


def test_read_lines_strips_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"000017  1\r\n\r\n000023 -1\r\n")
    assert read_lines(path) == ["000017  1", "000023 -1"]


def test_keep_image_raises_by_default_and_counts_when_allowed(tmp_path):
    ann = tmp_path / "ann.json"
    present = tmp_path / "a.jpg"
    present.write_bytes(b"x")
    result = ReadResult()
    assert keep_image(result, present, "a", ann, allow_missing_images=False)
    with pytest.raises(DatasetFormatError, match="image listed but absent"):
        keep_image(result, tmp_path / "b.jpg", "b", ann, allow_missing_images=False)
    assert not keep_image(result, tmp_path / "b.jpg", "b", ann, allow_missing_images=True)
    assert not keep_image(result, tmp_path / "c.jpg", "c", ann, allow_missing_images=True)
    assert result.missing_images == 2


def test_file_listing_answers_like_the_file_system(tmp_path):
    """One listing per folder gives the same answers as a stat per file (folders are not
    files, an absent folder holds nothing), and keep_image uses it when given."""
    from capbench.data.sources._common import FileListing

    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.jpg").write_bytes(b"x")
    (tmp_path / "imgs" / "sub.jpg").mkdir()
    listing = FileListing()
    for path in ("imgs/a.jpg", "imgs/b.jpg", "imgs/sub.jpg", "absent/a.jpg"):
        assert listing.is_file(tmp_path / path) == (tmp_path / path).is_file(), path
    assert listing.has(str(tmp_path / "imgs"), "a.jpg")
    result = ReadResult()
    ann = tmp_path / "ann.json"
    assert keep_image(result, tmp_path / "imgs" / "a.jpg", "a", ann, False, listing)
    assert not keep_image(result, tmp_path / "imgs" / "b.jpg", "b", ann, True, listing)
    assert result.missing_images == 1
    # a file the listing does not hold is checked on disk: keep_image answers as a stat would
    (tmp_path / "imgs" / "c.jpg").write_bytes(b"x")
    assert not listing.is_file(tmp_path / "imgs" / "c.jpg")
    assert keep_image(result, tmp_path / "imgs" / "c.jpg", "c", ann, False, listing)


def test_latin1_text_is_an_error_naming_file_and_line(tmp_path):
    """Latin-1 bytes are not decoded into replacement characters: the error names the file,
    the line and the bytes."""
    path = tmp_path / "Flickr8k.token.txt"
    path.write_bytes("a.jpg#0\tA caf\u00e9 .\nb.jpg#0\tA na\u00efve dog .\n".encode("latin-1"))
    with pytest.raises(DatasetFormatError) as err:
        read_lines(path)
    assert err.value.path == str(path) and err.value.record == "line 1"
    assert "not UTF-8" in str(err.value) and "e9" in str(err.value)


def test_latin1_json_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "captions_val2014.json"
    path.write_bytes('{"annotations": [\n{"caption": "A caf\u00e9."}]}'.encode("latin-1"))
    with pytest.raises(DatasetFormatError) as err:
        load_json(path)
    assert err.value.path == str(path) and err.value.record == "line 2"
    assert "not UTF-8" in str(err.value)


def test_byte_order_mark_is_not_part_of_the_first_id(tmp_path):
    """A UTF-8 BOM (Windows editors write one) is an encoding mark, not text of the first line."""
    lines = tmp_path / "trainval.txt"
    lines.write_bytes(b"\xef\xbb\xbf000005\r\n000007\r\n")
    assert read_lines(lines) == ["000005", "000007"]
    doc = tmp_path / "a.json"
    doc.write_bytes(b'\xef\xbb\xbf{"id": 1}')
    assert load_json(doc) == {"id": 1}
