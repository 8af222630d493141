"""`--launcher slurm`: dry run prints valid sbatch parameters; submitit's local executor runs a row."""

from __future__ import annotations

import pytest
import yaml

from capbench.bench.launchers import SlurmSettings
from capbench.bench.record import iter_record_paths, read_record


def test_dry_run_prints_submission_and_writes_nothing(cli, results, tmp_path):
    profile = tmp_path / "cluster.yaml"
    profile.write_text(yaml.safe_dump({"partition": "gpu", "account": "proj1", "gpus_per_node": 2, "time_min": 90,
                                       "setup": ["module load cuda"]}))  # fmt: skip
    rc, out, _ = cli(
        "reproduce", "toypaper", "--table", "t1", "--rows", "a", "--profile", "paper",
        "--launcher", "slurm", "--cluster", str(profile), "--gpus-per-node", "4", "--nodes", "2", "--dry-run",
    )  # fmt: skip
    assert rc == 0, out
    assert "== [1/1] toypaper/t1/a [paper seed 0" in out
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj1",
        "#SBATCH --gpus-per-node=4",  # the option overrides the profile file
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",  # one task per GPU: Lightning DDP over SLURM
        "#SBATCH --time=90",
        "module load cuda",
    ):
        assert line in out
    assert "row context: accelerator=gpu devices=4 num_nodes=2" in out
    assert not results.exists()  # a dry run writes nothing


