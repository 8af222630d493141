"""``capbench demo``: the shipped plan names rows that exist, and the steps run in order, in one
process, past a failing one, with the failure in the exit status."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from capbench.cli import main
from capbench.commands import demo


def test_the_shipped_plan_names_scenes_rows_that_exist(tmp_path, monkeypatch, capsys):
    """A renamed row fails here, not twenty minutes into `make demo`."""
    monkeypatch.setenv("CAPBENCH_RESULTS", str(tmp_path / "results"))
    plan = demo.load_plan(demo.default_plan_path())
    assert list(plan.papers)[-1] == "suite"  # it scores the paper rows' checkpoints
    assert main(["demo", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for key, rows in plan.papers.items():
        for row in rows:
            assert f"would run {key}/" in out and f"/{row} [scenes seed 0" in out, (key, row)
    for row in plan.user_rows:
        assert f"would write the row '{row.name}' (scenes)" in out
    assert not (tmp_path / "results").exists()  # a dry run writes nothing


def test_steps_run_in_order_past_a_failure(tmp_path, monkeypatch, capsys):
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(
        "papers:\n  suite: [random_init]\n  reed2016: [bow_ds]\n  malali2022: [malali]\n"
        "user_rows:\n  - {encoder: 'mine_enc:build', name: mine, label: Mine}\n"
    )
    (tmp_path / "mine_enc.py").write_text("def build(): ...\n")  # found from the current dir
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the demo puts the current dir on it
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    (scenes / "scenes.json").write_text("{}")  # present: no data step
    monkeypatch.setenv("CAPBENCH_SCENES", str(scenes))
    monkeypatch.setenv("CAPBENCH_RESULTS", str(tmp_path / "results"))
    calls: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        calls.append(argv)
        if argv[:2] == ["reproduce", "reed2016"]:
            return 1
        if argv[:2] == ["reproduce", "malali2022"]:
            raise RuntimeError("boom")
        return 0

    import capbench.cli

    monkeypatch.setattr(capbench.cli, "main", fake_main)
    args = capbench.cli.build_parser("demo").parse_args(
        ["demo", "--plan", str(plan_file), "--set", "train.epochs=1", "--force"]
    )
    assert demo.run(args) == 1
    assert [c[:2] for c in calls] == [
        ["reproduce", "reed2016"],
        ["reproduce", "malali2022"],
        ["reproduce", "suite"],  # last of the papers whatever the file's order
        ["suite", "--encoder"],
        ["leaderboard", "render"],
    ]
    assert calls[0] == ["reproduce", "reed2016", "--rows", "bow_ds", "--profile", "scenes",
                        "--seeds", "1", "--force", "--set", "train.epochs=1"]  # fmt: skip
    assert calls[3] == ["suite", "--encoder", "mine_enc:build", "--name", "mine", "--label", "Mine",
                        "--profile", "scenes", "--seeds", "1", "--force"]  # fmt: skip
    captured = capsys.readouterr()
    assert "malali2022: RuntimeError: boom" in captured.err
    assert "reed2016" in captured.out and "FAILED (exit 1)" in captured.out
    assert captured.out.strip().endswith(
        str(Path(tmp_path, "results", "leaderboard", "index.html"))
    )


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("rows: [a]\n", "expected a mapping with 'papers"),
        ("papers:\n  gordo2017: []\n", "papers.gordo2017: expected a non-empty list"),
        ("papers:\n  gordo2017: [a]\nuser_rows:\n  - {name: x}\n", r"user_rows\[0\]"),
        ("papers: [\n", "not valid YAML"),  # was the parser's message, without the file
    ],
)
def test_a_malformed_plan_names_the_file_and_the_entry(tmp_path, text, match):
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        demo.load_plan(path)
    assert str(path) in str(err.value)


def test_only_names_papers_of_the_plan(tmp_path, capsys):
    assert main(["demo", "--dry-run", "--only", "gordo2017,nosuch"]) == 2
    assert "nosuch" in capsys.readouterr().err


def test_a_user_row_whose_module_is_not_importable_is_skipped_with_the_reason(
    tmp_path, monkeypatch, capsys
):
    """An installed capbench has no examples/: the demo says so instead of failing the step."""
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(
        "papers:\n  reed2016: [bow_ds]\n"
        "user_rows:\n  - {encoder: 'no_such_pkg.enc:build', name: mine}\n"
    )
    monkeypatch.setenv("CAPBENCH_RESULTS", str(tmp_path / "results"))
    assert main(["demo", "--plan", str(plan_file), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "skip mine: no_such_pkg.enc is not importable" in out
    assert "would write the row" not in out


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--seeds", "0"], "error: --seeds must be >= 1, got 0"),
        (["--set", "x"], "error: --set expects key=value (dotted key), got 'x'"),
        (["--set", "a=["], "error: --set 'a=[': the value is not YAML"),
    ],
)
def test_a_bad_option_stops_the_demo_before_any_step(capsys, option, message):
    """--seeds 0 used to run nothing and render the page; a bad --set, one error per row."""
    assert main(["demo", "--dry-run", *option]) == 2
    out = capsys.readouterr()
    assert out.err.startswith(message) and "capbench demo:" not in out.out
