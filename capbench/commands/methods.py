"""``capbench methods``: the registered methods, their papers and where their parts live, and
the installed plugins (``capbench.methods`` entry points) that registered nothing."""

from __future__ import annotations

import argparse
import json
import sys
import warnings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per method")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from capbench.methods.registry import (
        ENTRY_POINT_FAILURES,
        MethodEntryPointWarning,
        discover_methods,
    )

    with warnings.catch_warnings():  # listed below instead, once, without a source line
        warnings.simplefilter("ignore", MethodEntryPointWarning)
        methods = discover_methods()
    for name in methods:
        spec = methods.get(name)
        if args.json:
            print(json.dumps(asdict(spec)))
            continue
        print(f"{name}  (benchmarks/{spec.paper})  {spec.summary}")
        print(f"    module {spec.module}")
        print(f"    config {spec.config}")
        print(f"    rows   {spec.rows}")
    if not len(methods):
        print("no methods registered")
    for problem in ENTRY_POINT_FAILURES:
        print(f"capbench methods: error: {problem}", file=sys.stderr)
    return 1 if ENTRY_POINT_FAILURES else 0
