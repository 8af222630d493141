"""Turn catalog rows into jobs and run them: seeds, skip-if-done, work dirs, run records.

A :class:`RowJob` is one (row, profile, seed, config hash). It is a plain picklable object so
the same code runs in this process (local launcher) or in a SLURM task (submitit). The method
target owns training and evaluation; this module owns everything around it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import capbench
from capbench import paths
from capbench.bench.catalog import Catalog, RowRef
from capbench.bench.config import (
    check_row_entry,
    config_hash,
    missing_requirements,
    requirement_text,
    resolve_config,
    resolve_row_target,
    row_target_name,
)
from capbench.bench.provenance import dataset_info, device_info, git_info, package_versions
from capbench.bench.record import RecordError, RunRecord, read_record, record_path, write_record
from capbench.bench.wandb_run import log_final, row_run
from capbench.file_lock import TRAIN_LOCK, held_by
from capbench.methods.protocol import RowContext, RowResult
from capbench.ranks import launch_rank
from capbench.user_errors import user_error_types


@dataclass
class RunOptions:
    """What ``capbench reproduce`` decides for every row of one invocation."""

    profile: str = "scenes"
    seeds: int = 1
    first_seed: int = 0  # seeds first_seed .. first_seed + seeds - 1 (one seed rerun alone)
    force: bool = False
    overrides: tuple[str, ...] = ()
    wandb: bool = False
    results: Path | None = None
    data_root: Path | None = None
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    progress: bool = True


@dataclass
class RowJob:
    """One unit of work; picklable, so submitit can ship it to a SLURM task."""

    paper: str
    table: str
    row: str
    profile: str
    seed: int
    config_path: str
    config: dict[str, Any]
    config_hash: str
    results: str
    data_root: str
    search_paths: list[str] = field(default_factory=list)
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    wandb: bool = False
    progress: bool = True
    force: bool = False
    table_metrics: tuple[str, ...] = ()  # the metrics its table shows (paper.yaml)

    @property
    def name(self) -> str:
        return f"{self.paper}/{self.table}/{self.row} [{self.profile} seed {self.seed} {self.config_hash[:8]}]"

    @property
    def workdir(self) -> Path:
        """Stable per (row, profile, seed, config): a rerun after an interruption lands here."""
        return (
            Path(self.results)
            / self.paper
            / "work"
            / f"{self.row}-{self.profile}-s{self.seed}-{self.config_hash[:8]}"
        )

    @property
    def record_path(self) -> Path:
        return record_path(
            Path(self.results),
            self.paper,
            self.table,
            self.row,
            self.profile,
            self.seed,
            self.config_hash,
        )

    def is_done(self, fingerprints: dict[str, Any] | None = None) -> bool:
        """A complete, valid record exists (a malformed one raises, naming its path) and was
        computed on the data that is on disk now: when its dataset root still exists but its
        fingerprint changed (new data, another generator version), the row is not done.
        ``fingerprints`` memoises the fingerprint per root over one plan."""
        if not self.record_path.is_file():
            return False
        record = read_record(self.record_path)
        return not dataset_changed(record.dataset, fingerprints)

    def __call__(self) -> str:
        """Entry point inside a SLURM task: run unless done; returns the record path."""
        if not self.force and self.is_done():
            return str(self.record_path)
        execute(self)
        return str(self.record_path)


def dataset_changed(dataset: dict[str, Any], fingerprints: dict[str, Any] | None = None) -> bool:
    """Whether the data a record was computed on (its dataset root and fingerprint) differs from
    what is at that root now. Records without a root or fingerprint, or whose root is gone (a
    record copied from another machine) or whose fingerprint the target computed its own way,
    cannot be checked and count as unchanged."""
    root = (dataset or {}).get("root")
    given = (dataset or {}).get("fingerprint")
    recorded = given.get("sha256") if isinstance(given, dict) else None  # else the target's own
    if not root or not recorded or not Path(root).exists():
        return False
    from capbench.data.fingerprint import dataset_fingerprint

    cache = {} if fingerprints is None else fingerprints
    if root not in cache:
        cache[root] = dataset_fingerprint(root)["sha256"]
    return cache[root] != recorded


@dataclass
class RowGroup:
    """Rows that share (profile, seed, config), e.g. one baseline listed in two tables: a SLURM
    job computes them once and writes one record per row."""

    jobs: list[RowJob]

    @property
    def name(self) -> str:
        return self.jobs[0].name + "".join(f" + {j.table}/{j.row}" for j in self.jobs[1:])

    def __call__(self) -> list[str]:
        shared: dict[tuple[str, int, str], _Done] = {}
        for job in self.jobs:
            if job.force or not job.is_done():
                execute(job, shared)
        return [str(j.record_path) for j in self.jobs]

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit calls this on preemption or timeout: requeue the same group; finished rows
        are skipped by their records and the method resumes from its checkpoint in the workdir."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(RowGroup(self.jobs))


def group_jobs(jobs: Iterable[RowJob]) -> list[RowGroup]:
    """Jobs grouped by (profile, seed, config hash), in first-seen order."""
    groups: dict[tuple[str, int, str], list[RowJob]] = {}
    for job in jobs:
        groups.setdefault(_shared_key(job), []).append(job)
    return [RowGroup(g) for g in groups.values()]


@dataclass
class Plan:
    jobs: list[RowJob]
    skipped: list[tuple[str, str]]  # (row name, reason): done, pending, no config
    errors: list[tuple[str, str]] = field(default_factory=list)  # (row name, error): bad config


def plan(
    catalog: Catalog,
    paper: str | None,
    options: RunOptions,
    table: str | None = None,
    rows: Sequence[str] | None = None,
) -> Plan:
    """Jobs to run for the selection, in catalog order, and why the others are skipped."""
    results = Path(options.results or paths.results_root()).resolve()
    default_data = paths.data_root() if options.profile == "paper" else paths.scenes_root()
    data_root = Path(options.data_root or default_data).resolve()
    jobs: list[RowJob] = []
    skipped: list[tuple[str, str]] = []
    errors: list[tuple[str, str]] = []
    fingerprints: dict[str, Any] = {}  # dataset root -> sha256, computed once per plan
    refs: list[RowRef] = list(catalog.rows(paper, table, rows))
    for ref in refs:
        if ref.row.pending:
            skipped.append((ref.name, f"pending: {ref.row.pending}"))
            continue
        cfg_path = ref.row.configs.get(options.profile)
        if cfg_path is None:
            skipped.append((ref.name, f"no {options.profile} config"))
            continue
        try:
            cfg = resolve_config(cfg_path, options.overrides)
            missing = missing_requirements(cfg)
        except (ValueError, OSError) as err:  # PaperSpecError included: one bad row, not all
            errors.append((ref.name, str(err)))
            continue
        if missing:
            why = "; ".join(requirement_text(key, reason) for key, reason in missing)
            skipped.append((ref.name, f"needs {why}"))
            continue
        search_paths = sorted({str(Path(cfg_path).parent), str(ref.paper.dir)})
        try:
            check_row_entry(cfg_path, cfg, search_paths)
        except ValueError as err:  # a PaperSpecError naming the file
            errors.append((ref.name, str(err)))
            continue
        h = config_hash(cfg)
        for seed in range(options.first_seed, options.first_seed + options.seeds):
            job = RowJob(
                paper=ref.paper.key,
                table=ref.table.id,
                row=ref.row.id,
                profile=options.profile,
                seed=seed,
                config_path=str(cfg_path),
                config=cfg,
                config_hash=h,
                results=str(results),
                data_root=str(data_root),
                search_paths=search_paths,
                accelerator=options.accelerator,
                devices=options.devices,
                num_nodes=options.num_nodes,
                wandb=options.wandb,
                progress=options.progress,
                force=options.force,
                table_metrics=tuple(ref.table.metrics),
            )
            try:
                done = not options.force and job.is_done(fingerprints)
            except RecordError as err:  # never overwrite or ignore a malformed record silently
                errors.append((job.name, f"{err} (fix or delete it, or rerun with --force)"))
                continue
            if done:
                skipped.append((job.name, f"done: {job.record_path}"))
            else:
                jobs.append(job)
    return Plan(jobs, skipped, errors)


def _jsonable(value: Any) -> Any:
    """Numpy / torch scalars and arrays become numbers and lists, paths strings: a target's
    ``extra`` must never make the record unwritable after hours of training."""

    def default(obj: Any) -> Any:
        if hasattr(obj, "tolist"):
            return obj.tolist()
        return str(obj)

    return json.loads(json.dumps(value, default=default))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _log_final(job: RowJob, result: RowResult) -> None:
    """The row's final metrics in Lightning's CSV logger (wandb gets them in ``_call_target``)."""
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(save_dir=str(job.workdir), name="runner")  # version_N per attempt
    logger.log_hyperparams(
        {"config_hash": job.config_hash, "seed": job.seed, "profile": job.profile}
    )
    logger.log_metrics({k: float(v) for k, v in result.metrics.items()})
    logger.save()


@dataclass
class _Done:
    """A result already computed in this invocation for the same (profile, seed, config)."""

    result: RowResult
    wall: float
    started: str
    finished: str
    name: str
    skipped_images: list[str] = field(default_factory=list)  # corrupt files the row skipped


def _shared_key(job: RowJob) -> tuple[str, int, str]:
    return (job.profile, job.seed, job.config_hash)


def _call_target(job: RowJob) -> _Done:
    from lightning.fabric.utilities.seed import seed_everything

    job.workdir.mkdir(parents=True, exist_ok=True)
    seed_everything(job.seed, workers=True, verbose=False)
    target = resolve_row_target(job.config, [Path(p) for p in job.search_paths])
    ctx = RowContext(
        workdir=job.workdir,
        seed=job.seed,
        profile=job.profile,
        data_root=Path(job.data_root),
        accelerator=job.accelerator,
        devices=job.devices,
        num_nodes=job.num_nodes,
        wandb=job.wandb,
        progress=job.progress,
        results=Path(job.results),
    )
    from capbench.data.views import skipped_mark, skipped_since

    with row_run(job, enabled=job.wandb and launch_rank() == 0) as run:  # one wandb run per row
        started, t0, mark = _now(), time.perf_counter(), skipped_mark()
        result = target(dict(job.config), ctx)
        wall = time.perf_counter() - t0
        if not isinstance(result, RowResult):
            raise TypeError(
                f"{row_target_name(job.config)} returned {type(result).__name__}, expected RowResult"
            )
        if run is not None:
            log_final(run, result.metrics)
    return _Done(result, wall, started, _now(), job.name, skipped_since(mark))


def _sibling_result(job: RowJob) -> _Done | None:
    """A complete record of the same (profile, seed, config) under another table or row id:
    reuse it instead of retraining (e.g. Table 1's visual baseline is Table 2's)."""
    pattern = f"*/*/{job.profile}-s{job.seed}-{job.config_hash[:8]}.json"
    for path in sorted((Path(job.results) / job.paper / "records").glob(pattern)):
        if path == job.record_path:
            continue
        rec = read_record(path)
        if rec.config_hash != job.config_hash:
            continue
        result = RowResult(
            metrics=rec.metrics,
            n_scored=rec.n_scored,
            curves=rec.curves,
            checkpoint=rec.checkpoint,
            dataset=rec.dataset,
            extra={k: v for k, v in rec.extra.items() if k != "result_from"},
        )
        name = f"{rec.paper}/{rec.table}/{rec.row} [{rec.profile} seed {rec.seed} {rec.hash8}]"
        return _Done(result, rec.wall_time_s, rec.started, rec.finished, name)
    return None


def execute(job: RowJob, shared: dict[tuple[str, int, str], _Done] | None = None) -> RunRecord:
    """Run one row in this process and write its record (rank 0 only).

    A row that appears in two tables with the same config (e.g. the random baseline of
    Tables 1 and 2) is computed once: within an invocation through ``shared``, across
    invocations through the other row's record (unless ``force``). The second record reuses
    the result and says so in ``extra.result_from``.
    """
    done = shared.get(_shared_key(job)) if shared is not None else None
    if done is None and not job.force:
        done = _sibling_result(job)
    extra: dict[str, Any] = {}
    reused = done is not None
    if done is None:
        done = _call_target(job)
        if shared is not None:
            shared[_shared_key(job)] = done
    else:
        extra["result_from"] = done.name
    if done.skipped_images:  # corrupt files met in this row's data, skipped (logged once each)
        extra["skipped_images"] = done.skipped_images
    result = done.result
    try:
        record = _record(job, done, extra)
        record.validate(job.record_path)
    except RecordError as err:
        raise RecordError(
            job.record_path,
            f"{row_target_name(job.config)} returned an invalid result: {err.detail}",
        ) from err
    if launch_rank() == 0:
        if not reused:
            _log_final(job, result)
        write_record(record, Path(job.results))
    return record


def _record(job: RowJob, done: _Done, extra: dict[str, Any]) -> RunRecord:
    """The run record of ``job`` from its target's result (validated as it is built)."""
    result = done.result
    return RunRecord(
        paper=job.paper,
        table=job.table,
        row=job.row,
        profile=job.profile,
        seed=job.seed,
        metrics={k: float(v) for k, v in result.metrics.items()},
        curves={
            k: {"x": [float(x) for x in c["x"]], "y": [float(y) for y in c["y"]]}
            for k, c in result.curves.items()
        },
        n_scored=int(result.n_scored),
        config=job.config,
        config_hash=job.config_hash,
        dataset=dataset_info(result.dataset),
        capbench_version=capbench.__version__,
        git=git_info(),
        packages=package_versions(),
        device=device_info(),
        wall_time_s=round(done.wall, 3),
        started=done.started,
        finished=done.finished,
        # absolute: a cache under ./.capbench_cache gives a path relative to where the row ran,
        # which `capbench caption --checkpoint` or a linked row elsewhere would not find
        checkpoint=None if result.checkpoint is None else str(Path(result.checkpoint).absolute()),
        extra=_jsonable({**result.extra, **extra}),
    )


