"""Where the catalog finds papers: the suites shipped with capbench, plus a user's own from
``$CAPBENCH_BENCHMARKS`` and ``--include`` (added, never replacing the shipped ones)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from capbench.bench.catalog import Catalog
from capbench.resources import benchmarks_dir

TOY = Path(__file__).parent / "toy_paper"


def test_shipped_suites_are_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("CAPBENCH_BENCHMARKS", raising=False)
    monkeypatch.chdir(tmp_path)  # not the checkout: nothing is looked up relative to it
    cat = Catalog.discover()
    assert "gordo2017" in cat.papers
    assert cat.paper("gordo2017").dir == (benchmarks_dir() / "gordo2017").resolve()


def test_env_adds_user_suites_like_include(monkeypatch):
    extra = os.pathsep.join([str(TOY), str(TOY / "extra_rows")])
    monkeypatch.setenv("CAPBENCH_BENCHMARKS", extra)
    cat = Catalog.discover()
    assert {"gordo2017", "toypaper"} <= set(cat.papers)
    assert cat.paper("toypaper").table("t1").rows["mine"].user_added  # a loose row config
    monkeypatch.delenv("CAPBENCH_BENCHMARKS")
    assert set(Catalog.discover(include=[TOY, TOY / "extra_rows"]).papers) == set(cat.papers)


def test_env_folder_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPBENCH_BENCHMARKS", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match=r"\$CAPBENCH_BENCHMARKS .*nope: not a directory"):
        Catalog.discover()
