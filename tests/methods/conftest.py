"""Shared fixtures of the method tests: the benchmark scripts kept beside a paper's configs,
loaded by path (they are scripts, and tests are not a package)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def _load(relative: str) -> ModuleType:
    path = BENCHMARKS / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def benchmark_script() -> Callable[[str], ModuleType]:
    """``benchmark_script("gordo2017/gpu_check.py")`` imports ``benchmarks/<that path>``."""
    return _load
