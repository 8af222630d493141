"""Where a number came from: capbench's version and (in a checkout) git sha, package versions,
device, dataset fingerprint.

``capbench leaderboard compare`` explains a delta between two runs from exactly these fields,
so they are gathered the same way every time and never raise (a missing git or package is
recorded as ``None``, not a crash).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from capbench.resources import checkout_root

# The packages a reproduced number can depend on; constraints.txt pins the versions the golden
# numbers were made with, and a record that differs shows it here (``leaderboard compare``).
PACKAGES = (
    "torch",
    "torchvision",
    "lightning",
    "torchmetrics",
    "timm",
    "faiss-cpu",
    "faiss-gpu",
    "numpy",
    "scikit-learn",
    "scipy",
    "sentencepiece",
    "nltk",
    "pillow",
    "submitit",
    "pyyaml",
    "pyarrow",
    "joblib",
    "pydantic",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_info(repo: Path | None = None) -> dict[str, Any]:
    """``{"sha": ..., "dirty": ...}`` of the checkout capbench is imported from.

    An installed capbench (a wheel in ``site-packages``) has no checkout: both are ``None`` and
    ``capbench_version`` is what identifies the code. git is never run anywhere else, e.g. in
    the folder that happens to hold ``site-packages``.
    """
    repo = repo or checkout_root()
    if repo is None or not (repo / ".git").exists():
        return {"sha": None, "dirty": None}
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}
    return {"sha": sha or None, "dirty": bool(dirty)}


def device_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "kind": "cpu",
        "name": platform.processor() or platform.machine(),
        "count": os.cpu_count() or 1,
    }
    try:
        import torch

        if torch.cuda.is_available():
            n = torch.cuda.device_count()
            info = {
                "kind": "cuda",
                "name": torch.cuda.get_device_name(0),
                "count": n,
                "cpu_count": os.cpu_count(),
            }
    except Exception as err:  # a broken CUDA install must not stop the record
        info["cuda_error"] = repr(err)
    return info


def dataset_info(given: dict[str, Any]) -> dict[str, Any]:
    """What the target said about its dataset, completed with a fingerprint of its ``root``
    when the target gave a root but no fingerprint."""
    out = dict(given)
    out.setdefault("name", None)
    out.setdefault("root", None)
    out.setdefault("fingerprint", None)
    if not out["fingerprint"] and out["root"]:
        from capbench.data.fingerprint import dataset_fingerprint  # the data layer's one definition

        out["fingerprint"] = dataset_fingerprint(out["root"])
    return json.loads(json.dumps(out, default=str))
