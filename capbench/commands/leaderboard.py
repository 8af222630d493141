"""``capbench leaderboard render|check|compare|golden``: tables, regression gate, deltas.

Everything reads run records under ``$CAPBENCH_RESULTS`` (default ``results/``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from capbench.bench.paper import GOLDEN_PROFILES, PROFILES

_INCLUDE = "extra papers / row configs (repeatable; also $CAPBENCH_BENCHMARKS)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = sub.add_parser("render", help="Markdown tables, PNG plots and index.html")
    r.add_argument("--paper", help="only this paper (default: every paper)")
    r.add_argument("--out", type=Path, help="output folder (default $CAPBENCH_RESULTS/leaderboard)")
    r.add_argument(
        "--profile",
        action="append",
        choices=list(PROFILES),
        metavar="PROFILE",
        help="show this profile's tables (repeatable; default: the paper profile and scenes, or "
        "ci where only ci rows ran)",
    )
    r.add_argument("--include", action="append", default=[], metavar="DIR", help=_INCLUDE)
    c = sub.add_parser("check", help="exit non-zero if any cell is out of tolerance")
    c.add_argument("--paper", help="only this paper (default: every paper)")
    c.add_argument(
        "--profile",
        choices=list(PROFILES),
        default="scenes",
        help="paper: against reported numbers; scenes, ci: against golden numbers (default: scenes)",
    )
    c.add_argument("--table", help="only this table (e.g. table2)")
    c.add_argument("--rows", help="only these rows, comma-separated (as given to reproduce)")
    c.add_argument(
        "--strict", action="store_true", help="a row with no record fails (what CI uses)"
    )
    c.add_argument("--include", action="append", default=[], metavar="DIR", help=_INCLUDE)
    m = sub.add_parser("compare", help="explain the delta between two run records")
    m.add_argument("run_a", type=Path, help="run record JSON (A)")
    m.add_argument("run_b", type=Path, help="run record JSON (B), compared with A")
    g = sub.add_parser(
        "golden", help="write benchmarks/<paper>/golden_<profile>.yaml from that profile's records"
    )
    g.add_argument("paper", help="paper key")
    g.add_argument(
        "--profile",
        choices=list(GOLDEN_PROFILES),
        default="scenes",
        help="whose records become golden numbers (default: scenes)",
    )
    g.add_argument("--include", action="append", default=[], metavar="DIR", help=_INCLUDE)


def run(args: argparse.Namespace) -> int:
    from capbench import paths
    from capbench.bench.catalog import Catalog
    from capbench.bench.record import RecordError

    results = paths.results_root()
    try:
        if args.action == "compare":
            from capbench.bench.compare import compare
            from capbench.bench.record import read_record

            a, b = read_record(args.run_a), read_record(args.run_b)
            print(f"A: {args.run_a}\nB: {args.run_b}")
            print("\n".join(compare(a, b)))
            return 0
        catalog = Catalog.discover(args.include)
        if args.action == "render":
            from capbench.bench.report import render

            out = args.out or results / "leaderboard"
            rendered = render(catalog, results, out, args.paper, profiles=args.profile)
            for md in rendered.markdown:
                print(f"markdown: {md}")
            print(f"plots: {len(rendered.images)} PNG in {out / 'img'}")
            print(rendered.index.resolve())
            for err in rendered.malformed:  # the page shows the rest; the exit status says so
                print(
                    f"error: left off the page, a malformed run record: {err} (fix or delete "
                    "it, or rerun its row with --force)",
                    file=sys.stderr,
                )
            return 1 if rendered.malformed else 0
        if args.action == "check":
            from capbench.bench.check import check

            rows = {r.strip() for r in args.rows.split(",") if r.strip()} if args.rows else None
            res = check(catalog, results, args.profile, args.paper, args.table, rows, args.strict)
            for line in res.notes:
                print(line)
            for line in res.failures:
                print(line)
            if res.failures:
                print(
                    f"{len(res.failures)} cell(s) out of tolerance or missing ({res.checked} checked)",
                    file=sys.stderr,
                )
                return 1
            if res.checked == 0:
                print(
                    f"nothing to check for the {args.profile} profile (no references)",
                    file=sys.stderr,
                )
                return 1
            print(f"ok: {res.checked} cell(s) within tolerance ({args.profile} profile)")
            return 0
        if args.action == "golden":
            from capbench.bench.golden import TooFewSeeds, write_golden
            from capbench.bench.summary import summarize

            paper = catalog.paper(args.paper)
            try:
                path, n = write_golden(
                    paper,
                    summarize(catalog, results, args.profile, paper.key),
                    profile=args.profile,
                )
            except TooFewSeeds as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
            if n == 0:
                print(
                    f"error: no {args.profile} records for {paper.key} under {results}; run `capbench reproduce {paper.key} --profile {args.profile}` first",
                    file=sys.stderr,
                )
                return 1
            print(f"wrote {n} golden value(s) to {path}")
            return 0
    except RecordError as err:
        print(f"error: malformed run record: {err}", file=sys.stderr)
        return 2
    except (KeyError, ValueError, OSError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    return 2
