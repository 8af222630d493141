"""Methods outside capbench: a package installed beside it registers through the
``capbench.methods`` entry-point group (README, "Methods: one package each, one registry").

Each case installs a distribution the way pip leaves one on disk (a ``*.dist-info`` folder with
``entry_points.txt``) into a folder put on ``PYTHONPATH``, and runs capbench in a fresh process,
where discovery reads the installed entry points once. A plugin that fails must not stop
capbench: it is named, with its error, where the user looks for the method.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from capbench.bench.config import PaperSpecError, resolve_config
from capbench.methods import registry

# a plugin that registers the worked example's parts under its own name
WORKING_PLUGIN = """
from dataclasses import replace

from capbench.methods.registry import get_method, register_method

register_method(replace(get_method("semantic_retrieval"), name="lab_retrieval", paper="lab2026"))
"""


def install(site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """A distribution ``dist`` 0.1 in ``site`` with ``entry_points`` in the capbench group."""
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = [f"{name} = {value}" for name, value in entry_points.items()]
    (info / "entry_points.txt").write_text("[capbench.methods]\n" + "\n".join(lines) + "\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)


def with_site(site: Path, **extra: str) -> dict[str, str]:
    """This environment with ``site`` first on ``PYTHONPATH`` (where ``install`` put the plugin)."""
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, **extra)


def capbench(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "capbench", *args],
        env=with_site(site),
        cwd=site,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_installed_plugin_registers_its_method(tmp_path: Path) -> None:
    install(tmp_path, "labmethods", {"lab_retrieval": "lab_plugin"}, {"lab_plugin": WORKING_PLUGIN})
    proc = capbench(tmp_path, "methods", "--json")
    assert proc.returncode == 0, proc.stderr
    listed = {json.loads(line)["name"]: json.loads(line) for line in proc.stdout.splitlines()}
    assert listed["lab_retrieval"]["paper"] == "lab2026"
    assert "semantic_retrieval" in listed  # capbench's own methods stay


def test_a_broken_plugin_is_named_and_the_rest_still_works(tmp_path: Path) -> None:
    install(tmp_path, "labmethods", {"lab_retrieval": "lab_plugin_missing"}, {})
    proc = capbench(tmp_path, "methods")
    assert proc.returncode == 1
    assert "semantic_retrieval" in proc.stdout
    assert (
        "capbench methods: error: entry point 'lab_retrieval' = 'lab_plugin_missing' of "
        "labmethods 0.1 (group 'capbench.methods') failed to load: ModuleNotFoundError: "
        "No module named 'lab_plugin_missing'"
    ) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_plugin_that_registers_nothing_is_named(tmp_path: Path) -> None:
    install(tmp_path, "labmethods", {"lab_retrieval": "lab_empty"}, {"lab_empty": "X = 1\n"})
    proc = capbench(tmp_path, "methods")
    assert proc.returncode == 1
    assert "'lab_retrieval' = 'lab_empty' of labmethods 0.1" in proc.stderr
    assert "loaded but registered no method" in proc.stderr


def test_a_row_of_a_plugin_that_failed_says_why_its_method_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failure = "entry point 'lab_retrieval' = 'lab_plugin' of labmethods 0.1 failed to load: boom"
    monkeypatch.setattr(registry, "ENTRY_POINT_FAILURES", [failure])
    row = tmp_path / "mine.scenes.yaml"
    row.write_text("method: lab_retrieval\n")
    with pytest.raises(
        PaperSpecError, match=r"unknown method 'lab_retrieval'.*failed to load: boom"
    ):
        resolve_config(row)
    with pytest.raises(KeyError, match=r"failed to load: boom"):
        registry.get_method("lab_retrieval")


def test_the_registry_wide_tests_take_an_installed_plugin(tmp_path: Path) -> None:
    """A plugin's author runs capbench's contract tests on it (README): they are parametrized
    over the methods discovered, entry points included, and read its paper from
    ``$CAPBENCH_BENCHMARKS``."""
    site = tmp_path / "site"
    install(site, "labmethods", {"lab_retrieval": "lab_plugin"}, {"lab_plugin": WORKING_PLUGIN})
    paper = tmp_path / "benchmarks" / "lab2026"  # the worked example's paper, as the lab's own
    shutil.copytree(Path(__file__).parents[2] / "benchmarks" / "gordo2017", paper)
    for config in paper.glob("*.yaml"):
        text = config.read_text().replace("key: gordo2017", "key: lab2026")
        config.write_text(text.replace("method: semantic_retrieval", "method: lab_retrieval"))
    tests = Path(__file__).with_name("test_method_registry.py")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests), "-k",
         "lab_retrieval and (complete_and_typed or refuses_a_typo)"],
        env=with_site(site, CAPBENCH_BENCHMARKS=str(paper.parent)),
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