@dataclass
class Outcome:
    job: RowJob
    ok: bool
    seconds: float
    error: str = ""


class WorkdirInUseError(RuntimeError):
    """``--force`` would delete a row's workdir while another process trains in it."""


def start_fresh(jobs: Iterable[RowJob]) -> None:
    """``--force`` reruns a row from scratch: its workdir (checkpoints of an earlier run with the
    same config hash, possibly from older code) is deleted before the row starts, once, by the
    process that launches it; a requeued SLURM job must not delete what it resumes from. Caches
    keyed by their own config (a pretrained trunk, a captioner, a shared model) are kept.

    A workdir in which another process is training (it holds a training lock there: another
    terminal, or a SLURM job of the same row still running) is not deleted: that would pull the
    files from under it and, its lock file gone, let this run train beside it. Every workdir is
    checked before any is deleted, so a refusal leaves all of them as they were."""
    jobs = [job for job in jobs if job.force and job.workdir.is_dir()]
    for job in jobs:
        for lock in sorted(job.workdir.rglob(TRAIN_LOCK)):
            holder = held_by(lock)
            if holder is not None:
                raise WorkdirInUseError(
                    f"--force would delete {job.workdir} (row {job.name}), but {holder} is "
                    f"training in {lock.parent} (lock {lock}); let it finish or stop it, then "
                    "rerun"
                )
    for job in jobs:
        shutil.rmtree(job.workdir)


