"""A second process holding a capbench lock (``capbench.file_lock.exclusive``), for the tests
of what another process does meanwhile: it takes the lock, says so, and holds it until told to
release; then, still holding it, it copies ``SRC=>DST`` pairs, as the work it did."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HOLDER = """
import shutil, sys, time
from pathlib import Path
from capbench.file_lock import exclusive
with exclusive(Path(sys.argv[1]), "holding it for the test"):
    print("held", flush=True)
    while not Path(sys.argv[2]).exists():
        time.sleep(0.02)
    for pair in sys.argv[3:]:
        src, dst = map(Path, pair.split("=>"))
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
"""


def hold(lock: Path, release: Path, *copies: tuple[Path, Path]) -> subprocess.Popen:
    """A process holding ``lock`` until the file ``release`` exists; it then copies each
    ``(src, dst)`` before it lets go."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(release)]
        + [f"{src}=>{dst}" for src, dst in copies],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc
