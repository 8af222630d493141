"""`capbench reproduce` on the toy paper: records, skipping, --force, resume, failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from capbench.bench.config import config_hash, resolve_config
from capbench.bench.record import iter_record_paths, read_record
from capbench.bench.runner import check_scenes_version, ensure_scenes_data
from capbench.data.scenes.generate import GENERATOR_VERSION
from capbench.file_lock import TRAIN_LOCK
from tests.lock_holder import hold


def _values(toy: Path, name: str) -> list[float]:
    return yaml.safe_load((toy / "toypaper" / name).read_text())["data"]["values"]


def test_first_seed_reruns_one_seed_alone(cli, toy, results):
    rc, out, _ = cli("reproduce", "toypaper", "--table", "t1", "--rows", "a", "--first-seed", "2")
    assert rc == 0, out
    names = sorted(p.name for p in iter_record_paths(results, "toypaper"))
    assert len(names) == 1 and names[0].startswith("scenes-s2-")
    rc, _, err = cli("reproduce", "toypaper", "--first-seed", "1", "--write-golden")
    assert rc == 2 and "--write-golden writes from seeds 0..N-1" in err
    assert cli("reproduce", "toypaper", "--first-seed", "-1")[0] == 2


def test_reproduce_writes_complete_records(cli, toy, results):
    rc, out, _ = cli("reproduce", "toypaper", "--table", "t1", "--seeds", "2")
    assert rc == 0, out
    assert "skip toypaper/t1/c: pending: needs the toy METEOR scorer" in out
    assert "[6/6]" in out  # a, b, mine x 2 seeds, with a progress counter
    paths = iter_record_paths(results, "toypaper")
    assert sorted(p.relative_to(results).as_posix() for p in paths)[:2] == [
        f"toypaper/records/t1/a/scenes-s0-{config_hash(resolve_config(toy / 'toypaper/a.scenes.yaml'))[:8]}.json",
        f"toypaper/records/t1/a/scenes-s1-{config_hash(resolve_config(toy / 'toypaper/a.scenes.yaml'))[:8]}.json",
    ]
    rec = read_record(paths[0])
    values = _values(toy, "a.scenes.yaml")
    assert rec.metrics == {"mean": float(np.mean(values)), "max": float(np.max(values))}
    assert rec.n_scored == len(values)
    assert rec.config["data"]["values"] == values and "base" not in rec.config  # resolved config
    assert rec.config_hash == config_hash(rec.config)
    assert rec.curves["prefix_mean"]["y"] == list(np.cumsum(values) / np.arange(1, len(values) + 1))
    assert rec.packages["torch"] and rec.packages["lightning"]
    assert rec.device["kind"] in {"cpu", "cuda"} and rec.device["count"] >= 1
    assert rec.git["sha"] is None or len(rec.git["sha"]) == 40
    assert rec.extra["seed_seen"] == 0 and rec.wall_time_s >= 0
    # Lightning's CSV logger wrote the final metrics in the work dir
    csv = next((results / "toypaper/work").glob("a-scenes-s0-*/runner/version_0/metrics.csv"))
    assert "mean" in csv.read_text().splitlines()[0]
    # seeds change noisy rows, within the noise amplitude of the true mean
    b = [read_record(p) for p in paths if "/b/" in p.as_posix()]
    b_values = _values(toy, "b.scenes.yaml")
    assert b[0].metrics["mean"] != b[1].metrics["mean"]
    assert all(abs(r.metrics["mean"] - np.mean(b_values)) <= 0.5 for r in b)


def test_second_run_skips_and_force_reruns(cli, results):
    assert cli("reproduce", "toypaper", "--rows", "a", "--table", "t1")[0] == 0
    path = iter_record_paths(results, "toypaper")[0]
    first = read_record(path)
    rc, out, _ = cli("reproduce", "toypaper", "--rows", "a", "--table", "t1")
    assert rc == 0 and f"done: {path}" in out and "0/0 row run(s)" in out
    assert read_record(path).started == first.started
    rc, out, _ = cli("reproduce", "toypaper", "--rows", "a", "--table", "t1", "--force")
    assert rc == 0 and "1/1 row run(s) succeeded" in out
    # from scratch: the work dir (checkpoints of the first run, maybe of older code) is gone
    assert read_record(path).extra == {**first.extra, "attempts": 1, "resumed": False}


def test_force_does_not_delete_a_workdir_another_process_trains_in(cli, results, tmp_path):
    """``--force`` deleted a row's workdir under a run still training there (another terminal, a
    SLURM job of the row): its files went, and with its lock file gone this run trained beside
    it. It now stops, naming the holder, and deletes nothing; once the holder is gone it runs."""
    assert cli("reproduce", "toypaper", "--rows", "a", "--table", "t1")[0] == 0
    path = iter_record_paths(results, "toypaper")[0]
    workdir = next((results / "toypaper/work").glob("a-scenes-s0-*"))
    kept = [p.relative_to(workdir) for p in workdir.rglob("*")]
    assert kept
    release = tmp_path / "release"
    holder = hold(workdir / "fit" / TRAIN_LOCK, release)
    try:
        rc, out, err = cli("reproduce", "toypaper", "--rows", "a", "--table", "t1", "--force")
    finally:
        release.touch()
        holder.wait(timeout=60)
    assert rc == 1
    assert f"capbench reproduce: error: --force would delete {workdir} (row toypaper/t1/a" in err
    assert f"is training in {workdir / 'fit'}" in err and "Traceback" not in err
    now = {p.relative_to(workdir) for p in workdir.rglob("*")}
    assert now - {Path("fit"), Path("fit", TRAIN_LOCK)} == set(kept)  # nothing deleted
    rc, out, _ = cli("reproduce", "toypaper", "--rows", "a", "--table", "t1", "--force")
    assert rc == 0 and "1/1 row run(s) succeeded" in out
    assert read_record(path).extra["attempts"] == 1


def test_changed_config_gets_a_new_record(cli, results):
    assert cli("reproduce", "toypaper", "--rows", "a", "--table", "t1")[0] == 0
    assert (
        cli("reproduce", "toypaper", "--rows", "a", "--table", "t1", "--set", "model.noise=0.25")[0]
        == 0
    )
    recs = [read_record(p) for p in iter_record_paths(results, "toypaper")]
    assert len({r.config_hash for r in recs}) == 2
    assert {r.config["model"]["noise"] for r in recs} == {0.0, 0.25}


def test_interrupted_row_resumes_in_its_workdir(cli, results):
    args = (
        "reproduce",
        "toypaper",
        "--table",
        "t1",
        "--rows",
        "a,mine",
        "--set",
        "trainer.crash_once=true",
    )
    rc, out, err = cli(*args)
    assert rc == 1
    assert "FAILED toypaper/t1/a" in out and "simulated interruption" in out
    assert "FAILED toypaper/t1/mine" in out  # one failing row does not stop the others
    assert "2 row(s) failed" in err and "Traceback" in err
    assert not iter_record_paths(results, "toypaper")
    rc, out, _ = cli(*args)
    assert rc == 0, out
    rec = read_record(iter_record_paths(results, "toypaper")[0])
    assert rec.extra == {"attempts": 2, "resumed": True, "seed_seen": 0}
    assert Path(rec.checkpoint).parent.name.startswith(f"a-scenes-s0-{rec.hash8}")


def test_malformed_record_is_reported_with_its_path(cli, results):
    assert cli("reproduce", "toypaper", "--rows", "a", "--table", "t1")[0] == 0
    path = iter_record_paths(results, "toypaper")[0]
    raw = json.loads(path.read_text())
    raw["metrics"] = {"mean": "high"}
    path.write_text(json.dumps(raw))
    rc, _, err = cli("reproduce", "toypaper", "--rows", "a", "--table", "t1")
    assert rc == 1 and str(path) in err and "metrics.mean" in err
    rc, _, err = cli("leaderboard", "render")  # the page without it, and the file named
    assert rc == 1 and str(path) in err and "metrics.mean" in err
    assert cli("reproduce", "toypaper", "--rows", "a", "--table", "t1", "--force")[0] == 0
    assert read_record(path).metrics["mean"] == 2.0


def test_list_shows_rows_and_status(cli):
    assert cli("reproduce", "toypaper", "--rows", "a", "--table", "t1", "--seeds", "2")[0] == 0
    rc, out, _ = cli("reproduce", "--list")
    assert rc == 0
    assert "a: Row A -- scenes: 2 record(s) seeds [0, 1]; paper: 0 record(s)" in out
    assert "c: Row C (needs data we lack) -- pending: needs the toy METEOR scorer" in out
    assert "mine (user): My method -- scenes: 0 record(s); paper: no config" in out


def test_unknown_row_is_an_error(cli):
    rc, _, err = cli("reproduce", "toypaper", "--rows", "nope")
    assert rc == 2 and "nope" in err


def test_same_config_in_two_tables_runs_once(cli, results):
    # toypaper t1/a and t2/a2 share a.scenes.yaml: one target call, two records
    rc, out, _ = cli("reproduce", "toypaper", "--rows", "a,a2")
    assert rc == 0 and "(result of toypaper/t1/a" in out
    recs = {r.table: r for r in map(read_record, iter_record_paths(results, "toypaper"))}
    assert recs["t1"].metrics == recs["t2"].metrics
    assert recs["t2"].extra["result_from"].startswith("toypaper/t1/a ")
    assert recs["t1"].extra["attempts"] == 1  # the target really ran only once


def test_target_dataset_root_gets_a_fingerprint(cli, toy, results):
    rc, out, _ = cli("reproduce", "toypaper", "--table", "t1", "--rows", "a",
                     "--set", f"data.root={toy / 'toypaper'}")  # fmt: skip
    assert rc == 0, out
    rec = read_record(iter_record_paths(results, "toypaper")[0])
    assert rec.dataset["name"] == "toy" and rec.dataset["root"] == str(toy / "toypaper")
    files = [p for p in (toy / "toypaper").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert rec.dataset["fingerprint"]["files"] == len(files)
    assert len(rec.dataset["fingerprint"]["sha256"]) == 64


def test_a_failed_config_is_not_run_again_for_another_table(cli, results):
    # t1/a and t2/a2 share a config: when a fails, a2 is reported failed without a second try
    rc, out, err = cli(
        "reproduce", "toypaper", "--rows", "a,a2", "--set", "trainer.crash_once=true"
    )
    assert rc == 1
    assert "FAILED toypaper/t1/a " in out and "FAILED toypaper/t2/a2 " in out
    assert "not run again, its config is that of toypaper/t1/a " in out
    assert err.count("Traceback") == 1 and "2 row(s) failed" in err
    assert not iter_record_paths(results, "toypaper")


def test_row_reuses_the_record_of_the_same_config_in_another_table(cli, results):
    assert cli("reproduce", "toypaper", "--table", "t1", "--rows", "a")[0] == 0
    rc, out, _ = cli("reproduce", "toypaper", "--table", "t2", "--rows", "a2")
    assert rc == 0 and "(result of toypaper/t1/a [scenes seed 0" in out
    recs = {r.table: r for r in map(read_record, iter_record_paths(results, "toypaper"))}
    assert recs["t2"].metrics == recs["t1"].metrics and recs["t2"].extra["attempts"] == 1
    # --force recomputes: the target runs in a2's own work dir
    rc, out, _ = cli("reproduce", "toypaper", "--table", "t2", "--rows", "a2", "--force")
    assert rc == 0 and "result of" not in out
    t2 = read_record(
        next(p for p in iter_record_paths(results, "toypaper") if "/t2/" in p.as_posix())
    )
    assert "result_from" not in t2.extra and t2.extra["attempts"] == 1


def test_scenes_data_of_another_generator_version_is_refused(tmp_path):
    """Old scenes data would give numbers that no golden file describes: say how to rewrite it."""
    (tmp_path / "scenes.json").write_text(
        json.dumps({"complete": True, "request": {"generator_version": "1.0", "size": "demo"}})
    )
    with pytest.raises(ValueError, match=r"generator version '1.0'.*capbench data scenes --out"):
        check_scenes_version(tmp_path)
    (tmp_path / "scenes.json").write_text(
        json.dumps({"request": {"generator_version": GENERATOR_VERSION}})
    )
    check_scenes_version(tmp_path)  # the current version passes


def test_scenes_data_cut_short_is_written_again(tmp_path, capsys):
    """A scenes write that was killed leaves its manifest unfinished and folders missing: the
    rows' data step writes it again rather than failing every row on a missing file."""
    from types import SimpleNamespace

    root = tmp_path / "scenes"
    (root / "coco").mkdir(parents=True)
    (root / "scenes.json").write_text(json.dumps({"complete": False, "request": {"size": "tiny"}}))
    job = SimpleNamespace(data_root=str(root), config={"scenes_data": "tiny"})
    assert ensure_scenes_data([job]) == root
    assert "was not written to its end: writing it again" in capsys.readouterr().out
    assert json.loads((root / "scenes.json").read_text())["complete"] is True
    assert (root / "visual_genome" / "image_data.json").is_file()
    assert ensure_scenes_data([job]) is None  # finished: left as it is