def test_cluster_profile_rejects_unknown_keys(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("partiton: gpu\n")
    try:
        SlurmSettings.from_file(bad)
    except ValueError as err:
        assert "partiton" in str(err) and str(bad) in str(err)
    else:
        raise AssertionError("unknown key accepted")


def test_submitit_local_executor_runs_a_row(cli, results):
    # t1/a and t2/a2 share one config: one submitted job computes it once, writes two records
    rc, out, err = cli(
        "reproduce", "toypaper", "--rows", "a,a2", "--launcher", "slurm",
        "--submitit-cluster", "local", "--gpus-per-node", "0", "--cpus-per-task", "1", "--time-min", "5", "--wait",
    )  # fmt: skip
    assert rc == 0, out + err
    assert out.count("submitted ") == 1 and "submitted toypaper/t1/a [scenes seed 0" in out
    assert "+ t2/a2 as job" in out and "finished toypaper/t1/a" in out
    recs = {r.table: r for r in map(read_record, iter_record_paths(results, "toypaper"))}
    assert recs["t1"].metrics == {"mean": 2.0, "max": 3.0} == recs["t2"].metrics
    assert recs["t2"].extra["result_from"].startswith("toypaper/t1/a ")
    assert list((results / "toypaper" / "slurm").glob("*/*_log.out"))  # submitit's job logs


def test_preempted_group_is_requeued_with_the_same_rows(toy, results):
    from capbench.bench.catalog import Catalog
    from capbench.bench.runner import RowGroup, RunOptions, group_jobs, plan

    jobs = plan(
        Catalog.discover([toy]), "toypaper", RunOptions(seeds=2), rows=["a", "a2", "b"]
    ).jobs
    groups = group_jobs(jobs)
    # (a, seed 0) + (a2, seed 0) share a config; so do the seed-1 pair; b has two seeds alone
    assert [[j.row for j in g.jobs] for g in groups] == [["a", "a2"], ["a", "a2"], ["b"], ["b"]]
    resubmission = groups[0].checkpoint()
    assert isinstance(resubmission.function, RowGroup)
    assert resubmission.function.jobs == groups[0].jobs


def test_row_slurm_section_overrides_cluster_settings_without_changing_the_hash(cli, results):
    base = ("reproduce", "toypaper", "--table", "t1", "--rows", "a", "--launcher", "slurm",
            "--gpus-per-node", "1", "--dry-run")  # fmt: skip
    rc, plain, _ = cli(*base)
    assert rc == 0 and "#SBATCH --gpus-per-node=1" in plain
    rc, out, _ = cli(*base, "--set", "slurm.gpus_per_node=8", "--set", "slurm.time_min=600")
    assert rc == 0
    assert "#SBATCH --gpus-per-node=8" in out and "#SBATCH --time=600" in out
    assert "row context: accelerator=gpu devices=8 num_nodes=1" in out
    record_line = next(line for line in plain.splitlines() if line.startswith("record: "))
    assert record_line in out  # same config hash, same record
    rc, _, err = cli(*base, "--set", "slurm.gpu=8")
    assert rc == 2 and "slurm: unknown keys ['gpu']" in err


def test_slurm_without_submitit_names_the_extra(cli, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "submitit" else real(name, *a)
    )
    rc, _, err = cli("reproduce", "toypaper", "--rows", "a", "--launcher", "slurm", "--dry-run")
    assert rc == 2
    assert "--launcher slurm needs submitit: pip install 'capbench[slurm]'" in err
    rc, _, err = cli("reproduce", "toypaper", "--rows", "a", "--launcher", "slurm", "--wandb")
    assert rc == 2 and "pip install 'capbench[slurm]'" in err  # wandb is there: only slurm named


def test_a_row_reading_another_rows_result_is_submitted_after_it(cli, toy, tmp_path):
    """The suite's rows score other rows' checkpoints: on the local executor (no dependencies)
    they are submitted once those jobs have finished; a dry run names what they wait for."""
    extra = tmp_path / "after_rows"
    extra.mkdir()
    (extra / "after_a.scenes.yaml").write_text(
        "bench: {paper: toypaper, table: t1, row: after_a}\n"
        f"base: {toy / 'toypaper' / 'a.scenes.yaml'}\n"
        "encoder: {kind: paper_row, paper: toypaper, row: a}\n"
    )
    base = ("reproduce", "toypaper", "--table", "t1", "--rows", "after_a,a", "--launcher", "slurm",
            "--include", str(extra))  # fmt: skip
    rc, out, _ = cli(*base, "--dry-run")
    assert rc == 0 and "after: toypaper/a (submitted first; afterok dependency)" in out
    rc, out, err = cli(*base, "--submitit-cluster", "local", "--gpus-per-node", "0",
                       "--cpus-per-task", "1", "--time-min", "5", "--wait")  # fmt: skip
    assert rc == 0, out + err
    lines = out.splitlines()

    def first(prefix: str) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(prefix))

    assert first("submitted toypaper/t1/a ") < first("waiting for 1 job(s)")
    assert first("finished toypaper/t1/a ") < first("submitted toypaper/t1/after_a ")
    assert out.count("finished toypaper/t1/a ") == 1
    assert "finished toypaper/t1/after_a " in out


def test_a_forced_dry_run_keeps_the_rows_workdirs(cli, results):
    """--force clears a row's workdir when it is submitted; a dry run submits nothing."""
    assert cli("reproduce", "toypaper", "--table", "t1", "--rows", "a")[0] == 0
    (workdir,) = (results / "toypaper" / "work").iterdir()
    (workdir / "keep.txt").write_text("a checkpoint")
    rc, out, _ = cli("reproduce", "toypaper", "--table", "t1", "--rows", "a", "--force",
                     "--launcher", "slurm", "--dry-run")  # fmt: skip
    assert rc == 0 and "== [1/1] toypaper/t1/a" in out
    assert (workdir / "keep.txt").is_file()


def _after(out: str) -> dict[str, str]:
    """Each row of a dry run's output that waits on others -> the rows it waits on."""
    after: dict[str, str] = {}
    row = ""
    for line in out.splitlines():
        if line.startswith("== ["):
            row = line.split()[2]
        elif line.startswith("after: "):
            after[row] = line.removeprefix("after: ").split(" (")[0]
    return after


