"""``capbench reproduce PAPER``: run a paper's table rows (local or SLURM), write run records.

Examples::

    capbench reproduce --list
    capbench reproduce gordo2017 --profile scenes --rows random,text_oracle
    capbench reproduce all --profile scenes
    capbench reproduce gordo2017 --profile paper --launcher slurm --cluster cluster.yaml --dry-run
    capbench reproduce gordo2017 --profile paper --backbone-weights /models/resnet101.pth
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path

from capbench.bench.golden import GOLDEN_MIN_SEEDS
from capbench.bench.paper import GOLDEN_PROFILES, PROFILES
from capbench.commands.arg_types import non_negative_int, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paper", nargs="?", help="paper key, or 'all' (default with --list)")
    p.add_argument("--table", help="only this table")
    p.add_argument("--rows", help="comma-separated row ids")
    p.add_argument(
        "--profile",
        choices=list(PROFILES),
        default="scenes",
        help="paper: real data, GPU; scenes: embedded data, CPU; ci: tiny scenes (default: scenes)",
    )
    p.add_argument("--seeds", type=int, default=1, help="run seeds 0..N-1 (default 1)")
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="start the seeds here: --first-seed 2 --seeds 1 runs seed 2 alone (default 0)",
    )
    p.add_argument("--force", action="store_true", help="rerun rows that already have a record")
    p.add_argument(
        "--launcher",
        choices=["local", "slurm"],
        default="local",
        help="run here, or submit to SLURM with submitit (needs capbench[slurm]) (default: local)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print what would run / be submitted; write nothing"
    )
    p.add_argument(
        "--wandb", action="store_true", help="also log to wandb (offline unless WANDB_MODE is set)"
    )
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="DIR",
        help="extra papers / row configs (repeatable; also $CAPBENCH_BENCHMARKS)",
    )
    p.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                   help="override a config value (dotted key, YAML value); repeatable")  # fmt: skip
    p.add_argument(
        "--backbone-weights",
        type=Path,
        metavar="PATH",
        help="local pretrained trunk checkpoint (= --set model.backbone_weights=PATH, absolute)",
    )
    p.add_argument(
        "--allow-random-init",
        action="store_true",
        help="let a paper-profile row start from random weights (= --set model.allow_random_init=true)",
    )
    p.add_argument("--list", action="store_true", help="list papers, tables, rows and their status")
    p.add_argument(
        "--write-golden",
        action="store_true",
        help="after the run, write golden_<profile>.yaml (scenes or ci) from at least 3 seeds "
        "(raises --seeds to 3); tolerances come from the spread over seeds",
    )
    g = p.add_argument_group("local launcher")
    g.add_argument(
        "--accelerator",
        default="auto",
        help="Lightning accelerator: cpu, gpu, auto (default: auto)",
    )
    g.add_argument("--devices", default="auto", help="Lightning devices: N or auto (default: auto)")
    s = p.add_argument_group("slurm launcher (options override --cluster)")
    s.add_argument(
        "--cluster",
        metavar="FILE",
        help="cluster profile YAML (partition, account, gpus_per_node, ...)",
    )
    s.add_argument("--partition", help="SLURM partition")
    s.add_argument("--account", help="SLURM account")
    s.add_argument("--qos", help="SLURM quality of service")
    s.add_argument(
        "--gpus-per-node", type=non_negative_int, help="GPUs per node (one task per GPU)"
    )
    s.add_argument("--nodes", type=positive_int, help="nodes per row")
    s.add_argument("--cpus-per-task", type=positive_int, help="CPU cores per task")
    s.add_argument("--mem-gb", type=positive_int, help="memory per node in GB")
    s.add_argument("--time-min", type=positive_int, help="time limit in minutes")
    s.add_argument(
        "--wait", action="store_true", help="wait for the submitted jobs and report failures"
    )
    s.add_argument("--submitit-cluster", choices=["slurm", "local", "debug"], default=None,
                   help=argparse.SUPPRESS)  # fmt: skip  # 'local' runs jobs via submitit's LocalExecutor (tests)


def config_overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set`` items plus the ones ``--backbone-weights`` / ``--allow-random-init`` stand
    for. The weights path is checked here, made absolute (the same file gives the same config
    hash from any folder) and JSON-quoted, so a path that YAML would misread stays a string."""
    from capbench.bench.config import parse_overrides

    out = list(args.overrides)
    parse_overrides(out)  # a malformed item is one error now, not one per row
    if args.backbone_weights is not None:
        path = args.backbone_weights.expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"--backbone-weights: {args.backbone_weights} is not a file")
        out.append(f"model.backbone_weights={json.dumps(str(path))}")
    if args.allow_random_init:
        out.append("model.allow_random_init=true")
    return out


