"""Every registered writer gets a fixture that its reader reads, and a broken variant that
``capbench data check`` rejects naming the file. Parametrized over the registry itself, so a
newly registered format is tested the moment it lands."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from capbench import cli
from capbench.data import read
from capbench.data.fixtures import PHOTOS, _load, fixture_names, write_broken_fixture, write_fixture
from capbench.data.writers import names

# Formats whose on-disk layout holds no sentence captions, and formats with region phrases.
WITHOUT_CAPTIONS = {"voc2007", "visual_genome", "imagenet"}  # labels only
WITH_REGIONS = {"visual_genome"}
# Formats whose fixture stores a real PNG (alpha kept) next to the JPEGs.
WITH_PNG = {"graded_retrieval"}


def test_fixture_names_are_the_writers():
    assert fixture_names() == names()
    assert {"cub", "flowers", "voc2007", "graded_retrieval"} <= set(names())


def test_sources_include_grayscale_and_rgba():
    modes = {_load(p.key).mode for p in PHOTOS}
    assert {"L", "RGB", "RGBA"} <= modes


@pytest.mark.parametrize("name", names())
def test_fixture_is_read_back(tmp_path, name):
    for photo in PHOTOS:  # decode the bundled photos first (once per process, ~1 s)
        _load(photo.key)
    start = time.perf_counter()
    root = write_fixture(name, tmp_path / name)
    assert time.perf_counter() - start < 2.0
    records = read(name, root)
    assert len(records) >= 10
    assert len({r.image_id for r in records}) == len(records)
    if name not in WITHOUT_CAPTIONS:
        assert all(r.captions for r in records)
        assert any("orange space suit" in c for r in records for c in r.captions)
    if name in WITH_REGIONS:
        assert all(r.regions for r in records)
        assert any(g.phrase == "a white rocket" for r in records for g in r.regions)
    formats = set()
    for rec in records:
        with Image.open(rec.image_path) as im:
            im.load()
            formats.add(im.format)
    assert "JPEG" in formats
    if name in WITH_PNG:
        assert "PNG" in formats


@pytest.mark.parametrize("name", names())
def test_broken_fixture_fails_check_naming_the_file(tmp_path, name, capsys):
    root, bad = write_broken_fixture(name, tmp_path / name)
    assert cli.main(["data", "check", name, str(root)]) == 1
    out = capsys.readouterr()
    assert str(bad) in out.err
    assert cli.main(["data", "check", name, str(root), "--json"]) == 1
    assert str(bad) in capsys.readouterr().out


def test_console_script_checks_good_and_broken(tmp_path):
    script = Path(sys.executable).with_name("capbench")
    good = write_fixture("cub", tmp_path / "cub")
    done = subprocess.run(
        [str(script), "data", "check", "cub", str(good)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "total" in done.stdout and done.stdout.rstrip().endswith("OK")
    broken, bad_file = write_broken_fixture("cub", tmp_path / "b")
    bad = subprocess.run(
        [str(script), "data", "check", "cub", str(broken)], capture_output=True, text=True
    )
    assert bad.returncode == 1 and str(bad_file) in bad.stderr and "found 9" in bad.stderr
