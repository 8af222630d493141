"""``capbench data check|fixture|scenes``, data-card checksums and the dataset fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import types

import pytest

from capbench import cli
from capbench.data import checksums
from capbench.data.fingerprint import dataset_fingerprint
from capbench.data.fixtures import write_fixture


@pytest.fixture(scope="module")
def cub_root(tmp_path_factory):
    return write_fixture("cub", tmp_path_factory.mktemp("cub"))


def test_check_prints_per_split_counts(cub_root, capsys):
    assert cli.main(["data", "check", "cub", str(cub_root)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line and line.split()[0] in
            ("train", "val", "test", "total")}  # fmt: skip
    # the fixture: 4 classes of 3 photos, classes split train/train/val/test, 10 captions each
    assert rows == {
        "train": ["6", "60", "0", "2"],
        "val": ["3", "30", "0", "1"],
        "test": ["3", "30", "0", "1"],
        "total": ["12", "120", "0", "4"],
    }
    assert "skipped: none" in out and out.rstrip().endswith("OK")


def test_check_json_and_split_and_missing_images(cub_root, tmp_path, capsys):
    assert cli.main(["data", "check", "cub", str(cub_root), "--json", "--split", "trainval"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["splits"]["trainval"] == {
        "images": 9,
        "captions": 90,
        "regions": 0,
        "classes": 3,
    }
    root = write_fixture("cub", tmp_path / "cub")
    next((root / "CUB_200_2011" / "images").rglob("*.jpg")).unlink()
    assert cli.main(["data", "check", "cub", str(root)]) == 1
    assert "image listed but absent" in capsys.readouterr().err
    assert cli.main(["data", "check", "cub", str(root), "--allow-missing-images", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["skipped"] == {"missing_image": 1} and doc["splits"]["total"]["images"] == 11


def test_reader_options_are_passed_through(cub_root, tmp_path, capsys):
    root = write_fixture("graded_retrieval", tmp_path / "g")
    assert (
        cli.main(["data", "check", "graded_retrieval", str(root), "--layout", "median_annot"]) == 1
    )
    assert "MedianAnnot.mat" in capsys.readouterr().err
    assert cli.main(["data", "check", "graded_retrieval", str(root), "-o", "layout=capbench"]) == 0
    capsys.readouterr()
    assert cli.main(["data", "check", "cub", str(cub_root), "-o", "captions_per_image=5"]) == 1
    assert "expected exactly 5 caption lines, found 10" in capsys.readouterr().err
    assert cli.main(["data", "check", "cub", str(cub_root), "--splits", "karpathy"]) == 1
    assert "splits" in capsys.readouterr().err  # an option this reader does not take


def test_unknown_reader_exits_nonzero(tmp_path, capsys):
    assert cli.main(["data", "check", "no_such_format", str(tmp_path)]) == 1
    assert "unknown dataset reader 'no_such_format'" in capsys.readouterr().err


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_checksums_from_the_card(cub_root, tmp_path, monkeypatch, capsys):
    images_txt = cub_root / "CUB_200_2011" / "images.txt"
    classes_txt = cub_root / "CUB_200_2011" / "classes.txt"
    card = tmp_path / "cards" / "cub.md"
    card.parent.mkdir()
    card.write_text(
        "# CUB\n\n```sha256\n# sha256sum output\n"
        f"{_sha(images_txt)}  CUB_200_2011/images.txt\n"
        f"{'0' * 64}  CUB_200_2011/classes.txt\n"
        f"{'a' * 64}  CUB_200_2011/attributes/attributes.txt\n```\n"
    )
    monkeypatch.setattr(checksums, "cards_dir", lambda: card.parent)
    assert cli.main(["data", "check", "cub", str(cub_root)]) == 1  # classes.txt does not match
    out = capsys.readouterr().out
    assert (
        "1 verified, 1 mismatched, 1 not present" in out
        and "MISMATCH CUB_200_2011/classes.txt" in out
    )
    card.write_text(card.read_text().replace("0" * 64, _sha(classes_txt)))
    assert cli.main(["data", "check", "cub", str(cub_root), "--json"]) == 0
    sums = json.loads(capsys.readouterr().out)["checksums"]
    assert sums["verified"] == ["CUB_200_2011/images.txt", "CUB_200_2011/classes.txt"]
    assert sums["absent"] == ["CUB_200_2011/attributes/attributes.txt"]


def test_checksum_block_parsing_rejects_bad_lines():
    assert checksums.parse_checksums("text\n```sha256\n```\n") == []
    with pytest.raises(ValueError, match="bad checksum line"):
        checksums.parse_checksums("```sha256\nabc  file.txt\n```\n")


def test_every_card_checksum_block_parses():
    for card in sorted(checksums.cards_dir().glob("*.md")):
        checksums.parse_checksums(card.read_text(encoding="utf-8"))


def test_fixture_subcommand(tmp_path, capsys):
    assert cli.main(["data", "fixture", "flowers", str(tmp_path / "f")]) == 0
    assert (tmp_path / "f" / "setid.mat").is_file()
    assert cli.main(["data", "fixture", "flowers", str(tmp_path / "b"), "--broken"]) == 0
    assert str(tmp_path / "b" / "setid.mat") in capsys.readouterr().out
    assert cli.main(["data", "fixture", "nope", str(tmp_path / "n")]) == 2


def test_scenes_delegates_to_the_scenes_cli(monkeypatch):
    seen = {}
    fake = types.ModuleType("capbench.data.scenes.cli")
    fake.add_arguments = lambda p: (
        p.add_argument("--out"),
        p.add_argument("--size", default="tiny"),
    )
    fake.run = lambda args: seen.update(vars(args)) or 0
    monkeypatch.setitem(sys.modules, "capbench.data.scenes.cli", fake)
    assert cli.main(["data", "scenes", "--out", "/tmp/x", "--size", "demo"]) == 0
    assert seen == {"out": "/tmp/x", "size": "demo"}


def test_fingerprint_is_stable_and_sensitive(tmp_path):
    a = write_fixture("voc2007", tmp_path / "a")
    b = write_fixture("voc2007", tmp_path / "elsewhere" / "b")
    fa, fb = dataset_fingerprint(a), dataset_fingerprint(b)
    assert fa == fb  # relative paths only: same content, same fingerprint
    assert fa["files"] == 12 + 12 + 4 + 4 * 20  # images, xml, split lists, class files
    assert fa["annotation_files"] == 12 + 4 + 80
    assert fa["bytes"] == sum(p.stat().st_size for p in a.rglob("*") if p.is_file())
    rel = "VOCdevkit/VOC2007/ImageSets/Main/cat_test.txt"
    assert fa["annotations"][rel] == _sha(a / rel)
    (b / rel).write_text((b / rel).read_text().replace("-1", " 0", 1))
    assert dataset_fingerprint(b)["sha256"] != fa["sha256"]
    # an image is not hashed but its size counts
    image = next((a / "VOCdevkit/VOC2007/JPEGImages").glob("*.jpg"))
    image.write_bytes(image.read_bytes() + b"\0")
    assert dataset_fingerprint(a)["sha256"] != fa["sha256"]


def test_verify_images_fails_on_zero_byte_and_truncated_images(tmp_path, capsys):
    """Both files exist, so a plain check passes; decoding every image finds them."""
    root = write_fixture("cub", tmp_path / "cub")
    first, second = sorted((root / "CUB_200_2011" / "images").rglob("*.jpg"))[:2]
    first.write_bytes(b"")
    second.write_bytes(second.read_bytes()[: second.stat().st_size // 2])
    assert cli.main(["data", "check", "cub", str(root)]) == 0
    capsys.readouterr()
    assert cli.main(["data", "check", "cub", str(root), "--verify-images", "--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert "images: 12 checked, 2 failed to decode" in out and out.rstrip().endswith("FAILED")
    assert f"FAILED {first}: " in out and f"FAILED {second}: " in out
    assert cli.main(["data", "check", "cub", str(root), "--verify-images", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert not doc["ok"] and doc["images"]["checked"] == 12 and doc["images"]["failed"] == 2
    assert [f["path"] for f in doc["images"]["failures"]] == [str(first), str(second)]
    reasons = [f["reason"] for f in doc["images"]["failures"]]
    assert reasons[0] == "empty file (0 bytes)" and "truncated" in reasons[1]


def test_verify_images_passes_a_clean_dataset_on_one_worker(cub_root, capsys):
    assert (
        cli.main(["data", "check", "cub", str(cub_root), "--verify-images", "--workers", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "images: 12 checked, 0 failed to decode" in out and out.rstrip().endswith("OK")
    assert (
        cli.main(["data", "check", "cub", str(cub_root), "--verify-images", "--workers", "0"]) == 1
    )
    assert "--workers must be >= 1" in capsys.readouterr().err


def test_check_visual_genome_does_not_write_into_the_dataset(tmp_path, capsys):
    """The split a check makes goes to the cache; the dataset folder is left as it was."""
    root = write_fixture("visual_genome", tmp_path / "vg")
    (root / "capbench_split_seed0.json").unlink()  # a real download has no split file
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert cli.main(["data", "check", "visual_genome", str(root)]) == 0
    assert cli.main(["data", "check", "visual_genome", str(root), "-o", "split_seed=1"]) == 0
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_fingerprint_remembers_settled_files_only(tmp_path, monkeypatch):
    """A second fingerprint does not read a settled file again; an edit (new mtime) is read, and
    a file modified a moment ago is never remembered (a same-size rewrite in one tick)."""
    from capbench.data import fingerprint

    root = tmp_path / "d"
    root.mkdir()
    old, fresh = root / "old.json", root / "fresh.json"
    old.write_text('{"a": 1}')
    fresh.write_text('{"b": 1}')
    past = time.time() - 3600
    os.utime(old, (past, past))
    reads: list[str] = []
    real = fingerprint._sha256
    monkeypatch.setattr(fingerprint, "_sha256", lambda p, *a: reads.append(p.name) or real(p, *a))
    first = dataset_fingerprint(root)
    assert sorted(reads) == ["fresh.json", "old.json"]
    reads.clear()
    assert dataset_fingerprint(root) == first
    assert reads == ["fresh.json"]  # modified a moment ago: read again
    old.write_text('{"a": 2}')  # same size, new mtime
    os.utime(old, (past + 1, past + 1))
    reads.clear()
    assert dataset_fingerprint(root)["sha256"] != first["sha256"]
    assert sorted(reads) == ["fresh.json", "old.json"]


@pytest.mark.parametrize("kind", ["file", "unwritable"])
def test_scenes_to_a_place_it_cannot_write_is_one_line(tmp_path, capsys, kind):
    """An --out that is a file, or under one, stops before rendering with the folder named."""
    if kind == "file":
        out = tmp_path / "scenes"
        out.write_text("")
        expected = f"error: {out} is a file: expected a folder"
    else:
        (tmp_path / "blocker").write_text("")
        out = tmp_path / "blocker" / "scenes"
        expected = f"error: cannot create the scenes folder {out}: "
    assert cli.main(["data", "scenes", "--out", str(out), "--size", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and "Traceback" not in err
