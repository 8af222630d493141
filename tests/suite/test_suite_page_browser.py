"""The suite matrix in a real headless browser (Debian chromium): the page loads with no console
error, the matrix has a row per encoder, and a screenshot is taken. Slow: starts a browser."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from capbench.bench.catalog import Catalog
from capbench.cli import main

SCRIPT = """JSON.stringify([...document.querySelectorAll('table.matrix')].map(t => ({
  profile: t.dataset.profile,
  rows: [...t.querySelectorAll('tr.encoder')].map(r => r.querySelector('th').textContent),
  best: t.querySelectorAll('td.best').length,
  na: [...t.querySelectorAll('td.na')].map(td => td.textContent),
})))"""


def _load_page():
    spec = importlib.util.spec_from_file_location(
        "capbench_tests_cdp", Path(__file__).parents[1] / "bench" / "cdp.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_page


@pytest.mark.slow
def test_suite_matrix_page_in_chromium(tiny_scenes, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CAPBENCH_SCENES", str(tiny_scenes))
    monkeypatch.chdir(Path(__file__).parents[2])  # examples/ is importable from the checkout
    assert main(["reproduce", "suite", "--profile", "ci", "--rows", "random_init,pretrained"]) == 0
    assert main(["suite", "--encoder", "examples.color_layout_encoder:build",
                 "--name", "color_layout", "--profile", "ci"]) == 0  # fmt: skip
    out = tmp_path / "board"
    assert main(["leaderboard", "render", "--out", str(out)]) == 0
    capsys.readouterr()
    shot = tmp_path / "suite.png"
    errors, value = _load_page()(out / "index.html", SCRIPT, screenshot=shot)
    assert errors == []
    ci = next(t for t in json.loads(value) if t["profile"] == "ci")
    suite_rows = len(Catalog.discover().paper("suite").tables["matrix"].rows)
    assert len(ci["rows"]) == suite_rows  # every suite row (run or not), the user's included
    assert "examples.color_layout_encoder:build (user)" in ci["rows"]
    assert ci["best"] >= 5  # one best per measured column (ties may add more)
    assert "no text tower" in ci["na"] and "not run" in ci["na"]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
