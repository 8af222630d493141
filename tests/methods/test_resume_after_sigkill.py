"""A gordo2017 row killed with SIGKILL in the middle of training and started again gives the
numbers of an uninterrupted run (slow: three real `capbench reproduce` processes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROW = ["reproduce", "gordo2017", "--profile", "ci", "--table", "table2", "--rows", "proposed_v_v",
       "--set", "train.max_steps=12", "--set", "train.lr_drop_step=8", "--accelerator", "cpu"]  # fmt: skip


def _env(tmp: Path, name: str, scenes: Path) -> dict[str, str]:
    (tmp / name / "tmp").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        CAPBENCH_RESULTS=str(tmp / name / "results"),
        CAPBENCH_CACHE=str(tmp / name / "cache"),
        CAPBENCH_SCENES=str(scenes),
        TMPDIR=str(tmp / name / "tmp"),  # what a killed process cannot remove stays in tmp_path
    )
    return env


def _capbench(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    code = "import sys; from capbench.cli import main; sys.exit(main(sys.argv[1:]))"
    log = open(Path(env["CAPBENCH_CACHE"]).parent / "log.txt", "ab")  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


def _metrics(env: dict[str, str]) -> dict[str, float]:
    records = sorted(Path(env["CAPBENCH_RESULTS"]).rglob("records/table2/proposed_v_v/ci-*.json"))
    assert len(records) == 1, records
    return json.loads(records[0].read_text())["metrics"]


@pytest.mark.slow
def test_sigkill_mid_training_then_rerun_gives_the_uninterrupted_numbers(tiny_scenes, tmp_path):
    straight = _env(tmp_path, "straight", tiny_scenes)
    assert _capbench(ROW, straight).wait(timeout=900) == 0

    killed = _env(tmp_path, "killed", tiny_scenes)
    # the same scenes backbone (its pretraining is not what is under test)
    shutil.copytree(Path(straight["CAPBENCH_CACHE"]) / "backbones",
                    Path(killed["CAPBENCH_CACHE"]) / "backbones")  # fmt: skip
    proc = _capbench(ROW, killed)
    models = Path(killed["CAPBENCH_CACHE"]) / "gordo2017" / "models"
    deadline = time.monotonic() + 900
    saves: set[int] = set()  # each epoch end renames a new last.ckpt into place: a new inode
    while len(saves) < 2:  # rounds of 3 steps: after round 2
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        saves |= {path.stat().st_ino for path in models.rglob("checkpoints/last.ckpt")}
        time.sleep(0.05)
    time.sleep(0.5)  # into the next round
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not list(Path(killed["CAPBENCH_RESULTS"]).rglob("ci-*.json")), "killed too late"
    assert _capbench(ROW, killed).wait(timeout=900) == 0
    log = (tmp_path / "killed" / "log.txt").read_text(errors="replace")
    assert "Restored all states from the checkpoint" in log  # it resumed, it did not restart
    assert _metrics(killed) == _metrics(straight)