def missing_extras(args: argparse.Namespace) -> str | None:
    """What the chosen options need that this installation lacks (the optional parts of
    capbench are extras), as the command that installs it; None when nothing is missing."""
    needs = []
    if args.launcher == "slurm" and importlib.util.find_spec("submitit") is None:
        needs.append(("--launcher slurm", "submitit", "slurm"))
    if args.wandb and importlib.util.find_spec("wandb") is None:
        needs.append(("--wandb", "wandb", "wandb"))
    if not needs:
        return None
    what = "; ".join(f"{opt} needs {pkg}" for opt, pkg, _ in needs)
    extras = ",".join(extra for _, _, extra in needs)
    return f"{what}: pip install 'capbench[{extras}]'"


def _devices(value: str) -> int | str:
    return int(value) if value.isdigit() else value


_DEVICES = re.compile(r"auto|-1|[1-9]\d*|\d+(,\d+)*,?")  # Lightning's forms: N, -1, "0,1"


def hardware_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with ``--accelerator`` / ``--devices`` for a local run, or None: found here,
    before any row, instead of once per row when each row's Trainer refuses it. A SLURM job runs
    elsewhere, so only the spelling is checked for it."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    names = {"auto", "gpu", *AcceleratorRegistry.available_accelerators()}
    if args.accelerator not in names:
        return f"--accelerator {args.accelerator!r}: expected one of {', '.join(sorted(names))}"
    devices = str(args.devices)
    if not _DEVICES.fullmatch(devices) or devices == "0":
        return (
            f"--devices {devices!r}: expected a count (1, 2, ...), -1 (all), auto, "
            "or GPU indices such as 0,1"
        )
    if args.launcher != "local":
        return None
    import torch

    gpu = torch.cuda.is_available()
    if args.accelerator in ("gpu", "cuda") and not gpu:
        return f"--accelerator {args.accelerator}: no CUDA GPU is visible on this machine"
    on_cpu = args.accelerator == "cpu" or (args.accelerator == "auto" and not gpu)
    if on_cpu and not (devices == "auto" or devices.isdigit()):
        return f"--devices {devices}: on the CPU, give a number of processes (1, 2, ...) or auto"
    return None


def _print_list(catalog, results: Path, paper: str | None = None) -> None:
    """Papers, tables, rows and their record counts; ``paper`` (not 'all') lists only that one
    (an unknown name is a ``KeyError``); a malformed record raises ``RecordError`` naming it."""
    from capbench.bench.catalog import RowRef
    from capbench.bench.record import load_records
    from capbench.bench.summary import current_hash

    papers = [catalog.paper(paper)] if paper and paper != "all" else catalog.papers.values()
    if not catalog.papers:
        print("no papers found (looked in benchmarks/*/paper.yaml and --include folders)")
    for p in papers:
        records = load_records(results, p.key)
        print(f"{p.key}: {p.title} ({p.venue} {p.year or ''}) [{p.dir}]")
        for t in p.tables.values():
            print(f"  {t.id}: {t.title} ({t.source}); metrics: {', '.join(t.metrics)}")
            for r in t.rows.values():
                parts = []
                # the two main profiles always; others (ci) only where the row has a config
                shown = [pr for pr in PROFILES if pr in ("scenes", "paper") or pr in r.configs]
                for profile in shown:
                    if profile not in r.configs:
                        parts.append(f"{profile}: no config")
                        continue
                    h = current_hash(RowRef(p, t, r), profile)
                    mine = [
                        x for x in records if (x.table, x.row, x.profile) == (t.id, r.id, profile)
                    ]
                    cur = sorted(x.seed for x in mine if x.config_hash == h)
                    stale = len(mine) - len(cur)
                    text = f"{profile}: {len(cur)} record(s)" + (f" seeds {cur}" if cur else "")
                    parts.append(text + (f" (+{stale} for other configs)" if stale else ""))
                state = f"pending: {r.pending}" if r.pending else "; ".join(parts)
                user = " (user)" if r.user_added else ""
                print(f"    {r.id}{user}: {r.label} -- {state}")


