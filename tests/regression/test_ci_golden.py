"""CI's regression gate: every implemented paper's scenes rows, at CI size, against golden numbers.

This is what makes `make test` (and so CI) fail when a change moves a reproduced number: each
paper with scenes configs must have ``golden_ci.yaml``; its ``ci`` rows run end to end on the
tiny scenes data (training included) and ``capbench leaderboard check --profile ci --strict`` must pass.
Regenerate the golden file after an intended change with
``capbench reproduce PAPER --profile ci --force --write-golden``.
"""

from __future__ import annotations

import json

import pytest
import yaml

from capbench.bench.catalog import Catalog
from capbench.bench.golden import golden_path
from capbench.cli import main

# The suite last: it scores the checkpoints the papers' ci rows wrote in this module's shared
# results folder, instead of training them again.
PAPERS = sorted(
    (
        key
        for key, paper in Catalog.discover().papers.items()
        if any("scenes" in row.configs for t in paper.tables.values() for row in t.rows.values())
    ),
    key=lambda key: (key == "suite", key),
)


@pytest.fixture(scope="module")
def shared_dirs(tmp_path_factory):
    """One results and cache folder for every paper of this module (papers write disjoint
    records; the scenes pretraining their rows share is trained once)."""
    base = tmp_path_factory.mktemp("ci_golden")
    return base / "results", base / "cache"


def test_some_paper_is_implemented():
    assert "gordo2017" in PAPERS


@pytest.mark.parametrize("paper", PAPERS)
def test_every_implemented_paper_has_ci_golden_numbers(paper):
    catalog = Catalog.discover()
    assert golden_path(catalog.paper(paper), "ci").is_file(), (
        f"{paper} has scenes rows but no golden_ci.yaml: CI would not check it"
    )


@pytest.mark.parametrize("paper", PAPERS)
def test_ci_rows_reproduce_their_golden_numbers(
    paper, tiny_scenes, monkeypatch, capsys, tmp_path, default_torch_threads, shared_dirs
):
    monkeypatch.setenv("CAPBENCH_SCENES", str(tiny_scenes))
    monkeypatch.setenv("CAPBENCH_RESULTS", str(shared_dirs[0]))
    monkeypatch.setenv("CAPBENCH_CACHE", str(shared_dirs[1]))
    assert main(["reproduce", paper, "--profile", "ci"]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "check", "--paper", paper, "--profile", "ci", "--strict"]) == 0, (
        capsys.readouterr().out
    )
    assert "within tolerance" in capsys.readouterr().out

    # The gate is live: move one reproduced number out of tolerance and the check must name it.
    from capbench import paths

    golden = yaml.safe_load(golden_path(Catalog.discover().paper(paper), "ci").read_text())
    records = sorted((paths.results_root() / paper / "records").rglob("ci-s0-*.json"))
    # a record computed by its own row (not a copy of another table's identical row), and one
    # of its metrics that its table's golden numbers track (a table may report fewer metrics
    # than the row computes)
    record, doc, metric = next(
        (r, d, m)
        for r in records
        if "result_from" not in (d := json.loads(r.read_text())).get("extra", {})
        for m in sorted(d["metrics"])
        if m in golden["tables"].get(d["table"], {}).get(d["row"], {})
    )
    # 10 points beyond the golden value's own tolerance (a seed-noisy cell can have a wide one)
    cell = golden["tables"][doc["table"]][doc["row"]][metric]
    doc["metrics"][metric] = cell["value"] + cell["tolerance"] + 10.0
    record.write_text(json.dumps(doc))
    assert main(["leaderboard", "check", "--paper", paper, "--profile", "ci", "--strict"]) == 1
    out = capsys.readouterr()
    assert f"{doc['row']} {metric}" in out.out + out.err