def test_scenes_data_of_another_size_is_used_with_a_warning(tmp_path, capsys):
    """ci rows (tiny) on a folder holding the demo size run there, as the folder is never
    rewritten, but their numbers are not the ci golden's: the warning says so."""
    from types import SimpleNamespace

    request = {"generator_version": GENERATOR_VERSION, "size": "demo"}
    (tmp_path / "scenes.json").write_text(json.dumps({"complete": True, "request": request}))
    for size, warned in (("tiny", True), ("demo", False)):
        job = SimpleNamespace(data_root=str(tmp_path), config={"scenes_data": size})
        assert ensure_scenes_data([job]) is None
        err = capsys.readouterr().err
        assert ("holds the demo scenes data but these rows ask for tiny" in err) is warned, err


def test_record_of_other_data_is_recomputed(cli, toy, tmp_path):
    """A record computed on data that has since changed (say, scenes of an older generator) is
    not reused: its dataset fingerprint no longer matches what is on disk."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "annotations.json").write_text('{"v": 1}')
    args = ("reproduce", "toypaper", "--table", "t1", "--rows", "a", "--set", f"data.root={data}")
    assert cli(*args)[0] == 0
    rc, out, _ = cli(*args)
    assert rc == 0 and "done:" in out  # same data: skipped
    (data / "annotations.json").write_text('{"v": 2}')
    rc, out, _ = cli(*args)
    assert rc == 0 and "done:" not in out and "1/1 row run(s) succeeded" in out
    rc, out, _ = cli(*args)
    assert rc == 0 and "done:" in out  # the new record describes the new data


def test_backbone_weights_flag_sets_an_absolute_path_and_checks_it(cli, results, tmp_path):
    rc, _, err = cli("reproduce", "toypaper", "--rows", "a", "--table", "t1",
                     "--backbone-weights", str(tmp_path / "missing.pth"))  # fmt: skip
    assert rc == 2 and "--backbone-weights" in err and "missing.pth is not a file" in err
    weights = tmp_path / "odd: name #1.pth"  # YAML would misread this unquoted
    weights.write_bytes(b"not read by the toy row")
    rc, out, _ = cli("reproduce", "toypaper", "--rows", "a", "--table", "t1",
                     "--backbone-weights", str(weights), "--allow-random-init")  # fmt: skip
    assert rc == 0, out
    (rec,) = [read_record(p) for p in iter_record_paths(results, "toypaper")]
    assert rec.config["model"]["backbone_weights"] == str(weights.resolve())
    assert rec.config["model"]["allow_random_init"] is True


def test_row_with_an_unset_requirement_is_skipped_with_its_reason(cli, toy, results):
    cfg = toy / "toypaper" / "a.scenes.yaml"
    cfg.write_text(
        cfg.read_text() + 'requires: {data.study: "not public; --set data.study=PATH"}\n'
    )
    rc, out, _ = cli("reproduce", "toypaper", "--table", "t1", "--rows", "a")
    assert rc == 0, out
    assert (
        "skip toypaper/t1/a: needs data.study is not set (not public; --set data.study=PATH)" in out
    )
    assert not iter_record_paths(results, "toypaper")
    rc, out, _ = cli(
        "reproduce", "toypaper", "--table", "t1", "--rows", "a", "--set", "data.study=x"
    )
    assert rc == 0 and "1/1 row run(s) succeeded" in out
    (rec,) = [read_record(p) for p in iter_record_paths(results, "toypaper")]
    # the requirement is not part of what the row computes: same hash as without it
    plain = {k: v for k, v in rec.config.items() if k != "requires"}
    assert rec.config_hash == config_hash(plain)
    cfg.write_text(cfg.read_text() + "requires: [data.study]\n")
    rc, _, err = cli("reproduce", "toypaper", "--table", "t1", "--rows", "a")
    assert rc == 1 and f"{cfg}: requires: must be a mapping, got list" in err


@pytest.mark.parametrize("damage", [b'{"paper": "toyp', b"\xff\xfe\x00garbage"])
def test_list_with_a_damaged_record_names_it(cli, results, damage):
    """A truncated or binary record makes ``--list`` exit 2 naming the file, not a traceback."""
    assert cli("reproduce", "toypaper", "--rows", "a", "--table", "t1")[0] == 0
    path = iter_record_paths(results, "toypaper")[0]
    path.write_bytes(damage)
    rc, _, err = cli("reproduce", "--list")
    assert rc == 2 and f"malformed run record (fix or delete it): {path}" in err


def test_list_of_an_unknown_paper_is_an_error(cli):
    rc, out, err = cli("reproduce", "--list", "nopaper")
    assert rc == 2 and out == "" and "unknown paper 'nopaper'; papers: toypaper" in err
    rc, out, _ = cli("reproduce", "--list", "toypaper")
    assert rc == 0 and out.startswith("toypaper: ")


def test_a_non_zero_rank_runs_the_rows_says_its_rank_and_writes_no_record(
    cli, results, monkeypatch
):
    """Every DDP rank runs the rows (Lightning's launcher starts the command again with
    LOCAL_RANK set); only rank 0 writes records, and the other ranks' lines say whose they are."""
    monkeypatch.setenv("LOCAL_RANK", "1")
    rc, out, _ = cli("reproduce", "toypaper", "--table", "t1", "--rows", "a")
    assert rc == 0, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines and all(line.startswith("(rank 1) ") for line in lines if "[1/1]" in line)
    assert any(line.startswith("(rank 1) 1/1 row run(s) succeeded") for line in lines)
    assert not list(iter_record_paths(results, "toypaper"))