def run_local(jobs: Iterable[RowJob], out=None) -> list[Outcome]:
    """Run jobs one after another in this process, with a progress line per row; a failing
    row is reported (with its traceback, unless the error is the user's to fix: a dataset or
    weights file missing or malformed, whose message names it) and the others still run. A
    row of another table with the same (profile, seed, config) as one that failed is reported
    as failed without running it again: it is the same computation, so it would fail the same
    way, after the same training time. In a DDP run every rank runs the rows; the lines of ranks
    other than 0 (which writes the records) say which rank."""
    out = out or sys.stdout
    rank = f"(rank {launch_rank()}) " if launch_rank() else ""
    jobs = list(jobs)
    start_fresh(jobs)
    outcomes: list[Outcome] = []
    shared: dict[tuple[str, int, str], _Done] = {}
    failed: dict[tuple[str, int, str], Outcome] = {}
    t_start = time.perf_counter()
    for i, job in enumerate(jobs, 1):
        print(
            f"{rank}[{i}/{len(jobs)}] {job.name} ... (workdir {job.workdir})", file=out, flush=True
        )
        earlier = failed.get(_shared_key(job))
        if earlier is not None:
            print(
                f"{rank}[{i}/{len(jobs)}] FAILED {job.name}: not run again, its config is that "
                f"of {earlier.job.name}, which failed above: {earlier.error}",
                file=out,
                flush=True,
            )
            outcomes.append(Outcome(job, False, 0.0, earlier.error))
            continue
        t0 = time.perf_counter()
        try:
            rec = execute(job, shared)
        except Exception as err:
            secs = time.perf_counter() - t0
            if not isinstance(err, user_error_types()):  # the user's data or weights: one line
                print(traceback.format_exc(), file=sys.stderr, flush=True)
            print(
                f"{rank}[{i}/{len(jobs)}] FAILED {job.name} after {secs:.1f}s: {type(err).__name__}: {err}",
                file=out,
                flush=True,
            )
            outcomes.append(Outcome(job, False, secs, f"{type(err).__name__}: {err}"))
            failed[_shared_key(job)] = outcomes[-1]
            continue
        secs = time.perf_counter() - t0
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in rec.metrics.items())
        reused = f" (result of {rec.extra['result_from']})" if "result_from" in rec.extra else ""
        print(
            f"{rank}[{i}/{len(jobs)}] done {job.row} in {secs:.1f}s{reused} "
            f"(elapsed {time.perf_counter() - t_start:.1f}s): {metrics}",
            file=out,
            flush=True,
        )
        outcomes.append(Outcome(job, True, secs))
        if job.table_metrics and not set(job.table_metrics) & set(rec.metrics):
            print(
                f"{rank}warning: {job.name} returned none of the metrics its table shows "
                f"({', '.join(job.table_metrics)}): its cells stay empty; check the metric "
                f"names its target returns ({', '.join(rec.metrics) or 'none'})",
                file=out,
                flush=True,
            )
    return outcomes


