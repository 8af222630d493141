"""gordo2017's METEOR row end to end on tiny scenes (slow: starts METEOR's JVM; `make
test-slow` installs Java when it is missing)."""

from __future__ import annotations

import json

import pytest

from capbench import paths
from capbench.cli import main


@pytest.mark.slow
def test_meteor_row_scores_the_user_study_on_tiny_scenes(tiny_scenes, monkeypatch, capsys):
    monkeypatch.setenv("CAPBENCH_SCENES", str(tiny_scenes))
    args = ["reproduce", "gordo2017", "--profile", "scenes", "--rows", "meteor,random"]
    tiny = ["scenes_data=tiny", "eval.n_database=30", "eval.n_queries=30", "eval.r_max=10",
            "row.meteor_triplets=40"]  # fmt: skip
    for kv in tiny:
        args += ["--set", kv]
    assert main(args) == 0, capsys.readouterr().err
    (path,) = (paths.results_root() / "gordo2017" / "records" / "table1" / "meteor").glob("*.json")
    rec = json.loads(path.read_text())
    assert set(rec["metrics"]) == {"us"} and 0.0 <= rec["metrics"]["us"] <= 100.0
    assert rec["n_scored"] == 40 and rec["extra"]["segments"] > 0