def run(args: argparse.Namespace) -> int:
    from capbench import paths
    from capbench.bench.catalog import Catalog
    from capbench.bench.runner import RunOptions, plan, run_local
    from capbench.ranks import launch_rank

    results = paths.results_root()
    try:
        catalog = Catalog.discover(args.include)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.list:
        from capbench.bench.record import RecordError

        try:
            _print_list(catalog, results, args.paper)
        except KeyError as err:
            print(f"error: {err.args[0]}", file=sys.stderr)
            return 2
        except RecordError as err:
            print(f"error: malformed run record (fix or delete it): {err}", file=sys.stderr)
            return 2
        return 0
    if not args.paper:
        print("error: name a paper (or 'all'); see `capbench reproduce --list`", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print("error: --seeds must be >= 1", file=sys.stderr)
        return 2
    if args.first_seed < 0:
        print("error: --first-seed must be >= 0", file=sys.stderr)
        return 2
    if args.write_golden and args.first_seed:
        print("error: --write-golden writes from seeds 0..N-1: drop --first-seed", file=sys.stderr)
        return 2
    if args.write_golden and args.seeds < GOLDEN_MIN_SEEDS:
        print(f"--write-golden: running {GOLDEN_MIN_SEEDS} seeds (tolerances need a spread)")
        args.seeds = GOLDEN_MIN_SEEDS
    problem = hardware_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    missing = missing_extras(args)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    if args.wandb:
        os.environ.setdefault("WANDB_MODE", "offline")
    # 'all': the suite last, so that its rows find the paper rows' checkpoints already made
    papers = (
        sorted(catalog.papers, key=lambda key: key == "suite")
        if args.paper == "all"
        else [args.paper]
    )
    try:
        overrides = config_overrides(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    options = RunOptions(
        profile=args.profile,
        seeds=args.seeds,
        first_seed=args.first_seed,
        force=args.force,
        overrides=tuple(overrides),
        wandb=args.wandb,
        results=results,
        accelerator=args.accelerator,
        devices=_devices(str(args.devices)),
        progress=sys.stderr.isatty(),
    )
    rows = [r.strip() for r in args.rows.split(",") if r.strip()] if args.rows else None
    jobs, errors = [], []
    try:
        for key in papers:
            pl = plan(catalog, key, options, table=args.table, rows=rows)
            for name, why in pl.skipped:
                print(f"skip {name}: {why}")
            for name, err in pl.errors:
                print(f"ERROR {name}: {err}", file=sys.stderr)
            jobs += pl.jobs
            errors += pl.errors
    except (KeyError, ValueError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    failures: list[tuple[str, str]] = list(errors)  # (row, why) of every row that failed
    if jobs and not args.dry_run:
        from capbench.bench.runner import ensure_scenes_data

        try:
            ensure_scenes_data(jobs)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    if args.launcher == "slurm":
        from capbench.bench.launchers import SlurmSettings, dry_run, row_settings, submit

        try:
            base = SlurmSettings.from_file(args.cluster) if args.cluster else SlurmSettings()
            settings = base.updated(
                partition=args.partition,
                account=args.account,
                qos=args.qos,
                gpus_per_node=args.gpus_per_node,
                nodes=args.nodes,
                cpus_per_task=args.cpus_per_task,
                mem_gb=args.mem_gb,
                time_min=args.time_min,
            )
            for job in jobs:  # every row's own slurm: section is valid before anything is sent
                row_settings(job, settings)
        except (ValueError, TypeError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if args.dry_run:
            dry_run(jobs, settings)
            return 1 if failures else 0
        _, lost = submit(jobs, settings, cluster=args.submitit_cluster, wait=args.wait)
        failures += [(group.name, f"{type(err).__name__}: {err}") for group, err in lost]
    else:
        if args.dry_run:
            for i, job in enumerate(jobs, 1):
                print(
                    f"[{i}/{len(jobs)}] would run {job.name}: {job.config_path} -> {job.record_path}"
                )
            return 1 if failures else 0
        outcomes = run_local(jobs)
        failures += [(o.job.name, o.error) for o in outcomes if not o.ok]
        rank = f"(rank {launch_rank()}) " if launch_rank() else ""
        print(
            f"{rank}{len(jobs) - sum(not o.ok for o in outcomes)}/{len(jobs)} row run(s) succeeded in {time.perf_counter() - t0:.1f}s"
        )
    if args.write_golden:
        from capbench.bench.golden import TooFewSeeds, write_golden
        from capbench.bench.summary import summarize

        if args.profile not in GOLDEN_PROFILES:
            print("error: --write-golden is for the golden profiles (scenes, ci)", file=sys.stderr)
            return 2
        for key in papers:
            paper = catalog.paper(key)
            try:
                path, n = write_golden(
                    paper, summarize(catalog, results, args.profile, key), profile=args.profile
                )
            except TooFewSeeds as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
            print(f"wrote {n} golden value(s) to {path}")
    if failures:
        print(failure_summary(failures), file=sys.stderr)
        return 1
    return 0


def failure_summary(failures: list[tuple[str, str]], shown: int = 3) -> str:
    """The rows that failed, grouped by why, for the end of a long log: one missing dataset
    fails every row of a paper the same way, and the reason is then read once."""
    by_reason: dict[str, list[str]] = {}
    for row, why in failures:
        by_reason.setdefault(why or "no reason recorded", []).append(row)
    lines = [f"{len(failures)} row(s) failed; see the messages above:"]
    for why, rows in by_reason.items():
        more = f" and {len(rows) - shown} more" if len(rows) > shown else ""
        lines.append(f"  {len(rows)} x {why}: {', '.join(rows[:shown])}{more}")
    return "\n".join(lines)