def check_scenes_version(root: Path) -> dict[str, Any]:
    """Refuse scenes data written by another generator version: its images, captions and
    relevance differ, so its numbers would not be comparable with the golden files. Returns the
    manifest's request (size, seed, version) of data that passes."""
    from capbench.data.scenes.generate import GENERATOR_VERSION, MANIFEST

    path = Path(root) / MANIFEST
    try:
        request = json.loads(path.read_text(encoding="utf-8")).get("request") or {}
    except (OSError, json.JSONDecodeError, AttributeError) as err:
        raise ValueError(f"{path}: unreadable scenes manifest ({err})") from None
    found = request.get("generator_version")
    if found != GENERATOR_VERSION:
        size = request.get("size", "demo")
        raise ValueError(
            f"{path}: scenes data written by generator version {found!r}, but this capbench "
            f"writes {GENERATOR_VERSION!r} (see data_cards/scenes.md); rewrite it with "
            f"`capbench data scenes --out {root} --size {size}` or delete the folder"
        )
    return request


def _warn_other_size(root: Path, request: dict[str, Any], wanted: str) -> None:
    """Rows asking for one scenes size run on the folder's other size when it holds one (it is
    never rewritten), so their numbers are not those their golden file describes: say so."""
    found = request.get("size")
    if found and found != wanted:
        print(
            f"warning: {root} holds the {found} scenes data but these rows ask for {wanted}: "
            f"they run on {found}, so their numbers are not comparable with their golden file; "
            f"for {wanted} data set CAPBENCH_SCENES to another folder (it is written there)",
            file=sys.stderr,
            flush=True,
        )


