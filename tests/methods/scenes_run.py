"""A paper's scenes profile run once for the slow scenes tests, in a temp folder: results and
cache there, the scenes data from ``$CAPBENCH_SCENES`` when it is set (else written there)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from capbench.cli import main


def reproduce_scenes(base: Path, paper: str, *args: str) -> Path:
    """``capbench reproduce PAPER --profile scenes ARGS`` with its results and cache under
    ``base``, torch's thread count put back after; returns the paper's records folder. A failed
    run raises RuntimeError, not AssertionError, so it cannot pass as the expected failure of a
    ``claim_not_met`` test."""
    import torch

    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAPBENCH_SCENES", os.environ.get("CAPBENCH_SCENES") or str(base / "scenes"))
        mp.setenv("CAPBENCH_RESULTS", str(base / "results"))
        mp.setenv("CAPBENCH_CACHE", str(base / "cache"))
        if main(["reproduce", paper, "--profile", "scenes", *args]) != 0:
            raise RuntimeError(f"capbench reproduce {paper} --profile scenes failed (above)")
    torch.set_num_threads(threads)
    return base / "results" / paper / "records"
