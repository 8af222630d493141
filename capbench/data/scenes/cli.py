"""``capbench data scenes``: write the embedded scenes dataset in every real layout.

capbench data scenes --out DIR --size tiny|demo|large [--seed N] [--workers N]
                     [--image-size PX] [--formats NAME ...] [--force]
"""

from __future__ import annotations

import argparse
import os
import sys

from capbench.data.scenes.generate import (
    DEFAULT_IMAGE_SIZE,
    DEFAULT_SEED,
    FORMATS,
    SIZES,
    generate,
)
from capbench.paths import scenes_root


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default=None, help="output directory (default: $CAPBENCH_SCENES or ./scenes_data)"
    )
    parser.add_argument(
        "--size", choices=sorted(SIZES), default="demo", help="how many images (default: demo)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default: {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="rendering processes (default: min(4, CPU count)); the output does not depend on it",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=DEFAULT_IMAGE_SIZE,
        help=f"image side in pixels (default: {DEFAULT_IMAGE_SIZE})",
    )
    parser.add_argument(
        "--formats", nargs="+", choices=FORMATS, default=None, metavar="NAME",
        help=f"write only these layouts (default: all of {', '.join(FORMATS)})",
    )  # fmt: skip
    parser.add_argument(
        "--force", action="store_true", help="regenerate even if DIR/scenes.json matches"
    )


def run(args: argparse.Namespace) -> int:
    out = args.out or scenes_root()
    try:
        manifest = generate(
            out,
            size=args.size,
            seed=args.seed,
            image_size=args.image_size,
            workers=args.workers,
            formats=args.formats,
            force=getattr(args, "force", False),
        )
    except (ValueError, OSError, RuntimeError) as err:  # OSError: an --out it cannot write
        print(f"error: {err}", file=sys.stderr)
        return 2
    if manifest["skipped"]:
        print(
            f"{out}: already written (scenes.json matches size={args.size} seed={args.seed}); nothing to do"
        )
        return 0
    counts = manifest["counts"]
    print(f"wrote scenes size={args.size} seed={args.seed} to {out} in {manifest['seconds']} s")
    for fmt, c in counts.items():
        if fmt == "user_study":
            parts = [
                f"{s}: {v['triplets']} triplets, agreement {v['agreement_mean']}"
                for s, v in c.items()
            ]
            print(f"  {fmt:17s} " + "; ".join(parts))
        else:
            print(f"  {fmt:17s} {c['images']} images {c['splits']}")
    return 0
