"""Where capbench reads data and writes results, from environment variables with local defaults.

Every command that touches datasets, run records or caches goes through these so that one
variable moves everything (a cluster's scratch disk, a CI temp dir).
"""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """Real datasets live at ``$CAPBENCH_DATA/<name>`` (default ``./data``)."""
    return Path(os.environ.get("CAPBENCH_DATA", "data"))


def scenes_root() -> Path:
    """The generated scenes dataset (default ``./scenes_data``)."""
    return Path(os.environ.get("CAPBENCH_SCENES", "scenes_data"))


def results_root() -> Path:
    """Run records, one folder per paper (default ``./results``)."""
    return Path(os.environ.get("CAPBENCH_RESULTS", "results"))


def cache_root() -> Path:
    """Arrow caches, Visual Genome splits, feature caches, pretrained scenes backbones (default
    ``./.capbench_cache``)."""
    return Path(os.environ.get("CAPBENCH_CACHE", ".capbench_cache"))


def user_rows_root() -> Path:
    """Row configs ``capbench suite --encoder`` writes for a user's encoder; the catalog reads
    them like an ``--include`` folder, so the row stays on the leaderboard."""
    return results_root() / "user_rows"
