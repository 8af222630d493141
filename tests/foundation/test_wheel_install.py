"""capbench as a new user gets it: a wheel built from the repository (sdist first, as PyPI
would), installed with its constraints into a fresh venv outside the checkout, then run from
another folder: the shipped papers, goldens and data cards are found, one ci row reproduces
its golden number, and the optional parts really are optional.

Slow (`make test-slow`): the fresh venv installs every dependency (minutes). Torch and its
CUDA libraries (5.5 GB) are borrowed from the running venv through a .pth file rather than
installed a second time: CI's disk does not hold two copies, and what this test checks is
capbench's wheel, not torch's.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# what a clean clone does not have: build outputs, venvs, data and results of local runs
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
    ".ruff_cache", "results", "scenes_data", ".capbench_cache", "lightning_logs", "wandb",
)  # fmt: skip


# the distributions that make torch 5.5 GB; everything else the wheel needs is installed fresh
BORROWED = ("torch", "torchvision", "triton", "nvidia-", "cuda-")


def _borrow_torch(venv: Path, into: Path) -> None:
    """Make this interpreter's torch, torchvision, triton and CUDA wheels visible to `venv`.

    A folder of symlinks to just those distributions' top-level entries (packages and
    .dist-info), listed by a .pth file in the venv's site-packages: pip then sees the pinned
    torch as installed, and nothing else of the running venv (its extras) leaks in.
    """
    into.mkdir()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"].lower()
        if not (name in BORROWED or name.startswith(BORROWED[3:])):
            continue
        site = Path(dist.locate_file(""))
        for top in {Path(f).parts[0] for f in dist.files or ()} - {"..", "bin"}:
            if (site / top).exists() and not (into / top).exists():
                (into / top).symlink_to(site / top)
    (site_packages,) = venv.glob("lib/python*/site-packages")
    (site_packages / "capbench_test_borrowed_torch.pth").write_text(f"{into}\n")


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 1500) -> str:
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, (
        f"{' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """(venv bin folder, environment, working folder) of capbench installed from its wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=NOT_SOURCE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAPBENCH_", "PYTHON"))}
    _run([sys.executable, "-m", "build", "--outdir", str(tmp / "dist"), str(src)], tmp, env)
    (wheel,) = (tmp / "dist").glob("capbench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "capbench/shipped/benchmarks/gordo2017/paper.yaml",
        "capbench/shipped/benchmarks/gordo2017/golden_ci.yaml",
        "capbench/shipped/benchmarks/gordo2017/random.ci.yaml",
        "capbench/shipped/benchmarks/demo.yaml",
        "capbench/shipped/data_cards/cub.md",
        "capbench/bench/json_schema/paper.schema.json",
    ):
        assert shipped in names, f"{shipped} is not in {wheel.name}"
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp, env)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    _run([*pip, "install", "-q", "--upgrade", "pip"], tmp, env)
    _borrow_torch(venv, tmp / "borrowed_torch")
    # the rest comes pinned from the constraints, like `make setup`
    _run([*pip, "install", "-q", "-c", str(src / "constraints.txt"), str(wheel)], tmp, env)
    (site_packages,) = venv.glob("lib/python*/site-packages")
    assert not (site_packages / "torch").exists(), "pip installed torch again beside the borrowed"
    work = tmp / "elsewhere"  # not the checkout, not the source copy
    work.mkdir()
    env.update(
        CAPBENCH_RESULTS=str(work / "results"),
        CAPBENCH_CACHE=str(work / "cache"),
        CAPBENCH_SCENES=str(work / "scenes"),
        MPLBACKEND="Agg",
    )
    return venv / "bin", env, work


@pytest.mark.slow
def test_installed_wheel_lists_and_reproduces_a_ci_row(installed):
    bin_dir, env, work = installed
    capbench = str(bin_dir / "capbench")
    version = _run([capbench, "--version"], work, env).strip()
    assert (
        version == _run([str(bin_dir / "python"), "-m", "capbench", "--version"], work, env).strip()
    )
    assert version.startswith("capbench ")

    listing = _run([capbench, "reproduce", "--list"], work, env)
    assert "gordo2017:" in listing and "no papers found" not in listing
    assert "site-packages/capbench/shipped/benchmarks/gordo2017" in listing

    _run([capbench, "data", "scenes", "--out", env["CAPBENCH_SCENES"], "--size", "tiny"], work, env)
    out = _run(
        [capbench, "reproduce", "gordo2017", "--profile", "ci", "--rows", "random"], work, env
    )
    assert "row run(s) succeeded" in out
    check = _run(
        [capbench, "leaderboard", "check", "--paper", "gordo2017", "--profile", "ci",
         "--rows", "random", "--strict"],
        work, env,
    )  # fmt: skip
    assert "within tolerance (ci profile)" in check  # the shipped golden numbers
    records = sorted((work / "results" / "gordo2017" / "records").rglob("ci-s0-*.json"))
    assert records
    record = json.loads(records[0].read_text())
    assert record["git"] == {"sha": None, "dirty": None}  # no checkout: no git run
    assert f"capbench {record['capbench_version']}" == version


@pytest.mark.slow
def test_installed_wheel_finds_its_data_cards_and_keeps_extras_optional(installed):
    bin_dir, env, work = installed
    capbench = str(bin_dir / "capbench")
    _run([capbench, "data", "fixture", "cub", str(work / "cub")], work, env)
    out = _run([capbench, "data", "check", "cub", str(work / "cub")], work, env)
    assert "checksums: none listed in data_cards/cub.md" in out  # the card was found

    absent = _run(
        [str(bin_dir / "python"), "-c",
         "import importlib.util as u; print([m for m in ('submitit', 'wandb', 'faiss', 'datasets')"
         " if u.find_spec(m) is None])"],
        work, env,
    )  # fmt: skip
    assert absent.strip() == "['submitit', 'wandb', 'faiss', 'datasets']"  # base install only
    proc = subprocess.run(
        [capbench, "reproduce", "gordo2017", "--profile", "ci", "--rows", "random",
         "--launcher", "slurm", "--dry-run"],
        cwd=work, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--launcher slurm needs submitit: pip install 'capbench[slurm]'" in proc.stderr
