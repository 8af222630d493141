"""Shared fixtures for the evaluation tests: the independent reference implementations."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """CI has 2 shared cores; metric tests must not fight over them."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def ref() -> ModuleType:
    """Brute-force references (``reference.py``), loaded by path: tests are not a package."""
    spec = importlib.util.spec_from_file_location(
        "capbench_eval_reference", Path(__file__).with_name("reference.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