def test_a_row_returning_none_of_its_tables_metrics_is_warned_about(cli, results):
    rc, out, _ = cli("reproduce", "toypaper", "--rows", "a", "--set", "trainer.metric_prefix=my_")
    assert rc == 0  # the record is written: the numbers are real, only their names are off
    assert "warning: toypaper/t1/a " in out
    assert "returned none of the metrics its table shows (mean, max)" in out
    assert "(my_mean, my_max)" in out
    rc, out, _ = cli("reproduce", "toypaper", "--rows", "a", "--force")
    assert rc == 0 and "warning" not in out


def test_a_non_finite_metric_fails_the_row_naming_its_target(cli, results):
    rc, out, _ = cli("reproduce", "toypaper", "--rows", "a", "--set", "data.values=[.nan]")
    assert rc == 1
    assert "returned an invalid result: metrics.mean: must be a finite number, got nan" in out
    assert "toy_target:run" in out
    assert not iter_record_paths(results, "toypaper")


def test_a_row_failing_on_the_users_data_gets_one_line_and_a_bug_its_traceback(cli, results):
    """A paper-profile run without its dataset printed a traceback per row (12 for gordo2017)
    before each row's FAILED line, which already names the folder and the data card."""
    rc, out, err = cli("reproduce", "toypaper", "--rows", "a", "--set", "trainer.missing=/no/toy")
    assert rc == 1 and "FileNotFoundError: toy data not found at /no/toy" in out
    assert "Traceback" not in err
    rc, out, err = cli("reproduce", "toypaper", "--rows", "b", "--set", "trainer.crash_once=true")
    assert rc == 1 and "simulated interruption" in out
    assert "Traceback (most recent call last)" in err and "toy_target.py" in err


def test_the_failures_are_summed_up_by_reason_at_the_end(cli, results):
    """A long log (a paper's rows, or a SLURM wait) ended with "N row(s) failed; see the
    messages above": which rows, and why, had to be searched for."""
    rc, _, err = cli(
        "reproduce", "toypaper", "--table", "t1", "--set", "trainer.missing=/no/toy", "--seeds", "2"
    )
    assert rc == 1
    summary = err[err.index("6 row(s) failed; see the messages above:") :].splitlines()
    assert len(summary) == 2  # one reason
    assert summary[1].startswith("  6 x FileNotFoundError: toy data not found at /no/toy: ")
    assert "toypaper/t1/a [scenes seed 1 " in summary[1] and summary[1].endswith(" and 3 more")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--devices", "abc"], "--devices 'abc': expected a count"),
        (["--devices", "0"], "--devices '0': expected a count"),
        (["--accelerator", "tpux"], "--accelerator 'tpux': expected one of auto, cpu"),
        (["--accelerator", "cpu", "--devices", "0,1"], "--devices 0,1: on the CPU, give a number"),
    ],
)
def test_a_bad_accelerator_or_devices_stops_before_any_row(cli, results, option, message):
    """Each row's Trainer used to refuse it in turn, after its imports: one failure per row."""
    rc, out, err = cli("reproduce", "toypaper", *option)
    assert rc == 2 and err.startswith(f"error: {message}") and "[1/" not in out


def test_a_gpu_asked_for_where_none_is_stops_before_any_row(cli, results, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, _, err = cli("reproduce", "toypaper", "--accelerator", "gpu")
    assert rc == 2 and "no CUDA GPU is visible on this machine" in err


@pytest.mark.parametrize(
    ("text", "override", "message"),
    [
        ("train: {margn: 0.2}\n", None, "row config.train: unknown key(s) margn; known: "),
        ("train: {margin: wide}\n", None, "row config.train.margin: expected float, got 'wide'"),
        ("", "train.margn=0.2", "row config.train: unknown key(s) margn"),
    ],
)
def test_a_method_row_its_method_cannot_read_is_an_error_before_any_row(
    cli, results, toy, text, override, message
):
    """A misspelled key or a mistyped value used to fail the row only when it started (on a
    cluster, after the queue), and ``--dry-run`` said it would run."""
    mine = toy.parent / "mine"
    mine.mkdir()
    cfg = mine / "typo.scenes.yaml"
    cfg.write_text(
        "bench: {paper: toypaper, table: t1, row: typo}\nmethod: semantic_retrieval\n" + text
    )
    extra = ["--set", override] if override else []
    for dry in ([], ["--dry-run"]):
        args = ("reproduce", "toypaper", "--rows", "typo", "--include", str(mine), *dry, *extra)
        rc, out, err = cli(*args)
        assert rc == 1 and f"ERROR toypaper/t1/typo: {cfg}: " in err and message in err
        assert "would run" not in out and "[1/1]" not in out
    assert not iter_record_paths(results, "toypaper")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module:run", "target no_such_module:run: No module named 'no_such_module'"),
        ("toy_target:runn", "target 'toy_target:runn': module toy_target has no 'runn'"),
    ],
)
def test_a_target_that_does_not_import_is_an_error_before_any_row(
    cli, results, toy, target, message
):
    mine = toy.parent / "mine"
    mine.mkdir()
    cfg = mine / "typo.scenes.yaml"
    cfg.write_text(
        f"bench: {{paper: toypaper, table: t1, row: typo}}\ntarget: {target}\n"
        f"base: {toy / 'toypaper' / 'a.scenes.yaml'}\n"
    )
    for dry in ([], ["--dry-run"]):
        rc, out, err = cli("reproduce", "toypaper", "--rows", "typo", "--include", str(mine), *dry)
        assert rc == 1 and f"ERROR toypaper/t1/typo: {cfg}: {message}" in err
        assert "would run" not in out and "[1/1]" not in out


