"""``capbench data``: check a dataset on disk, write a fixture, generate the scenes dataset.

``check NAME ROOT`` reads the dataset with its registered reader and prints per-split counts
(images, captions, regions, classes), what was skipped, and the data card's checksums that
could be verified; a malformed dataset exits 1 with the reader's error, which names the file.
``--verify-images`` also decodes every image (``--workers`` threads) and fails on any that
does not decode. A check never writes into the dataset folder (caches go to $CAPBENCH_CACHE).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from capbench.data.errors import DatasetFormatError
from capbench.data.records import CaptionedImage
from capbench.data.verify_images import DEFAULT_WORKERS, ImageCheck

# How many failed images the text report lists (the JSON report lists all).
SHOWN_FAILURES = 10

# Splits are listed in this order in the table; others follow alphabetically.
SPLIT_ORDER = ("train", "restval", "val", "trainval", "test", "query", "reference")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    check = sub.add_parser("check", help="read a dataset, print per-split counts, verify checksums")
    check.add_argument("name", help="reader name (capbench.data.names())")
    check.add_argument("root", type=Path, help="dataset root, e.g. $CAPBENCH_DATA/<name>")
    check.add_argument("--split", default=None, help="read one split only (default: all)")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument(
        "--allow-missing-images", action="store_true", help="skip and count absent images"
    )
    check.add_argument(
        "--verify-images",
        action="store_true",
        help="decode every image; fail on zero-byte, truncated or unreadable ones",
    )
    check.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help=f"threads decoding images with --verify-images (default {DEFAULT_WORKERS})",
    )
    check.add_argument("--splits", default=None, help="split scheme, e.g. 'karpathy' for coco")
    check.add_argument("--layout", default=None, help="on-disk layout variant (graded_retrieval)")
    check.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra reader option (VALUE parsed as JSON when it can be)",
    )
    check.set_defaults(_data_run=run_check)

    fixture = sub.add_parser("fixture", help="write the tiny test fixture of a format")
    fixture.add_argument("name", help="format name (capbench.data.writers.names())")
    fixture.add_argument("out", type=Path, help="output directory")
    fixture.add_argument("--broken", action="store_true", help="damage it the way its test expects")
    fixture.set_defaults(_data_run=run_fixture)

    # The scenes generator parses its own arguments; '+' as prefix makes this parser pass
    # every token (including --out, -h) through untouched, and nothing is imported until used.
    scenes = sub.add_parser(
        "scenes", help="generate the embedded scenes dataset", prefix_chars="+", add_help=False
    )
    scenes.add_argument("rest", nargs=argparse.REMAINDER)
    scenes.set_defaults(_data_run=run_scenes)


def run(args: argparse.Namespace) -> int:
    return int(args._data_run(args) or 0)


# ---------------------------------------------------------------- check


def _parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"capbench data check: --option expects KEY=VALUE, got {pair!r}")
        try:
            options[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.replace("-", "_")] = value
    return options


def split_counts(records: Sequence[CaptionedImage]) -> dict[str, dict[str, int]]:
    """Per split (in first-seen order) and ``total``: images, captions, regions, classes."""
    groups: dict[str, list[CaptionedImage]] = {}
    for rec in records:
        groups.setdefault(rec.split, []).append(rec)
    rank = {s: i for i, s in enumerate(SPLIT_ORDER)}
    groups = {s: groups[s] for s in sorted(groups, key=lambda s: (rank.get(s, len(rank)), s))}
    groups["total"] = list(records)
    out = {}
    for split, recs in groups.items():
        classes = {r.label for r in recs if r.label is not None}
        classes |= {("multi", c) for r in recs for c in r.labels}
        out[split] = {
            "images": len(recs),
            "captions": sum(len(r.captions) for r in recs),
            "regions": sum(len(r.regions) for r in recs),
            "classes": len(classes),
        }
    return out


def _table(counts: dict[str, dict[str, int]]) -> str:
    cols = ["images", "captions", "regions", "classes"]
    width = max(len("split"), *(len(s) for s in counts))
    lines = [f"{'split':<{width}}  " + "  ".join(f"{c:>9}" for c in cols)]
    for split, row in counts.items():
        lines.append(f"{split:<{width}}  " + "  ".join(f"{row[c]:>9,}" for c in cols))
    return "\n".join(lines)


def run_check(args: argparse.Namespace) -> int:
    from capbench.data.checksums import verify_checksums
    from capbench.data.sources import read

    if args.workers < 1:
        return _fail(args, f"--workers must be >= 1, got {args.workers}", None)
    options = _parse_options(args.option)
    if args.allow_missing_images:
        options["allow_missing_images"] = True
    if args.splits is not None:
        options["splits"] = args.splits
    if args.layout is not None:
        options["layout"] = args.layout
    try:
        records = read(args.name, args.root, args.split, **options)
    except DatasetFormatError as err:
        return _fail(args, str(err), err.path)
    except (KeyError, ValueError, TypeError) as err:  # unknown reader / split / option
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        return _fail(args, str(message), None)

    skipped = dict(getattr(records, "skipped", {}))
    counts = split_counts(records)
    sums = verify_checksums(args.name, args.root)
    images = None
    if args.verify_images:
        from capbench.data.verify_images import verify_images

        images = verify_images((r.image_path for r in records), workers=args.workers)
    ok = sums.ok and len(records) > 0 and (images is None or images.ok)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": ok,
                    "name": args.name,
                    "root": str(args.root),
                    "split": args.split,
                    "splits": counts,
                    "skipped": skipped,
                    "checksums": {
                        "card": sums.card,
                        "verified": sums.verified,
                        "mismatched": sums.mismatched,
                        "absent": sums.absent,
                    },
                    "images": _images_json(images),
                }
            )
        )
        return 0 if ok else 1
    print(f"{args.name} at {args.root}" + (f" (split {args.split})" if args.split else ""))
    print(_table(counts))
    if skipped:
        print(
            "skipped: "
            + ", ".join(f"{k.replace('_', ' ')}s: {v:,}" for k, v in sorted(skipped.items()))
        )
    else:
        print("skipped: none")
    card = f"data_cards/{Path(sums.card).name}" if sums.card else f"data_cards/{args.name}.md"
    if sums.card is None:
        print(f"checksums: no data card {card}")
    elif not (sums.verified or sums.mismatched or sums.absent):
        print(f"checksums: none listed in {card}")
    else:
        print(
            f"checksums ({card}): {len(sums.verified)} verified, "
            f"{len(sums.mismatched)} mismatched, {len(sums.absent)} not present under ROOT"
        )
        for rel in sums.mismatched:
            print(f"  MISMATCH {rel}")
    if images is not None:
        _print_images(images)
    if not records:
        where = f"{args.root}" + (f", split {args.split}" if args.split else "")
        print(f"error: no records read from {where}", file=sys.stderr)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def _images_json(images: ImageCheck | None) -> dict[str, Any] | None:
    if images is None:
        return None
    return {
        "checked": images.checked,
        "failed": len(images.failures),
        "failures": [{"path": p, "reason": r} for p, r in images.failures],
    }


def _print_images(images: ImageCheck) -> None:
    print(f"images: {images.checked:,} checked, {len(images.failures):,} failed to decode")
    for path, reason in images.failures[:SHOWN_FAILURES]:
        print(f"  FAILED {path}: {reason}")
    if len(images.failures) > SHOWN_FAILURES:
        print(f"  ... and {len(images.failures) - SHOWN_FAILURES:,} more (--json lists all)")


def _fail(args: argparse.Namespace, message: str, path: str | None) -> int:
    if args.json:
        print(
            json.dumps(
                {
                    "ok": False,
                    "name": args.name,
                    "root": str(args.root),
                    "error": message,
                    "path": path,
                }
            )
        )
    else:
        print(f"error: {message}", file=sys.stderr)
    return 1


# ---------------------------------------------------------------- fixture / scenes


def run_fixture(args: argparse.Namespace) -> int:
    from capbench.data.fixtures import fixture_names, write_broken_fixture, write_fixture

    if args.name not in fixture_names():
        print(
            f"error: no fixture for {args.name!r}; known: {', '.join(fixture_names())}",
            file=sys.stderr,
        )
        return 2
    if args.broken:
        root, bad = write_broken_fixture(args.name, args.out)
        print(f"wrote broken {args.name} fixture at {root} (damaged: {bad})")
    else:
        root = write_fixture(args.name, args.out)
        print(f"wrote {args.name} fixture at {root}")
    return 0


def run_scenes(args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module("capbench.data.scenes.cli")
    except ModuleNotFoundError as err:
        if err.name not in ("capbench.data.scenes.cli", "capbench.data.scenes"):
            raise
        print(
            "error: 'capbench data scenes' is unavailable: capbench.data.scenes.cli is not installed",
            file=sys.stderr,
        )
        return 2
    parser = argparse.ArgumentParser(
        prog="capbench data scenes", description="generate the embedded scenes dataset"
    )
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(args.rest)) or 0)
