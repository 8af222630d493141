"""Checksums published in a data card, verified against a dataset on disk.

A card lists them in a fenced block whose info string is ``sha256``, one ``<hex>  <relative
path>`` line each (the ``sha256sum`` output format, so a maintainer pastes it verbatim)::

    ```sha256
    5d2a...e1  CUB_200_2011/images.txt
    ```

Paths are relative to the dataset root given to ``capbench data check``. Files absent there
are reported as absent, not as failures: a card may list files of an optional part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from capbench.data.fingerprint import file_sha256
from capbench.resources import data_cards_dir

_FENCE = re.compile(r"^```sha256\s*$(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_LINE = re.compile(r"^(?P<hex>[0-9a-fA-F]{64})\s+\*?(?P<path>\S.*?)\s*$")


def cards_dir() -> Path:
    """``data_cards/`` of the checkout, or the copy an installed capbench ships with."""
    return data_cards_dir()


def card_path(name: str) -> Path:
    return cards_dir() / f"{name}.md"


def parse_checksums(text: str) -> list[tuple[str, str]]:
    """``(hex, relative path)`` for every line of every ```sha256 block; bad lines raise."""
    out = []
    for block in _FENCE.finditer(text):
        for line in block["body"].splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            match = _LINE.match(line.strip())
            if not match:
                raise ValueError(f"bad checksum line {line!r}: expected '<64 hex digits>  <path>'")
            out.append((match["hex"].lower(), match["path"]))
    return out


@dataclass
class ChecksumReport:
    card: str | None
    verified: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatched


def verify_checksums(name: str, root: Path, card: Path | None = None) -> ChecksumReport:
    """Check every card-listed file that exists under ``root``."""
    card = card or card_path(name)
    if not card.is_file():
        return ChecksumReport(card=None)
    report = ChecksumReport(card=str(card))
    for expected, rel in parse_checksums(card.read_text(encoding="utf-8")):
        path = Path(root) / rel
        if not path.is_file():
            report.absent.append(rel)
        elif file_sha256(path, full=True)[0] != expected:
            report.mismatched.append(rel)
        else:
            report.verified.append(rel)
    return report