def test_a_required_key_left_null_skips_a_method_row_instead_of_failing_its_reading(
    cli, results, toy
):
    """sariyildiz2020's paper rows set ``model.text_encoder: null`` and require it: the method
    would refuse that null, but the row is skipped with the requirement's reason first."""
    mine = toy.parent / "mine"
    mine.mkdir()
    (mine / "unset.scenes.yaml").write_text(
        "bench: {paper: toypaper, table: t1, row: unset}\nmethod: semantic_retrieval\n"
        'model: {backbone: null}\nrequires: {model.backbone: "a trunk"}\n'
    )
    rc, out, err = cli("reproduce", "toypaper", "--rows", "unset", "--include", str(mine))
    assert rc == 0 and "skip toypaper/t1/unset: needs model.backbone is not set (a trunk)" in out
    assert "ERROR" not in err


def test_a_malformed_set_is_one_error_before_any_row(cli, results):
    """It used to be an ERROR line per row (and a YAML value error, a traceback per row)."""
    for item, message in (("x", "expects key=value"), ("a=[", "the value is not YAML")):
        rc, out, err = cli("reproduce", "toypaper", "--set", item)
        assert rc == 2 and err.count("error: --set") == 1 and message in err
        assert "ERROR toypaper" not in out + err


def test_a_relative_checkpoint_is_recorded_absolute(cli, results, toy):
    """A record is read from other folders (capbench caption --checkpoint, a linked row)."""
    rc, _, _ = cli("reproduce", "toypaper", "--rows", "a", "--set", "trainer.relative_checkpoint=1")
    assert rc == 0
    (path,) = iter_record_paths(results, "toypaper")
    checkpoint = Path(read_record(path).checkpoint)
    assert checkpoint.is_absolute() and checkpoint.is_file()


def test_the_corrupt_images_a_row_skipped_are_named_in_its_record(cli, results):
    """Skipped and counted: each file once, though a loader meets it at every epoch."""
    files = '["record 7: b.jpg: cannot decode", "record 3: a.jpg: cannot decode", ' \
            '"record 7: b.jpg: cannot decode"]'  # fmt: skip
    rc, _, _ = cli(
        "reproduce", "toypaper", "--rows", "a", "--set", f"trainer.corrupt_files={files}"
    )
    assert rc == 0
    (path,) = iter_record_paths(results, "toypaper")
    assert read_record(path).extra["skipped_images"] == [
        "record 3: a.jpg: cannot decode",
        "record 7: b.jpg: cannot decode",
    ]
    rc, _, _ = cli("reproduce", "toypaper", "--rows", "b")
    (path,) = [p for p in iter_record_paths(results, "toypaper") if "/b/" in str(p)]
    assert "skipped_images" not in read_record(path).extra  # a row with none says nothing
