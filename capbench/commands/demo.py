"""``capbench demo``: the README's main job on the embedded scenes data, in one process.

Examples::

    capbench demo                        # scenes data if absent, the plan, the leaderboard page
    capbench demo --only gordo2017,suite # part of the plan
    capbench demo --plan my_demo.yaml --force
    capbench demo --dry-run              # what would run; writes nothing

The plan (``benchmarks/demo.yaml``) names each paper's headline rows, the suite's rows and the
bring-your-own rows. One process rather than one per paper: each process paid ~7 s of imports
(Lightning, torchmetrics, transformers) before its first row, and the rows share in-process
memos (dataset fingerprints). A failing step does not stop the others; the exit status reports
it; the time of every step is printed at the end, then the page's path.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass(frozen=True)
class UserRow:
    encoder: str
    name: str
    label: str


@dataclass(frozen=True)
class DemoPlan:
    papers: dict[str, list[str]]  # paper key -> row ids, in running order (the suite last)
    user_rows: list[UserRow] = field(default_factory=list)


def default_plan_path() -> Path:
    from capbench.resources import benchmarks_dir

    return benchmarks_dir() / "demo.yaml"


def load_plan(path: Path) -> DemoPlan:
    """The plan at ``path``; a malformed one is an error naming the file and the entry."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("papers"), dict):
        raise ValueError(f"{path}: expected a mapping with 'papers: {{paper: [row, ...]}}'")
    papers: dict[str, list[str]] = {}
    for key, rows in doc["papers"].items():
        if not isinstance(rows, list) or not rows or not all(isinstance(r, str) for r in rows):
            raise ValueError(f"{path}: papers.{key}: expected a non-empty list of row ids")
        papers[str(key)] = rows
    users = []
    for i, entry in enumerate(doc.get("user_rows") or []):
        if not isinstance(entry, dict) or not {"encoder", "name"} <= set(entry):
            raise ValueError(f"{path}: user_rows[{i}]: expected encoder, name (and label)")
        users.append(UserRow(entry["encoder"], entry["name"], entry.get("label", entry["name"])))
    # the suite scores the paper rows' checkpoints: it runs after them whatever the file's order
    ordered = dict(sorted(papers.items(), key=lambda kv: kv[0] == "suite"))
    return DemoPlan(ordered, users)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plan", type=Path, help="the plan (default: benchmarks/demo.yaml)")
    p.add_argument(
        "--only",
        help="comma-separated papers of the plan to run ('user_rows' for the bring-your-own "
        "rows); the page is rendered either way",
    )
    p.add_argument("--seeds", type=int, default=1, help="run seeds 0..N-1 (default 1)")
    p.add_argument("--force", action="store_true", help="rerun rows that already have a record")
    p.add_argument(
        "--dry-run", action="store_true", help="print what each step would run; write nothing"
    )
    p.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                   help="override a config value of every row (dotted key, YAML value)")  # fmt: skip


def _importable(builder: str) -> bool:
    """Whether ``module:function``'s module can be found from here, as ``capbench suite`` looks
    for it (the current directory first): an installed capbench has no ``examples/``."""
    import importlib.util

    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.util.find_spec(builder.split(":")[0]) is not None
    except ModuleNotFoundError:  # a missing parent package
        return False


def _steps(plan: DemoPlan, args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(label, capbench argv) of every step, the page last."""
    from capbench.bench.config import parse_overrides

    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    parse_overrides(args.overrides)  # a malformed --set: one error, before any step
    only = {s.strip() for s in args.only.split(",") if s.strip()} if args.only else None
    known = set(plan.papers) | {"user_rows"}
    if only and not only <= known:
        raise ValueError(f"--only {sorted(only - known)}: not in the plan ({sorted(known)})")
    common = ["--profile", "scenes", "--seeds", str(args.seeds)]
    common += ["--force"] if args.force else []
    common += ["--dry-run"] if args.dry_run else []
    sets = [a for kv in args.overrides for a in ("--set", kv)]
    steps = []
    for key, rows in plan.papers.items():
        if only is None or key in only:
            argv = ["reproduce", key, "--rows", ",".join(rows), *common, *sets]
            steps.append((key, argv))
    if only is None or "user_rows" in only:
        for row in plan.user_rows:
            if not _importable(row.encoder):
                print(f"skip {row.name}: {row.encoder.split(':')[0]} is not importable from "
                      f"{Path.cwd()} (the examples/ of a checkout: run from its root)")  # fmt: skip
                continue
            argv = ["suite", "--encoder", row.encoder, "--name", row.name, "--label", row.label]
            steps.append((row.name, [*argv, *common]))
    if not args.dry_run:
        steps.append(("leaderboard page", ["leaderboard", "render"]))
    return steps


def run(args: argparse.Namespace) -> int:
    from capbench import paths
    from capbench.cli import main

    try:
        plan = load_plan(args.plan or default_plan_path())
        steps = _steps(plan, args)
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.monotonic()
    timings: list[tuple[str, float, int]] = []
    scenes = paths.scenes_root()
    if not args.dry_run and not (scenes / "scenes.json").is_file():
        t0 = time.monotonic()
        rc = main(["data", "scenes", "--out", str(scenes), "--size", "demo"])
        timings.append((f"scenes data -> {scenes}", time.monotonic() - t0, rc))
        if rc:
            print(f"error: writing the scenes data to {scenes} failed", file=sys.stderr)
            return rc
    for label, argv in steps:
        t0 = time.monotonic()
        try:
            rc = main(argv)
        except Exception as err:  # one paper's crash must not cost the others their rows
            print(f"error: {label}: {type(err).__name__}: {err}", file=sys.stderr)
            rc = 1
        timings.append((label, time.monotonic() - t0, rc))
    total = time.monotonic() - start
    print("\ncapbench demo:")
    for label, seconds, rc in timings:
        print(f"  {label:<24} {seconds:7.1f} s{'' if rc == 0 else f'  FAILED (exit {rc})'}")
    print(f"  {'total':<24} {total:7.1f} s")
    if not args.dry_run:
        print(paths.results_root() / "leaderboard" / "index.html")
    return 0 if all(rc == 0 for _, _, rc in timings) else 1
