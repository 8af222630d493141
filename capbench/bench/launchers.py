"""SLURM through submitit: one job per row, cluster settings from options or a profile file.

Multi-GPU rows run one task per GPU; Lightning reads the SLURM environment and starts DDP,
and the runner writes the record from global rank 0 only. ``cluster="local"`` uses
submitit's local executor (same pickling and job files, no SLURM), which is how tests cover it.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from capbench.bench.runner import RowGroup, RowJob, group_jobs


@dataclass
class SlurmSettings:
    """Submission parameters; ``None`` leaves the cluster default."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    nodes: int = 1
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    mem_gb: int | None = None
    time_min: int = 24 * 60
    setup: list[str] = field(
        default_factory=list
    )  # shell lines run before the job (module load ...)

    @classmethod
    def from_file(cls, path: Path | str) -> SlurmSettings:
        """A cluster profile YAML with the same keys as this class."""
        path = Path(path)
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a cluster profile must be a mapping")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**raw)

    def updated(self, **kwargs: Any) -> SlurmSettings:
        """Command-line options override the profile file where given (not None)."""
        return dataclasses.replace(self, **{k: v for k, v in kwargs.items() if v is not None})

    def executor_parameters(self, name: str) -> dict[str, Any]:
        """Arguments for ``submitit.AutoExecutor.update_parameters``."""
        params: dict[str, Any] = {
            "name": name,
            "timeout_min": self.time_min,
            "nodes": self.nodes,
            "gpus_per_node": self.gpus_per_node,
            "tasks_per_node": max(1, self.gpus_per_node),
            "cpus_per_task": self.cpus_per_task,
        }
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(self, key) is not None:
                params[f"slurm_{key}"] = getattr(self, key)
        if self.setup:
            params["slurm_setup"] = list(self.setup)
        return params


