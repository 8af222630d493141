"""`make help` names every paper's reproduce target, so a user can find the one to run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_help_names_every_reproduce_target():
    makefile = (ROOT / "Makefile").read_text()
    papers = re.findall(r"^reproduce-([a-z]+):", makefile, flags=re.M)
    assert {"gordo", "reed", "malali", "mopuri", "icmlm", "all"} <= set(papers)
    out = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    listed = re.search(r"make reproduce-PAPER\s+PAPER: ([a-z ]+);", out)
    assert listed, out
    assert set(listed.group(1).split()) == set(papers) - {"all"}
    assert "make reproduce-all " in out and "make demo " in out and "make test " in out