def test_rows_sharing_a_cached_captioner_wait_for_the_first_that_trains_it(capsys):
    """mopuri2017's fic, bord, concat and fused rows and its captioner rows all train the same two
    captioners on first use, in one cache folder: on a cluster only the first row of each
    captioner trains it, the others start after it (afterok)."""
    from capbench.cli import main

    assert main(["reproduce", "mopuri2017", "--profile", "ci", "--launcher", "slurm",
                 "--dry-run"]) == 0  # fmt: skip
    assert _after(capsys.readouterr().out) == {
        "mopuri2017/rpascal/concat": "mopuri2017/bord, mopuri2017/fic",
        "mopuri2017/rpascal/fused": "mopuri2017/bord, mopuri2017/fic",
        "mopuri2017/captioners/show_and_tell": "mopuri2017/fic",
        "mopuri2017/captioners/region_captioner": "mopuri2017/bord",
    }


def test_rows_sharing_a_trained_gordo_model_wait_for_the_first_that_trains_it(capsys):
    """(V+T, V) and (V+T, V+T) train one model in one cache folder (they differ at query time
    only): as two jobs they trained it at once; the second now starts after the first."""
    from capbench.cli import main

    assert main(["reproduce", "gordo2017", "--profile", "ci", "--launcher", "slurm",
                 "--dry-run"]) == 0  # fmt: skip
    after = _after(capsys.readouterr().out)
    assert after["gordo2017/table2/proposed_vt_vt"] == "gordo2017/proposed_vt_v"
    assert "gordo2017/table2/proposed_v_v" not in after  # another model: its own
    assert after["gordo2017/table1/generated_captions_tfidf"] == "mopuri2017/show_and_tell"


def test_a_chain_of_rows_is_submitted_in_stages(cli, toy, tmp_path):
    """z2 reads z1's result and z1 reads a's: three stages, each submitted once the jobs it reads
    from have finished (on SLURM: afterok on them). There used to be two stages at most, and
    the third row then started at once."""
    extra = tmp_path / "chain"
    extra.mkdir()
    for row, reads in (("z1", "a"), ("z2", "z1")):
        (extra / f"{row}.scenes.yaml").write_text(
            f"bench: {{paper: toypaper, table: t1, row: {row}}}\n"
            f"base: {toy / 'toypaper' / 'a.scenes.yaml'}\n"
            f"encoder: {{kind: paper_row, paper: toypaper, row: {reads}}}\n"
        )
    rc, out, err = cli("reproduce", "toypaper", "--table", "t1", "--rows", "z2,z1,a",
                       "--launcher", "slurm", "--include", str(extra), "--submitit-cluster",
                       "local", "--gpus-per-node", "0", "--cpus-per-task", "1", "--time-min",
                       "5", "--wait")  # fmt: skip
    assert rc == 0, out + err
    lines = out.splitlines()

    def first(prefix: str) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(prefix))

    assert first("finished toypaper/t1/a ") < first("submitted toypaper/t1/z1 "), out
    assert first("finished toypaper/t1/z1 ") < first("submitted toypaper/t1/z2 "), out
    assert all(out.count(f"finished toypaper/t1/{r} ") == 1 for r in ("a", "z1", "z2")), out


def test_rows_waiting_on_each_other_are_refused():
    from types import SimpleNamespace

    from capbench.bench import launchers

    def job(row: str, reads: str) -> SimpleNamespace:
        config = {"encoder": {"kind": "paper_row", "paper": "p", "row": reads}}
        return SimpleNamespace(paper="p", row=row, profile="ci", seed=0, config=config)

    groups = [
        SimpleNamespace(jobs=[job("a", "b")], name="a"),
        SimpleNamespace(jobs=[job("b", "a")], name="b"),
    ]
    with pytest.raises(ValueError, match="rows that wait on each other: a -> b -> a"):
        launchers.dependency_stages(groups, [])