def row_settings(job: RowJob, settings: SlurmSettings) -> SlurmSettings:
    """The row config's optional ``slurm:`` section (e.g. ``{gpus_per_node: 4, time_min: 600}``
    for a row that trains with DDP) overrides the cluster settings for that row only."""
    section = job.config.get("slurm") or {}
    if not isinstance(section, dict):
        raise ValueError(f"{job.config_path}: 'slurm' must be a mapping")
    known = {f.name for f in dataclasses.fields(SlurmSettings)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ValueError(
            f"{job.config_path}: slurm: unknown keys {unknown}; known: {sorted(known)}"
        )
    return settings.updated(**section)


def apply_to_job(job: RowJob, settings: SlurmSettings) -> RowJob:
    """Device fields of the row context that make the method start Lightning DDP."""
    if settings.gpus_per_node > 0:
        return dataclasses.replace(
            job,
            accelerator="gpu",
            devices=settings.gpus_per_node,
            num_nodes=settings.nodes,
            progress=False,
        )
    return dataclasses.replace(
        job, accelerator="cpu", devices=1, num_nodes=settings.nodes, progress=False
    )


def job_name(job: RowJob) -> str:
    return f"capbench-{job.paper}-{job.row}-{job.profile}-s{job.seed}"


def sbatch_preview(job: RowJob, settings: SlurmSettings, folder: Path) -> str:
    """The ``#SBATCH`` script submitit would write for this job (for ``--dry-run``)."""
    from submitit.slurm.slurm import _make_sbatch_string

    return _make_sbatch_string(
        command=f"{shlex.quote(sys.executable)} -u -m submitit.core._submit {shlex.quote(str(folder))}",
        folder=folder,
        job_name=job_name(job),
        partition=settings.partition,
        time=settings.time_min,
        nodes=settings.nodes,
        ntasks_per_node=max(1, settings.gpus_per_node),
        cpus_per_task=settings.cpus_per_task,
        gpus_per_node=settings.gpus_per_node or None,
        mem=f"{settings.mem_gb}GB" if settings.mem_gb is not None else None,
        account=settings.account,
        qos=settings.qos,
        constraint=settings.constraint,
        setup=list(settings.setup) or None,
    )


def slurm_folder(job: RowJob) -> Path:
    return Path(job.results) / job.paper / "slurm" / "%j"


def dry_run(jobs: list[RowJob], settings: SlurmSettings, out=None) -> None:
    """Print what would be submitted (one SLURM job per group of identical rows); writes nothing
    (and deletes nothing: ``--force`` would clear the rows' workdirs only when submitting)."""
    out = out or sys.stdout
    groups = group_jobs(apply_to_job(j, row_settings(j, settings)) for j in jobs)
    for i, group in enumerate(groups, 1):
        job = group.jobs[0]
        mine = row_settings(job, settings)
        print(f"== [{i}/{len(groups)}] {group.name}", file=out)
        print(f"config: {job.config_path}", file=out)
        deps = sorted({f"{p}/{r}" for j in group.jobs for p, r, _, _ in row_dependencies(j, jobs)})
        if deps:
            print(f"after: {', '.join(deps)} (submitted first; afterok dependency)", file=out)
        print(f"workdir: {job.workdir}", file=out)
        for j in group.jobs:
            print(f"record: {j.record_path}", file=out)
        print(
            f"row context: accelerator={job.accelerator} devices={job.devices} num_nodes={job.num_nodes}",
            file=out,
        )
        params = yaml.safe_dump(
            mine.executor_parameters(job_name(job)), default_flow_style=True, sort_keys=True
        )
        print("executor parameters: " + params.strip(), file=out)
        print(sbatch_preview(job, mine, slurm_folder(job)), file=out)
    if not jobs:
        print("nothing to submit", file=out)


def row_dependencies(job: RowJob, jobs: Sequence[RowJob]) -> list[tuple[str, str, str, int]]:
    """``(paper, row, profile, seed)`` of the rows this row must start after on a cluster: the
    rows whose result it reads (its ``{kind: paper_row}`` links,
    :mod:`capbench.bench.linked_rows`), and, among ``jobs`` (the rows submitted with it), the one
    that trains a cached model this row also trains on first use (its method's
    ``shared_models``): two jobs must never train one model in one folder at once."""
    from capbench.bench.linked_rows import linked_rows

    links = [(paper, row, job.profile, job.seed) for paper, row in linked_rows(job.config)]
    # a trainer with this row's config is this row's own job (jobs group by config)
    return links + [
        (t.paper, t.row, t.profile, t.seed)
        for t in shared_model_trainers(job, jobs)
        if t.config_hash != job.config_hash
    ]


def shared_model_trainers(job: RowJob, jobs: Sequence[RowJob]) -> list[RowJob]:
    """For each cached model ``job`` trains or reads, the first row of ``jobs`` (same paper,
    profile and seed) that does too: the one the others wait for."""
    mine = _shared_models(job)
    trainers: list[RowJob] = []
    for key in mine:
        first = next(
            (
                j
                for j in jobs
                if (j.paper, j.profile, j.seed) == (job.paper, job.profile, job.seed)
                and key in _shared_models(j)
            ),
            None,
        )
        if first is not None and first not in trainers:
            trainers.append(first)
    return trainers


def _shared_models(job: RowJob) -> list[str]:
    """The keys of the cached models a row's method says it trains or reads (none for methods
    without ``shared_models`` and for target rows). Asked for every pair of a plan's rows, so
    computed once per config (the config hash names it)."""
    name = job.config.get("method")
    if not name:
        return []
    if job.config_hash not in _SHARED_MODELS:
        from capbench.methods.registry import METHODS, discover_methods

        discover_methods()
        spec = METHODS.get(name) if name in METHODS else None
        keys = spec.load("shared_models")(job.config) if spec and spec.shared_models else []
        _SHARED_MODELS[job.config_hash] = list(keys)
    return _SHARED_MODELS[job.config_hash]


_SHARED_MODELS: dict[str, list[str]] = {}  # config hash -> its shared-model keys


def _submit_stage(
    groups: list[RowGroup],
    settings: SlurmSettings,
    cluster: str | None,
    out: Any,
    after: dict[int, list[str]] | None = None,
) -> list[tuple[RowGroup, Any]]:
    """Submit ``groups`` as job arrays: one array per paper folder and identical parameters
    (``after[i]``: SLURM job ids group ``i`` waits for, ``afterok``)."""
    import submitit

    buckets: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        job = group.jobs[0]
        params = row_settings(job, settings).executor_parameters(f"capbench-{job.paper}")
        deps = sorted((after or {}).get(i, []))
        key = yaml.safe_dump([str(slurm_folder(job)), params, deps], sort_keys=True)
        buckets.setdefault(key, []).append(i)
    submitted: dict[int, Any] = {}
    for members in buckets.values():
        job = groups[members[0]].jobs[0]
        params = row_settings(job, settings).executor_parameters(job_name(job))
        deps = sorted((after or {}).get(members[0], []))
        if deps:
            params["slurm_additional_parameters"] = {"dependency": "afterok:" + ":".join(deps)}
        executor = submitit.AutoExecutor(folder=slurm_folder(job), cluster=cluster)
        executor.update_parameters(**params)
        with executor.batch():  # one SLURM job array for the bucket
            pending = [(i, executor.submit(groups[i])) for i in members]
        for i, sjob in pending:
            print(
                f"submitted {groups[i].name} as job {sjob.job_id} "
                f"(logs in {slurm_folder(groups[i].jobs[0]).parent})"
                + (f" after {', '.join(deps)}" if deps else ""),
                file=out,
                flush=True,
            )
            submitted[i] = sjob
    return [(groups[i], submitted[i]) for i in range(len(groups))]


def _wait(submitted: list[tuple[RowGroup, Any]], out: Any) -> list[tuple[RowGroup, BaseException]]:
    failures: list[tuple[RowGroup, BaseException]] = []
    for group, sjob in submitted:
        try:
            paths = sjob.result()
            print(f"finished {group.name}: {', '.join(paths)}", file=out, flush=True)
        except Exception as err:
            print(f"FAILED {group.name}: {err}", file=out, flush=True)
            failures.append((group, err))
    return failures


def submit(
    jobs: list[RowJob],
    settings: SlurmSettings,
    cluster: str | None = None,
    wait: bool = False,
    out=None,
) -> tuple[list[tuple[RowGroup, Any]], list[tuple[RowGroup, BaseException]]]:
    """Submit one job per group of identical rows, as job arrays (``cluster='local'``:
    submitit's local executor), in stages: a row that must start after others
    (:func:`row_dependencies`: the suite reading a paper row's result, a row sharing a cached
    model with the row that trains it) is submitted after them, on SLURM with an ``afterok``
    dependency on their jobs, on the local executor (which has no dependencies) once those jobs
    have finished. Returns (submitted, failures); failures are filled only with ``wait`` (and for
    the jobs waited on)."""
    from capbench.bench.runner import start_fresh

    out = out or sys.stdout
    start_fresh(jobs)  # here, not in the job: a requeued job resumes from its workdir
    groups = group_jobs(apply_to_job(j, row_settings(j, settings)) for j in jobs)
    submitted: list[tuple[RowGroup, Any]] = []
    failures: list[tuple[RowGroup, BaseException]] = []
    waited: dict[int, tuple[RowGroup, Any]] = {}
    by_row: dict[tuple[str, str, str, int], tuple[RowGroup, Any]] = {}
    for stage in dependency_stages(groups, jobs):
        needed = {
            i: [by_row[d] for j in g.jobs for d in row_dependencies(j, jobs) if d in by_row]
            for i, g in enumerate(stage)
        }
        after = None
        if cluster in ("local", "debug"):
            todo = {id(g): (g, s) for deps in needed.values() for g, s in deps}
            todo = {k: v for k, v in todo.items() if k not in waited}
            if todo:
                print(f"waiting for {len(todo)} job(s) the later rows read from", file=out)
                failures += _wait(list(todo.values()), out)
                waited.update(todo)
        else:
            after = {i: sorted({str(s.job_id) for _, s in deps}) for i, deps in needed.items()}
        done = _submit_stage(stage, settings, cluster, out, after)
        submitted += done
        by_row.update(
            {(j.paper, j.row, j.profile, j.seed): (g, s) for g, s in done for j in g.jobs}
        )
    if wait:
        failures += _wait([(g, s) for g, s in submitted if id(g) not in waited], out)
    return submitted, failures


def dependency_stages(groups: list[RowGroup], jobs: Sequence[RowJob]) -> list[list[RowGroup]]:
    """``groups`` in stages: a group comes one stage after the latest of the groups it depends on
    (:func:`row_dependencies`; a dependency outside ``groups`` is already done or runs itself),
    so each stage's jobs can wait on jobs already submitted."""
    owner = {(j.paper, j.row, j.profile, j.seed): i for i, g in enumerate(groups) for j in g.jobs}
    deps = [
        {owner[d] for j in g.jobs for d in row_dependencies(j, jobs) if d in owner} - {i}
        for i, g in enumerate(groups)
    ]
    stage: dict[int, int] = {}

    def stage_of(i: int, path: tuple[int, ...] = ()) -> int:
        if i in path:
            cycle = " -> ".join(groups[k].name for k in (*path, i))
            raise ValueError(f"rows that wait on each other: {cycle}")
        if i not in stage:
            stage[i] = 1 + max((stage_of(d, (*path, i)) for d in deps[i]), default=-1)
        return stage[i]

    for i in range(len(groups)):
        stage_of(i)
    return [
        [groups[i] for i in range(len(groups)) if stage[i] == n]
        for n in range(1 + max(stage.values(), default=-1))
    ]
