"""`capbench leaderboard render|check|golden|compare` on toy records."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
import yaml

from capbench.bench.paper import Metric
from capbench.bench.record import iter_record_paths, read_record
from capbench.bench.summary import (
    ABOVE,
    NA,
    NOT_MEASURED,
    NOT_RUN,
    OK,
    PENDING,
    REGRESSION,
    WITHIN,
    status_of,
)

HI = Metric("m", "m", higher_is_better=True)
LO = Metric("m", "m", higher_is_better=False)


@pytest.mark.parametrize(
    ("metric", "reference", "mean", "expected"),
    [
        (HI, 10.0, 10.0, OK),
        (HI, 10.0, 10.4, OK),
        (HI, 10.0, 9.6, WITHIN),
        (HI, 10.0, 9.4, REGRESSION),
        (HI, 10.0, 10.6, ABOVE),
        (LO, 10.0, 9.6, OK),
        (LO, 10.0, 10.4, WITHIN),
        (LO, 10.0, 10.6, REGRESSION),
        (HI, None, 3.0, NA),
        (HI, 10.0, None, NOT_RUN),
    ],
)
def test_status_rule(metric, reference, mean, expected):
    assert status_of(metric, reference, 0.5, mean, pending=False) == expected
    assert status_of(metric, reference, 0.5, mean, pending=True) == PENDING


def test_a_metric_missing_from_existing_records_is_not_measured_not_unrun():
    assert status_of(HI, 10.0, 0.5, None, pending=False, ran=True) == NOT_MEASURED
    assert status_of(HI, 10.0, 0.5, 10.0, pending=False, ran=True) == OK
    assert status_of(HI, None, 0.5, None, pending=False, ran=True) == NA


def test_render_leaves_a_malformed_record_off_and_says_so(cli, results, tmp_path):
    """One damaged record among many: the page shows the others, the exit status is 1, and the
    file is named (the whole render used to stop on it). ``check`` still stops on it: a
    regression gate must not pass over a record it cannot read."""
    from capbench.bench.record import iter_record_paths

    assert cli("reproduce", "toypaper", "--seeds", "2")[0] == 0
    damaged = iter_record_paths(results, "toypaper")[0]
    damaged.write_text('{"paper": "toyp')
    out_dir = tmp_path / "board"
    rc, _, err = cli("leaderboard", "render", "--out", str(out_dir))
    assert rc == 1 and (out_dir / "index.html").is_file()
    assert f"error: left off the page, a malformed run record: {damaged}: not valid JSON" in err
    assert "(n=1)" in (out_dir / "toypaper.md").read_text()  # the other seed's record is shown


def test_render_writes_markdown_plots_and_html(cli, results, tmp_path):
    assert cli("reproduce", "toypaper", "--seeds", "2")[0] == 0
    out_dir = tmp_path / "board"
    rc, out, _ = cli("leaderboard", "render", "--out", str(out_dir))
    assert rc == 0
    index = out_dir / "index.html"
    assert out.strip().splitlines()[-1] == str(index.resolve())
    md = (out_dir / "toypaper.md").read_text()
    # Row A: mean of [1, 2, 3] over both seeds, reported 2 -> shown side by side; max not reported
    assert "| Row A | Mean (u) | 2 | n/a | 2 ± 0 (n=2) | n/a | n/a |" in md  # scenes: no golden yet
    assert (
        "| Row A | Max | n/a | n/a | n/a | n/a |" in md
    )  # paper profile: nothing reported, nothing run
    assert "| Row B | Mean (u) | 10 ± 0.3 | n/a | n/a | not run |" in md
    assert "pending: needs the toy METEOR scorer" in md
    assert "| My method (user) |" in md
    assert "| Row A again | Mean x100 | 200 | n/a | 200 ± 0 (n=2) |" in md  # scale applied
    pngs = sorted(p.name for p in (out_dir / "img").glob("*.png"))
    assert (
        "toypaper_t1_scenes_bar_mean.png" in pngs
        and "toypaper_t1_scenes_curve_prefix_mean.png" in pngs
    )
    assert all((out_dir / "img" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    html = index.read_text()
    tables = set(re.findall(r'data-table="([^"]+)" data-profile="([^"]+)"', html))
    assert tables == {("t1", "scenes"), ("t1", "paper"), ("t2", "scenes"), ("t2", "paper")}
    for p in pngs:  # inlined: the page stands alone
        png = base64.b64encode((out_dir / "img" / p).read_bytes()).decode()
        assert f'src="data:image/png;base64,{png}"' in html
    assert 'src="img/' not in html
    assert "http://" not in html and "https://" not in html  # offline: no external assets
    (link,) = re.findall(
        r'download="toypaper.md" href="data:text/markdown;charset=utf-8;base64,([^"]+)"', html
    )
    assert base64.b64decode(link).decode() == md


def test_render_shows_the_profiles_asked_for(cli, results, tmp_path):
    """A user's ci-profile row was left off a page whose scenes rows had records (ci is shown
    only where nothing ran on scenes); ``--profile`` says which tables to draw."""
    assert cli("reproduce", "toypaper", "--rows", "a")[0] == 0
    for asked, tables in (
        ([], {"scenes", "paper"}),
        (["--profile", "scenes"], {"scenes"}),
        (["--profile", "paper", "--profile", "ci"], {"ci", "paper"}),
    ):
        out_dir = tmp_path / "-".join(asked or ["default"])
        assert cli("leaderboard", "render", "--out", str(out_dir), *asked)[0] == 0
        html = (out_dir / "index.html").read_text()
        assert {p for _, p in re.findall(r'data-table="([^"]+)" data-profile="([^"]+)"', html)} == (
            tables
        )
        md = (out_dir / "toypaper.md").read_text()
        assert {p for p in ("scenes", "ci", "paper") if f"— {p} profile" in md} == tables


def test_golden_then_check_passes_and_perturbation_fails(cli, toy, results):
    rc, out, _ = cli("reproduce", "toypaper", "--seeds", "2", "--write-golden")
    assert rc == 0 and "running 3 seeds" in out  # golden numbers need a spread over 3 seeds
    golden = yaml.safe_load((toy / "toypaper" / "golden_scenes.yaml").read_text())
    a = golden["tables"]["t1"]["a"]["mean"]
    assert (a["value"], a["std"], a["n"]) == (2.0, 0.0, 3)
    assert a["tolerance"] == pytest.approx(1e-4 * 2.0)  # seed-independent: the noise floor
    b_recs = [
        read_record(p) for p in iter_record_paths(results, "toypaper") if "/t1/b/" in p.as_posix()
    ]
    b_means = [r.metrics["mean"] for r in b_recs]
    b = golden["tables"]["t1"]["b"]["mean"]
    assert b["value"] == pytest.approx(sum(b_means) / 3)
    spread = float(np.std(b_means, ddof=1))
    # from the spread: the prediction interval of one more run around a 3-seed mean (b is the
    # only row of t1 whose "mean" varies with the seed, so the pooled spread is its own)
    from capbench.bench.golden import spread_factor

    assert spread > 0 and b["tolerance"] == pytest.approx(spread_factor(3) * spread, rel=1e-6)
    assert golden["tables"]["t2"]["a2"]["mean"]["value"] == 200.0  # scaled like the tables
    assert "c" not in golden["tables"]["t1"]  # pending rows have no golden numbers

    rc, out, _ = cli("leaderboard", "check")
    assert rc == 0 and "ok: 7 cell(s) within tolerance (scenes profile)" in out

    path = next(p for p in iter_record_paths(results, "toypaper") if "/t1/a/" in p.as_posix())
    raw = json.loads(path.read_text())
    raw["metrics"]["mean"] -= 1.5  # seed 0 drops by 1.5 -> the mean over 3 seeds drops by 0.5
    path.write_text(json.dumps(raw))
    rc, out, err = cli("leaderboard", "check")
    assert rc == 1 and "1 cell(s) out of tolerance" in err
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert fails == [
        "FAIL toypaper t1 a mean: reproduced 1.5 (n=3) vs reference 2, delta -0.5, tolerance 0.0002 -> regression"
    ]
    # a metric the records no longer carry is named as such, not as a row that never ran
    for p in iter_record_paths(results, "toypaper"):
        if "/t1/b/" in p.as_posix():
            raw = json.loads(p.read_text())
            del raw["metrics"]["max"]
            p.write_text(json.dumps(raw))
    rc, out, _ = cli("leaderboard", "check")
    assert rc == 1 and "FAIL toypaper t1 b max: the scenes record(s) of this row have no max" in out


def test_check_names_cells_whose_tolerance_would_pass_a_collapse_to_zero(cli, toy, results):
    """A tolerance measured from a high-variance metric can reach zero: such a cell passes a run
    that scored 0, and `ok` alone would hide that it gates little."""
    assert cli("reproduce", "toypaper", "--seeds", "3", "--write-golden")[0] == 0
    rc, out, _ = cli("leaderboard", "check")
    assert rc == 0 and "weak gate" not in out
    path = toy / "toypaper" / "golden_scenes.yaml"
    golden = yaml.safe_load(path.read_text())
    golden["tables"]["t1"]["a"]["mean"]["tolerance"] = 2.0  # its value is 2
    path.write_text(yaml.safe_dump(golden))
    rc, out, _ = cli("leaderboard", "check")
    assert (
        rc == 0 and "ok: 7 cell(s) within tolerance" in out
    )  # still passes: a note, not a failure
    assert (
        "weak gate toypaper (scenes): 1 cell(s) whose tolerance reaches zero, so a collapse to 0 "
        "would pass them: t1/a/mean"
    ) in out


def test_check_names_golden_rows_written_from_another_config(cli, toy, results):
    """A config edited after its golden numbers were written leaves references that no current
    command reproduces: the check says which rows."""
    assert cli("reproduce", "toypaper", "--seeds", "3", "--write-golden")[0] == 0
    rc, out, _ = cli("leaderboard", "check")
    assert rc == 0 and "stale golden" not in out
    cfg = toy / "toypaper" / "a.scenes.yaml"
    cfg.write_text(cfg.read_text().replace("[1.0, 2.0, 3.0]", "[1.0, 2.0, 3.5]"))
    rc, out, _ = cli("leaderboard", "check")
    note = next(line for line in out.splitlines() if line.startswith("stale golden"))
    # a.scenes.yaml serves t1/a and t2/a2; t1/b kept its config
    assert note.startswith("stale golden toypaper (scenes): 2 row(s) written from another config")
    assert "t1/a (golden " in note and "t2/a2 (golden " in note and "t1/b" not in note, note
    # the records of the old config still pass the old numbers: only the note tells
    assert rc == 0 and "ok: 7 cell(s) within tolerance" in out


def test_check_paper_profile_reports_missing_and_out_of_tolerance(cli, results):
    assert cli("reproduce", "toypaper", "--profile", "paper")[0] == 0
    rc, out, _ = cli("leaderboard", "check", "--profile", "paper")
    assert rc == 1
    lines = sorted(line for line in out.splitlines() if line.startswith("FAIL"))
    # a.paper: mean([1.5, 2.5, 2.0]) = 2.0 == reported 2.0 -> ok (max not reported)
    # b.paper: mean([8, 10, 12]) = 10 == reported -> ok; max 12 == reported -> ok
    # a2 has no paper config
    assert len(lines) == 1 and lines[0].startswith("FAIL toypaper t2 a2 mean: no paper config")
    # the scenes profile without golden numbers is a note, not a silent pass
    rc, out, _err = cli("leaderboard", "check", "--paper", "toypaper")
    assert rc == 1 and "no golden_scenes.yaml" in out


def test_compare_explains_the_delta(cli, results, capsys):
    assert cli("reproduce", "toypaper", "--table", "t1", "--rows", "b")[0] == 0
    assert (
        cli("reproduce", "toypaper", "--table", "t1", "--rows", "b", "--set", "model.noise=0.0")[0]
        == 0
    )
    a, b = iter_record_paths(results, "toypaper")
    ra, rb = read_record(a), read_record(b)
    rc, out, _ = cli("leaderboard", "compare", str(a), str(b), include=False)
    assert rc == 0
    assert (
        f"  model.noise: {ra.config['model']['noise']!r} -> {rb.config['model']['noise']!r}" in out
    )
    assert f"  mean (delta {rb.metrics['mean'] - ra.metrics['mean']:+.6g})" in out
    assert "dataset: same" in out and "packages: same" in out and "code (git): same" in out


def test_rows_run_with_overrides_are_shown_and_flagged(cli, tmp_path):
    rc, _, _ = cli(
        "reproduce", "toypaper", "--table", "t1", "--rows", "a", "--set", "data.values=[2.0, 4.0]"
    )
    assert rc == 0
    out_dir = tmp_path / "board"
    assert cli("leaderboard", "render", "--out", str(out_dir))[0] == 0
    md = (out_dir / "toypaper.md").read_text()
    assert re.search(
        r"\| Row A \| Mean \(u\) \| 2 \| n/a \| 3 ± 0 \(n=1\) \[config [0-9a-f]{8}: overridden\] \|",
        md,
    )


def test_malformed_golden_file_is_an_error_naming_it(cli, toy):
    path = toy / "toypaper" / "golden_scenes.yaml"
    path.write_text(
        yaml.safe_dump({"tables": {"t1": {"a": {"mean": {"value": "two", "tolerance": 0.1}}}}})
    )
    rc, _, err = cli("leaderboard", "check")
    assert rc == 2 and str(path) in err and "tables.t1.a.mean.value must be a number" in err


def test_golden_refresh_keeps_rows_not_rerun(cli, toy, results):
    assert cli("reproduce", "toypaper", "--table", "t1", "--rows", "a,b", "--write-golden")[0] == 0
    path = toy / "toypaper" / "golden_scenes.yaml"
    before = yaml.safe_load(path.read_text())["tables"]["t1"]
    for p in iter_record_paths(results, "toypaper"):
        if "/t1/b/" in p.as_posix():
            p.unlink()
    # a's golden numbers move with its records; b has no records now and keeps its own
    for path_a in iter_record_paths(results, "toypaper"):
        if "/t1/a/" in path_a.as_posix():  # all three seeds
            raw = json.loads(path_a.read_text())
            raw["metrics"]["mean"] = 4.0
            path_a.write_text(json.dumps(raw))
    rc, out, _ = cli("leaderboard", "golden", "toypaper")
    assert rc == 0 and "wrote 2 golden value(s)" in out
    after = yaml.safe_load(path.read_text())["tables"]["t1"]
    assert after["b"] == before["b"]
    assert after["a"]["mean"]["value"] == 4.0 and before["a"]["mean"]["value"] == 2.0


def test_a_row_refreshed_alone_pools_its_spread_with_the_rows_the_file_keeps(cli, toy, results):
    """Without the kept rows, a row rewritten alone from 3 seeds has 2 degrees of freedom
    (t = 31.6 at 99.9 %): a tolerance that checks nothing."""
    from capbench.bench.golden import pooled_spread, spread_factor

    noisy = ("--set", "model.noise=0.5")  # both rows vary with the seed
    assert (
        cli("reproduce", "toypaper", "--table", "t1", "--rows", "a,b", "--write-golden", *noisy)[0]
        == 0
    )
    path = toy / "toypaper" / "golden_scenes.yaml"
    for p in iter_record_paths(results, "toypaper"):
        if "/t1/b/" in p.as_posix():
            p.unlink()
    assert cli("leaderboard", "golden", "toypaper")[0] == 0
    t1 = yaml.safe_load(path.read_text())["tables"]["t1"]
    a, b = t1["a"]["mean"], t1["b"]["mean"]
    assert a["n"] == b["n"] == 3 and a["std"] > 0 and b["std"] > 0
    pooled = pooled_spread([(a["std"], 3), (b["std"], 3)])
    assert pooled is not None and pooled[1] == 4
    assert a["tolerance"] == pytest.approx(spread_factor(3, 4) * pooled[0], rel=1e-6)
    assert a["tolerance"] < spread_factor(3, 2) * a["std"]


def test_golden_numbers_refuse_fewer_than_three_seeds(cli, toy, results):
    """A tolerance is measured from the spread over seeds: one seed has none."""
    assert cli("reproduce", "toypaper", "--table", "t1", "--rows", "a")[0] == 0
    rc, _, err = cli("leaderboard", "golden", "toypaper")
    assert rc == 1 and "need 3 seeds" in err and "t1/a (1)" in err
    assert not (toy / "toypaper" / "golden_scenes.yaml").exists()


def test_check_can_be_narrowed_to_the_rows_a_partial_run_made(cli, results):
    assert (
        cli("reproduce", "toypaper", "--profile", "paper", "--table", "t1", "--rows", "a")[0] == 0
    )
    # --strict (CI): rows not run are failures, so CI cannot pass by running less
    rc, out, _ = cli("leaderboard", "check", "--profile", "paper", "--table", "t1", "--strict")
    assert rc == 1 and "FAIL toypaper t1 b mean: no paper record" in out
    # by default they are listed, and what was run is checked
    rc, out, _ = cli("leaderboard", "check", "--profile", "paper", "--table", "t1")
    assert rc == 0 and "not run toypaper t1 b mean: no paper record" in out
    # narrowed to exactly the partial run: nothing left to list
    rc, out, _ = cli("leaderboard", "check", "--profile", "paper", "--table", "t1", "--rows", "a")
    assert rc == 0 and "within tolerance" in out and "not run" not in out


def test_check_names_an_unknown_table_or_row(cli, results):
    """A typo in --table or --rows is named, not answered with 'nothing to check'."""
    rc, _, err = cli("leaderboard", "check", "--profile", "paper", "--table", "t9")
    assert rc == 2 and "unknown table 't9' in any paper; tables: t1, t2" in err
    rc, _, err = cli(
        "leaderboard", "check", "--profile", "paper", "--table", "t1", "--rows", "a,zz"
    )
    assert rc == 2 and "unknown rows ['zz'] in any paper, table 't1'; rows: a, b" in err
    rc, _, err = cli("leaderboard", "check", "--paper", "toypaper", "--rows", "nope")
    assert rc == 2 and "unknown rows ['nope'] in paper 'toypaper'" in err


def test_check_notes_records_made_with_other_package_versions(cli, results, tmp_path, monkeypatch):
    from importlib import metadata

    from capbench.bench import constraints

    assert cli("reproduce", "toypaper", "--write-golden")[0] == 0
    pins = tmp_path / "constraints.txt"
    pins.write_text('numpy==0.0.1\nscipy==0.0.2; platform_machine == "no-such-machine"\n')
    monkeypatch.setattr(constraints, "default_path", lambda: pins)
    rc, out, _ = cli("leaderboard", "check")
    assert rc == 0  # a note, not a failure: the numbers themselves are within tolerance
    note = "note: records made with other versions than constraints.txt pins: "
    assert f"{note}numpy {metadata.version('numpy')} (pinned 0.0.1)" in out.splitlines()
    pins.write_text(f"numpy=={metadata.version('numpy')}\n")
    assert "note: records made with other versions" not in cli("leaderboard", "check")[1]


def test_render_shows_the_figures_a_row_drew(cli, results, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert cli("reproduce", "toypaper", "--rows", "a")[0] == 0
    drawn = tmp_path / "attention_7.png"
    fig = plt.figure(figsize=(1, 1))
    fig.savefig(drawn)
    plt.close(fig)
    (path,) = [p for p in iter_record_paths(results) if read_record(p).row == "a"]
    record = json.loads(path.read_text())
    record["extra"]["figures"] = [str(drawn), str(tmp_path / "gone.png")]  # one was deleted
    path.write_text(json.dumps(record))

    out_dir = tmp_path / "board"
    assert cli("leaderboard", "render", "--out", str(out_dir))[0] == 0
    (copy,) = (out_dir / "img").glob("*attention_7.png")
    assert copy.name == "toypaper_t1_scenes_a_attention_7.png"
    assert copy.read_bytes() == drawn.read_bytes()
    png = base64.b64encode(drawn.read_bytes()).decode()
    assert f'src="data:image/png;base64,{png}"' in (out_dir / "index.html").read_text()
    assert f"img/{copy.name}" in (out_dir / "toypaper.md").read_text()
    assert not list((out_dir / "img").glob("*gone*"))


def test_golden_tolerance_is_a_prediction_interval_that_narrows_with_seeds():
    from capbench.bench.golden import spread_factor

    # t(0.995, dof) * sqrt(1 + 1/n): tables of Student's t give 9.925, 4.604, 3.250, 2.738
    assert spread_factor(3, false_alarm=0.01) == pytest.approx(9.925 * (4 / 3) ** 0.5, rel=1e-3)
    assert spread_factor(5, false_alarm=0.01) == pytest.approx(4.604 * 1.2**0.5, rel=1e-3)
    assert spread_factor(10, false_alarm=0.01) == pytest.approx(3.250 * 1.1**0.5, rel=1e-3)
    assert spread_factor(5, dof=32, false_alarm=0.01) == pytest.approx(2.738 * 1.2**0.5, rel=1e-3)
    assert spread_factor(5) > spread_factor(5, dof=32)  # pooling over rows narrows it
    with pytest.raises(ValueError, match="at least 2 seeds"):
        spread_factor(1)


def test_golden_spread_is_pooled_over_the_rows_that_vary_with_the_seed():
    from types import SimpleNamespace

    from capbench.bench.golden import default_tolerance, pooled_spread, spread_factor

    # rows of 5 seeds: sd 0.5 and 1.0 vary; sd 0 (a text proxy) and a single seed are left out
    pooled = pooled_spread([(0.5, 5), (1.0, 5), (0.0, 5), (2.0, 1)])
    assert pooled == (pytest.approx(((0.25 + 1.0) / 2) ** 0.5), 8)
    assert pooled_spread([(0.0, 3), (0.0, 3)]) is None
    metric = SimpleNamespace(scenes_tolerance=None)
    # a row whose own 5 seeds happened to agree closely gets the metric's pooled spread
    lucky = default_tolerance(metric, 11.5, 0.06, 5, pooled)
    assert lucky == pytest.approx(spread_factor(5, 8) * pooled[0])
    assert default_tolerance(metric, 2.0, 0.0, 5, pooled) == pytest.approx(2e-4)  # the floor
    # equal on every seed of a row whose other metrics move: luck, not determinism
    assert default_tolerance(metric, 0.0, 0.0, 3, pooled, row_varies=True) == pytest.approx(
        spread_factor(3, 8) * pooled[0]
    )
    assert default_tolerance(metric, 2.0, 0.0, 5, None, row_varies=True) == pytest.approx(2e-4)
    assert default_tolerance(SimpleNamespace(scenes_tolerance=0.7), 2.0, 1.0, 5, pooled) == 0.7


def test_strict_check_names_a_row_this_machine_cannot_run_instead_of_failing_it(cli, toy, results):
    """A row whose ``requires:`` this machine lacks (METEOR without Java) is skipped by the runner
    with its reason; the strict gate says so and passes on the rest, rather than failing the
    code under test for a missing program. A row that simply was not run still fails."""
    rc, _, _ = cli("reproduce", "toypaper", "--seeds", "3", "--write-golden")
    assert rc == 0
    for p in iter_record_paths(results, "toypaper"):
        if "/t1/b/" in p.as_posix():
            p.unlink()
    cfg = toy / "toypaper" / "b.scenes.yaml"
    cfg.write_text(cfg.read_text() + 'requires: {"executable:no-such-program-xyz": "b runs it"}\n')
    rc, out, _ = cli("reproduce", "toypaper")
    assert rc == 0 and "no-such-program-xyz" in out  # the runner's skip, with the reason
    rc, out, _ = cli("leaderboard", "check", "--strict")
    assert rc == 0, out
    skips = [line for line in out.splitlines() if line.startswith("skip toypaper t1 b")]
    assert skips and all("no-such-program-xyz is not on PATH (b runs it)" in s for s in skips)
    for p in iter_record_paths(results, "toypaper"):
        if "/t1/a/" in p.as_posix():
            p.unlink()
    rc, out, _ = cli("leaderboard", "check", "--strict")
    assert rc == 1 and "FAIL toypaper t1 a mean: no scenes record" in out
