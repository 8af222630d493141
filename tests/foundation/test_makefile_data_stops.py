"""`make reproduce-<paper>` on the paper profile stops before any work when a dataset it needs is
missing, with one line naming the place it looked and the data card that says how to get it, one
dataset at a time: each test fills in what the last message named and expects the next one, then success."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# target -> what it needs, in the order it checks: (path under CAPBENCH_DATA, a folder?, card)
NEEDS = {
    "gordo-data": [("visual_genome/region_descriptions.json", False, "visual_genome")],
    "malali-data": [
        ("coco/dataset_coco.json", False, "coco"),
        ("flickr30k", True, "flickr30k"),
        ("flickr8k", True, "flickr8k"),
    ],
    "reed-data": [
        ("cub/cvpr2016_cub/images", True, "cub"),
        ("flowers/cvpr2016_flowers", True, "flowers"),
    ],
    "mopuri-data": [
        ("rpascal", True, "graded_retrieval"),
        ("rimagenet", True, "graded_retrieval"),
        ("coco/dataset_coco.json", False, "coco"),
        ("visual_genome/region_descriptions.json", False, "visual_genome"),
    ],
}


def _make(target: str, data: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", "-C", str(ROOT), target, "PROFILE=paper", f"CAPBENCH_DATA={data}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("target", sorted(NEEDS))
def test_paper_profile_names_each_missing_dataset_in_turn(target, tmp_path):
    for rel, is_dir, card in NEEDS[target]:
        done = _make(target, tmp_path)
        assert done.returncode != 0, (target, rel, done.stdout)
        # one line, from make's own report on: what is missing, where, and its data card
        first = done.stderr.splitlines()[0]
        assert first.startswith("error:") and rel.split("/")[0] in first, (target, first)
        assert f"data_cards/{card}.md" in first, (target, done.stderr)
        assert not done.stderr.splitlines()[1].startswith(" "), (target, done.stderr)
        path = tmp_path / rel
        if is_dir:
            path.mkdir(parents=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
    done = _make(target, tmp_path)
    assert done.returncode == 0, (target, done.stderr)


def test_an_unknown_profile_is_one_line(tmp_path):
    done = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "reproduce-gordo", "PROFILE=scene"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.splitlines()[0] == "error: PROFILE must be paper, scenes or ci, got 'scene'"


def test_a_dry_run_writes_no_data_and_renders_no_page(tmp_path):
    """`REPRODUCE_ARGS=--dry-run` prints the plan: no scenes data written, no leaderboard."""
    scenes, results = tmp_path / "scenes", tmp_path / "results"
    done = subprocess.run(
        # -o setup: the venv this test runs in is the one the target would build
        ["make", "-s", "-o", "setup", "-C", str(ROOT), "reproduce-gordo", "PROFILE=scenes",
         "REPRODUCE_ARGS=--dry-run", f"CAPBENCH_SCENES={scenes}", f"CAPBENCH_RESULTS={results}"],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "proposed_vt_vt" in done.stdout  # the plan
    assert not scenes.exists() and not results.exists()
