"""The console script lists every verb without importing heavy modules."""

from __future__ import annotations

import subprocess
import sys

from capbench.cli import COMMANDS, main


def test_help_lists_every_verb(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for verb in COMMANDS:
        assert verb in out


def test_unknown_verb_is_a_usage_error():
    proc = subprocess.run(
        [sys.executable, "-m", "capbench.cli", "no-such-verb"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_help_does_not_import_torch():
    """Listing verbs must stay fast: verb modules (and torch) load only when used."""
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom capbench.cli import main\nmain([])\nprint('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().endswith("False")
