"""Fixtures for the runner tests: a private copy of the toy paper, and the CLI in-process."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

TOY = Path(__file__).parent / "toy_paper"


@pytest.fixture
def toy(tmp_path, monkeypatch) -> Path:
    """A writable copy of ``toy_paper/`` (golden files get written into it); the real
    ``benchmarks/`` are hidden so only the toy paper is in the catalog."""
    from capbench.bench import catalog

    dst = tmp_path / "toy_paper"
    shutil.copytree(TOY, dst, ignore=shutil.ignore_patterns("__pycache__", "golden_scenes.yaml"))
    monkeypatch.setattr(catalog, "builtin_benchmarks_dirs", lambda: [])
    monkeypatch.delenv("CAPBENCH_BENCHMARKS", raising=False)
    monkeypatch.chdir(tmp_path)
    sys.modules.pop("toy_target", None)
    yield dst
    sys.modules.pop("toy_target", None)


@pytest.fixture
def results(toy) -> Path:
    import os

    return Path(os.environ["CAPBENCH_RESULTS"])


@pytest.fixture
def cli(capsys, toy):
    """Run ``capbench ARGS --include <toy>``; returns (exit code, stdout, stderr)."""
    from capbench.cli import main

    def run(*args: str, include: bool = True) -> tuple[int, str, str]:
        argv = list(args)
        if include:
            argv += ["--include", str(toy)]
        rc = main(argv)
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run
