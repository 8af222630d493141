"""``capbench methods``: the registered methods, their papers and where their parts live."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per method")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from capbench.methods.registry import discover_methods

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
    return 0
