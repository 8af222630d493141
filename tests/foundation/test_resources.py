"""The files that ship with capbench: found in a checkout, in an installed copy, and a clear
error when neither is there; provenance runs git only inside a checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from capbench import resources
from capbench.bench import provenance
from capbench.data import checksums

REPO = Path(__file__).resolve().parents[2]


def test_a_checkout_reads_its_own_folders():
    assert resources.checkout_root() == REPO
    assert resources.benchmarks_dir() == REPO / "benchmarks"
    assert checksums.cards_dir() == REPO / "data_cards"
    assert checksums.card_path("cub").is_file()


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """capbench as a wheel lays it out: no checkout, the folders under capbench/shipped/."""
    package = tmp_path / "site-packages" / "capbench"
    for name in resources.SHIPPED:
        (package / resources.SHIPPED_PACKAGE_DIR / name).mkdir(parents=True)
    monkeypatch.setattr(resources, "checkout_root", lambda: None)
    monkeypatch.setattr(resources.resources, "files", lambda anchor: package)
    return package


def test_an_installed_copy_reads_the_shipped_folders(installed):
    assert resources.benchmarks_dir() == installed / "shipped" / "benchmarks"
    assert resources.data_cards_dir() == installed / "shipped" / "data_cards"


def test_a_missing_folder_is_an_error_not_an_empty_catalog(installed):
    (installed / "shipped" / "benchmarks").rmdir()
    with pytest.raises(FileNotFoundError, match=r"capbench's benchmarks/ is missing.*reinstall"):
        resources.benchmarks_dir()
    with pytest.raises(ValueError, match="not shipped"):
        resources.shipped_dir("tests")


def test_git_sha_only_inside_a_checkout(monkeypatch):
    inside = provenance.git_info()
    if (REPO / ".git").exists():
        assert len(inside["sha"]) == 40 and isinstance(inside["dirty"], bool)

    def no_git(*args, **kwargs):
        raise AssertionError(f"git was run: {args}")

    monkeypatch.setattr(provenance, "checkout_root", lambda: None)
    monkeypatch.setattr(subprocess, "run", no_git)
    assert provenance.git_info() == {"sha": None, "dirty": None}