def ensure_scenes_data(jobs: Sequence[RowJob]) -> Path | None:
    """Write the scenes dataset that the jobs' configs ask for (``scenes_data: demo|tiny``) when
    their data folder holds none yet, so ``capbench reproduce PAPER --profile scenes`` works from
    a clean clone. An existing scenes folder is never rewritten (it may hold another size on
    purpose), but one written by another generator version is refused with a clear error, and
    one whose write was cut short (its manifest not marked complete) is written again.
    Returns the folder written, or None when nothing was done."""
    wanted = {(job.data_root, job.config.get("scenes_data")) for job in jobs}
    wanted = {(root, size) for root, size in wanted if size}
    if not wanted:
        return None
    if len(wanted) > 1:
        raise ValueError(f"rows ask for different scenes data: {sorted(wanted)}")
    root, size = next(iter(wanted))
    from capbench.data.scenes.generate import MANIFEST, generate, write_finished

    root = Path(root)
    if write_finished(root):
        _warn_other_size(root, check_scenes_version(root), size)
        return None
    if (root / MANIFEST).is_file():  # ours, cut short (killed, disk full): written again whole
        print(f"the scenes data at {root} was not written to its end: writing it again", flush=True)
    else:
        print(f"no scenes data at {root}: writing it ({size} size) ...", flush=True)
    generate(root, size=size, workers=max(1, min(4, os.cpu_count() or 1)))
    return root
