"""Build hook (setuptools ``build_py``): map the top-level ``benchmarks/`` and ``data_cards/``
folders into the package as ``capbench/shipped/<folder>``.

The design card keeps those folders at the top of the repository, outside the package, so a
plain build would ship only the Python files and an installed capbench would find no papers, no
goldens and no data cards. ``pyproject.toml`` names this class in ``[tool.setuptools.cmdclass]``;
setuptools loads this file by path at build time (it is never imported at run time, and
``capbench.resources`` reads what it copies). Editable installs skip the copy: they read the
checkout's folders directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools.command.build_py import build_py

# Same names as capbench.resources.SHIPPED / SHIPPED_PACKAGE_DIR (that module imports nothing
# from here, and this file cannot import capbench while the package is being built).
SHIPPED = ("benchmarks", "data_cards")
SHIPPED_PACKAGE_DIR = "shipped"
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class BuildPyWithResources(build_py):
    """``build_py`` that also copies the shipped folders into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        root = Path(__file__).resolve().parents[1]
        for name in SHIPPED:
            src = root / name
            if not src.is_dir():
                raise FileNotFoundError(
                    f"{src} is missing: capbench must be built from a checkout or from an sdist "
                    "that includes it (MANIFEST.in grafts it)"
                )
            dst = Path(self.build_lib) / "capbench" / SHIPPED_PACKAGE_DIR / name
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=_SKIP)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        """Built files, the copied folders included (setuptools lists what it installs)."""
        outputs = list(super().get_outputs(include_bytecode))
        base = Path(self.build_lib) / "capbench" / SHIPPED_PACKAGE_DIR
        if base.is_dir():
            outputs += [str(p) for p in sorted(base.rglob("*")) if p.is_file()]
        return outputs
