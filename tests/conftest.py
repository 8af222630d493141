"""Shared test settings: small thread pools (CI has 2 cores), offline libraries, temp results."""

from __future__ import annotations

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Each test writes results and caches under its own temp dir, never into the checkout."""
    base = tmp_path_factory.mktemp("capbench_env")
    monkeypatch.setenv("CAPBENCH_RESULTS", str(base / "results"))
    monkeypatch.setenv("CAPBENCH_CACHE", str(base / "cache"))
