"""Where the files that ship with capbench are: the benchmark suites and the data cards.

In a source checkout they are the top-level ``benchmarks/`` and ``data_cards/`` folders, where
the design card puts them. A built wheel carries copies inside the package, under
``capbench/shipped/`` (the build maps them in: ``capbench/_build_hooks.py``), found here through
``importlib.resources`` so an installed capbench works from any folder. When capbench is
imported from a checkout (an editable install, ``PYTHONPATH``), the checkout's folders are the
ones read, so an edit to a config or a data card is seen at once.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

# Top-level folders of the repository that the build copies into ``capbench/shipped/``.
SHIPPED = ("benchmarks", "data_cards")
SHIPPED_PACKAGE_DIR = "shipped"


@functools.cache
def checkout_root() -> Path | None:
    """The source checkout capbench is imported from, or None for an installed copy.

    A checkout has capbench's own ``pyproject.toml`` next to the package; ``site-packages``
    never does."""
    root = Path(__file__).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "capbench"' in text else None


def shipped_dir(name: str) -> Path:
    """The folder ``name`` (one of :data:`SHIPPED`): the checkout's, else the installed copy.

    Raises FileNotFoundError naming both places when neither exists (a wheel built without the
    build hook, or a damaged install), instead of letting callers find nothing and go quiet.
    """
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not shipped with capbench ({', '.join(SHIPPED)})")
    root = checkout_root()
    if root is not None and (root / name).is_dir():
        return root / name
    installed = resources.files("capbench") / SHIPPED_PACKAGE_DIR / name
    if not installed.is_dir():
        where = f"{root / name} nor " if root is not None else ""
        raise FileNotFoundError(
            f"capbench's {name}/ is missing: found neither {where}{installed}; "
            "reinstall capbench from a wheel or sdist built with its build hook"
        )
    if not isinstance(installed, Path):  # e.g. capbench imported from a zip file
        raise FileNotFoundError(f"capbench's {name}/ is not on the file system ({installed})")
    return installed


def benchmarks_dir() -> Path:
    """The built-in benchmark suites: one folder per paper with ``paper.yaml`` and row configs."""
    return shipped_dir("benchmarks")


def data_cards_dir() -> Path:
    """The data cards: one Markdown file per dataset, with the checksums ``data check`` verifies."""
    return shipped_dir("data_cards")
