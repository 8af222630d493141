"""The leaderboard page in a real headless browser (Debian chromium): no console errors,
every table present, every plot loaded. Slow: starts a browser."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _cdp():
    """tests/bench/cdp.py (pytest runs with --import-mode=importlib: no sys.path entry)."""
    spec = importlib.util.spec_from_file_location(
        "capbench_tests_cdp", Path(__file__).with_name("cdp.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


load_page = _cdp().load_page

SCRIPT = """JSON.stringify({
  tables: [...document.querySelectorAll('table.leaderboard')].map(t => [t.dataset.table, t.dataset.profile, t.rows.length]),
  images: [...document.images].map(i => [i.dataset.file, i.complete && i.naturalWidth > 0]),
})"""


@pytest.mark.slow
def test_index_html_loads_cleanly_in_chromium(cli, tmp_path):
    import json

    assert cli("reproduce", "toypaper", "--seeds", "2", "--write-golden")[0] == 0
    out_dir = tmp_path / "board"
    assert cli("leaderboard", "render", "--out", str(out_dir))[0] == 0
    # the page stands alone: opened from another folder, with nothing beside it
    alone = tmp_path / "elsewhere" / "index.html"
    alone.parent.mkdir()
    alone.write_text((out_dir / "index.html").read_text())
    errors, value = load_page(alone, SCRIPT)
    assert errors == []
    page = json.loads(value)
    tables = {(t, p): n for t, p, n in page["tables"]}
    assert set(tables) == {("t1", "scenes"), ("t1", "paper"), ("t2", "scenes"), ("t2", "paper")}
    assert tables[("t1", "scenes")] == 1 + 4 * 2  # header + 4 rows x 2 metrics
    assert page["images"] and all(ok for _, ok in page["images"]), page["images"]

    # the same check must catch a broken page: a damaged inlined plot does not load
    text = alone.read_text()
    start = text.index("data:image/png;base64,") + len("data:image/png;base64,")
    alone.write_text(text[:start] + "AAAA" + text[start + 400 :])
    _, value = load_page(alone, SCRIPT)
    loaded = [ok for _, ok in json.loads(value)["images"]]
    assert loaded.count(False) == 1, loaded
